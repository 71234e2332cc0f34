from django.db import transaction
from django.utils import timezone

from cohorta.accounts.models import ApiToken, User, hash_token
from cohorta.jobs.services import jobs_cancel_for_user


@transaction.atomic
def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token and return it with its raw value, which is never stored."""
    raw = ApiToken.generate_raw()
    token = ApiToken.objects.create(
        user=user, name=name.strip() or "API token", prefix=raw[:10], key_hash=hash_token(raw)
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


@transaction.atomic
def user_set_active(*, user: User, active: bool) -> User:
    """Enable or disable a user. A disabled user's unfinished jobs are cancelled."""

    user.is_active = active
    user.save(update_fields=["is_active"])
    if not active:
        jobs_cancel_for_user(user=user, reason="The account was disabled.")
    return user
