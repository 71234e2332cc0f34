from django.utils import timezone

from cohorta.accounts.models import ApiToken, User, hash_token

# Writing last_used_at on every request would turn reads into writes.
_LAST_USED_RESOLUTION_SECONDS = 60


def api_token_user(*, raw: str) -> User | None:
    """The active user behind a raw token, or None when unknown, revoked or disabled."""
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_token(raw), revoked_at__isnull=True).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > _LAST_USED_RESOLUTION_SECONDS:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def api_tokens_for_user(*, user: User):
    return ApiToken.objects.filter(user=user).order_by("revoked_at", "-created_at")
