import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db.models import Q
from django.http import HttpResponse
from django.utils import timezone

from cohorta import read_cache
from cohorta.accounts.models import ApiToken, User, hash_token

# Writing last_used_at on every request would turn reads into writes.
_LAST_USED_RESOLUTION_SECONDS = 60
_TOKEN_TABLES = frozenset({ApiToken._meta.db_table, User._meta.db_table})
_USER_TABLES = frozenset({User._meta.db_table})


# What a user's row is kept as between requests: its values, immutable, so each request builds its own instance.
_USER_FIELDS = tuple(field.attname for field in User._meta.concrete_fields)


def _user_values(user: User) -> tuple:
    return tuple(getattr(user, name) for name in _USER_FIELDS)


def _user_from(values: tuple) -> User:
    return User.from_db("default", _USER_FIELDS, values)


def _token_row(key_hash: str) -> tuple[int, datetime | None, tuple] | None:
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=key_hash, revoked_at__isnull=True, user__is_active=True)
        .order_by()
        .first()
    )
    return None if token is None else (token.pk, token.last_used_at, _user_values(token.user))


def _last_used_stale_before() -> datetime:
    """A token last used before this is due a ``last_used_at`` write."""
    return timezone.now() - timedelta(seconds=_LAST_USED_RESOLUTION_SECONDS)


def _last_used_due(last_used_at: datetime | None) -> bool:
    return last_used_at is None or last_used_at < _last_used_stale_before()


def api_token_user(*, raw: str) -> User | None:
    """The active user behind a raw token, or None when unknown, revoked or disabled.

    One query on the unique hash (its index), the user joined in, kept in the process while the token and
    user tables do not change (``read_cache.remembered``: a Redis round trip, where compiling the query alone
    took a millisecond). ``last_used_at`` is written at most once a minute per token, by an UPDATE that only
    matches while it is older than that, so concurrent requests with the same token do not all write it;
    that write moves the token table's version, so the next request reads the row again."""
    key_hash = hash_token(raw)
    row = read_cache.remembered(("api-token", key_hash), _TOKEN_TABLES, lambda: _token_row(key_hash))
    if row is None:
        return None
    token_pk, last_used_at, user_values = row
    if _last_used_due(last_used_at):
        stale = _last_used_stale_before()
        ApiToken.objects.filter(pk=token_pk).filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)).update(
            last_used_at=timezone.now()
        )
    return _user_from(user_values)


def api_token_user_unchecked(*, raw: str, recheck: Callable[[], None]) -> read_cache.Unchecked | None:
    """The user ``api_token_user`` kept for this token, not checked against the token and user tables' versions:
    for a cached read, which checks it with the versions it reads anyway (``read_cache.Unchecked``). None when
    nothing is kept or ``last_used_at`` is due (``api_token_user`` then reads and writes as usual)."""
    kept = read_cache.remembered_unchecked(("api-token", hash_token(raw)), recheck)
    if kept is None or kept.value is None:
        return None
    _, last_used_at, user_values = kept.value
    if _last_used_due(last_used_at):
        return None
    return dataclasses.replace(kept, value=_user_from(user_values))


def user_by_pk(*, pk: int) -> User | None:
    """The user with this id, kept in the process while the user table does not change: the signed-in user
    every page reads through its session (``cohorta.accounts.backends``)."""

    def load() -> tuple | None:
        user = User.objects.filter(pk=pk).first()
        return None if user is None else _user_values(user)

    values = read_cache.remembered(("user", pk), _USER_TABLES, load)
    return None if values is None else _user_from(values)


def user_by_pk_unchecked(*, pk: int, recheck: Callable[[], HttpResponse | None]) -> read_cache.Unchecked | None:
    """The user ``user_by_pk`` kept, not checked against the user table's version: for a cached page, which checks
    it with the versions it reads anyway (``read_cache.Unchecked``). None when nothing is kept (or no such user)."""
    kept = read_cache.remembered_unchecked(("user", pk), recheck)
    if kept is None or kept.value is None:
        return None
    return dataclasses.replace(kept, value=_user_from(kept.value))


def api_tokens_for_user(*, user: User):
    return ApiToken.objects.filter(user=user).order_by("revoked_at", "-created_at")
