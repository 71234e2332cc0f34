"""Django's and allauth's authentication backends, reading the signed-in user without building its query.

Every signed-in page reads the user's row through the session (``get_user``): Django builds the same
``SELECT … WHERE id = %s`` each time, which under load cost more than a cached page's whole response
(issue #22). These read it through ``user_by_pk``, kept in the process while the user table does not
change. Signing in is unchanged. A cached page may take the kept user unchecked (``get_user_unchecked``,
``cohorta.accounts.middleware``)."""

from collections.abc import Callable

from allauth.account import auth_backends as allauth_backends
from django.contrib.auth import backends as django_backends
from django.http import HttpResponse

from cohorta import read_cache
from cohorta.accounts.selectors import user_by_pk, user_by_pk_unchecked


class RememberedUserMixin:
    def get_user(self, user_id):
        user = user_by_pk(pk=user_id)
        return user if user is not None and self.user_can_authenticate(user) else None  # type: ignore[attr-defined]

    def get_user_unchecked(self, user_id, recheck: Callable[[], HttpResponse | None]) -> read_cache.Unchecked | None:
        """What ``get_user`` would answer from the row kept in this process, before checking it is current; None
        when nothing is kept or the kept row may not sign in (``get_user`` then decides)."""
        kept = user_by_pk_unchecked(pk=user_id, recheck=recheck)
        return kept if kept is not None and self.user_can_authenticate(kept.value) else None  # type: ignore[attr-defined]


class ModelBackend(RememberedUserMixin, django_backends.ModelBackend):
    """``django.contrib.auth.backends.ModelBackend`` (email and password)."""


class AuthenticationBackend(RememberedUserMixin, allauth_backends.AuthenticationBackend):
    """allauth's backend (sign-in by email, social accounts)."""
