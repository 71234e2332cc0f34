"""Django's and allauth's authentication backends, reading the signed-in user without building its query.

Every signed-in page reads the user's row through the session (``get_user``): Django builds the same
``SELECT … WHERE id = %s`` each time, which under load cost more than a cached page's whole response
(issue #22). These read it through ``user_by_pk``, kept in the process while the user table does not
change. Signing in is unchanged."""

from allauth.account import auth_backends as allauth_backends
from django.contrib.auth import backends as django_backends

from cohorta.accounts.selectors import user_by_pk


class RememberedUserMixin:
    def get_user(self, user_id):
        user = user_by_pk(pk=user_id)
        return user if user is not None and self.user_can_authenticate(user) else None  # type: ignore[attr-defined]


class ModelBackend(RememberedUserMixin, django_backends.ModelBackend):
    """``django.contrib.auth.backends.ModelBackend`` (email and password)."""


class AuthenticationBackend(RememberedUserMixin, allauth_backends.AuthenticationBackend):
    """allauth's backend (sign-in by email, social accounts)."""
