"""Websocket authentication: the browser's session cookie, or an API token.

Scripts connect with an ``Authorization: Bearer <token>`` header; browsers
use the session through Channels' ``AuthMiddlewareStack``.
"""

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import AllowedHostsOriginValidator

from cohorta.accounts.authentication import token_from_header
from cohorta.accounts.selectors import api_token_user


class TokenAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        header = headers.get(b"authorization", b"").decode("latin-1")
        raw = token_from_header(header) if header else None
        if raw:
            user = await database_sync_to_async(api_token_user)(raw=raw)
            if user is not None:
                scope = dict(scope, user=user)
        return await super().__call__(scope, receive, send)


def TokenAuthMiddlewareStack(inner):  # noqa: N802 - mirrors Channels' naming
    # The session stack runs first; a valid token then overrides its user.
    return AuthMiddlewareStack(TokenAuthMiddleware(inner))


class OriginGuard:
    """Checks the Origin of cookie-authenticated sockets only.

    Cross-site websocket hijacking rides on the browser's cookies; a browser
    cannot set an Authorization header on a websocket, so token-authenticated
    scripts (which usually send no Origin at all) skip the check.
    """

    def __init__(self, inner):
        self.inner = inner
        self.checked = AllowedHostsOriginValidator(inner)

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        if headers.get(b"authorization"):
            return await self.inner(scope, receive, send)
        return await self.checked(scope, receive, send)


def websocket_application(router):
    return OriginGuard(TokenAuthMiddlewareStack(router))
