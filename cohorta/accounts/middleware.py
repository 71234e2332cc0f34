"""Django's authentication middleware, except that a cached page checks its signed-in user in its own round trip.

Django reads the session's user before the view, through the backend's ``get_user``, which takes no request:
kept in the process (``cohorta.accounts.backends``), that still costs a Redis round trip for the user table's
version, one of a cached page's three (issue #22). For a view that is a cached page (``read_cache.cached_page``)
this hands the kept user out unchecked instead, and the page checks it with the versions it reads anyway
(``read_cache.Unchecked``); when the row moved, the page reads the user again through Django's ``get_user``
before it serves or computes anything, and sends a user who may no longer sign in to the sign-in page.

Only the plain case is taken unchecked: a GET, a session naming one of the project's backends and a user it
kept, who may sign in, with the session's hash matching the kept row's password (so a password change still
signs other sessions out). Anything else (no session, a hash made with an old secret, another backend, the
cache off) goes through Django's ``get_user`` as before.
"""

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import middleware as auth_middleware
from django.contrib.auth.views import redirect_to_login
from django.utils.crypto import constant_time_compare

from cohorta import read_cache
from cohorta.accounts.models import User


class AuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method not in {"GET", "HEAD"} or not read_cache.is_cached_page(view_func):
            return None
        session = request.session
        try:
            user_id = User._meta.pk.to_python(session[auth.SESSION_KEY])
            backend_path = session[auth.BACKEND_SESSION_KEY]
        except KeyError:
            return None
        if backend_path not in settings.AUTHENTICATION_BACKENDS:
            return None
        get_user_unchecked = getattr(auth.load_backend(backend_path), "get_user_unchecked", None)
        if get_user_unchecked is None:
            return None

        def recheck():
            request.user = auth.get_user(request)
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            return None

        kept = get_user_unchecked(user_id, recheck)
        if kept is None:
            return None
        session_hash = session.get(auth.HASH_SESSION_KEY)
        if not session_hash or not constant_time_compare(session_hash, kept.value.get_session_auth_hash()):
            return None
        request.user = kept.value
        read_cache.check_later(request, kept)
        return None
