from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from cohorta.accounts.models import ApiToken, User, hash_token

# Writing last_used_at on every request would turn reads into writes.
_LAST_USED_RESOLUTION_SECONDS = 60


def api_token_user(*, raw: str) -> User | None:
    """The active user behind a raw token, or None when unknown, revoked or disabled.

    One query on the unique hash (its index), the user joined in; ``last_used_at`` is written at most once
    a minute per token, by an UPDATE that only matches while it is older than that, so concurrent requests
    with the same token do not all write it."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_token(raw), revoked_at__isnull=True, user__is_active=True)
        .order_by()
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    stale = now - timedelta(seconds=_LAST_USED_RESOLUTION_SECONDS)
    if token.last_used_at is None or token.last_used_at < stale:
        ApiToken.objects.filter(pk=token.pk).filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)).update(
            last_used_at=now
        )
    return token.user


def api_tokens_for_user(*, user: User):
    return ApiToken.objects.filter(user=user).order_by("revoked_at", "-created_at")
