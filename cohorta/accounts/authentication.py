from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from cohorta import read_cache
from cohorta.accounts.selectors import api_token_user, api_token_user_unchecked


def token_from_header(value: str) -> str | None:
    parts = value.split()
    if len(parts) == 2 and parts[0].lower() in {"bearer", "token"}:
        return parts[1]
    return None


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>`` with a personal API token."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        raw = token_from_header(header)
        if raw is None:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer <token>'.")
        view = request.parser_context.get("view") if request.parser_context else None
        if view is not None and read_cache.is_cached_read(view, request.method):
            # A cached read checks the kept token with the versions it reads anyway: one round trip, not two.
            def recheck() -> None:
                request.user, request.auth = self._user(raw), None

            unchecked = api_token_user_unchecked(raw=raw, recheck=recheck)
            if unchecked is not None:
                return (unchecked.value, unchecked)
        return (self._user(raw), None)

    @staticmethod
    def _user(raw: str):
        user = api_token_user(raw=raw)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or disabled API token.")
        return user

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to unauthenticated requests.
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "cohorta.accounts.authentication.ApiTokenAuthentication"
    name = "ApiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A personal API token (coh_…)."}
