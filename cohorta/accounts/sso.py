"""Single sign-on through allauth's social accounts: how a failed sign-in is explained, and the
generic OpenID Connect callback with the ID token's signature always checked.

allauth skips the signature of an ID token it received straight from the token endpoint (OpenID
Connect allows it over TLS). A generic provider's address is whatever the operator typed, so we
check the signature against the provider's published keys every time: a forged or tampered token
is refused however it arrived.
"""

from __future__ import annotations

import jwt
import requests
from allauth.account.internal.decorators import login_not_required
from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.base.constants import AuthError
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from django.http import Http404, HttpRequest, HttpResponse


class SignatureCheckingOIDCAdapter(OpenIDConnectOAuth2Adapter):
    def complete_login(self, request: HttpRequest, app, token, **kwargs):
        # allauth verifies the signature only when it did not fetch the token itself.
        self.did_fetch_access_token = False
        return super().complete_login(request, app, token, **kwargs)


def _run(view_class, request: HttpRequest, provider_id: str) -> HttpResponse:
    adapter = SignatureCheckingOIDCAdapter(request, provider_id)
    try:
        return view_class.adapter_view(adapter)(request)
    except SocialApp.DoesNotExist as exc:
        raise Http404("No such sign-in provider") from exc
    except requests.RequestException as exc:
        # The discovery document is read before allauth's own error handling starts: a provider that
        # is down would otherwise be a server error instead of the sign-in failure page.
        return render_authentication_error(request, adapter.get_provider(), exception=exc)


@login_not_required
def oidc_login(request: HttpRequest, provider_id: str) -> HttpResponse:
    return _run(OAuth2LoginView, request, provider_id)


@login_not_required
def oidc_callback(request: HttpRequest, provider_id: str) -> HttpResponse:
    return _run(OAuth2CallbackView, request, provider_id)


def failure_reason(*, provider_name: str, error: str | None, exception: BaseException | None) -> str:
    """What went wrong, in words a person can act on (never the provider's own text, which anyone
    can put in a crafted callback link)."""
    if error == AuthError.CANCELLED:
        return f"access was not allowed at {provider_name} (the sign-in was cancelled)"
    cause = exception.__cause__ if exception is not None else None
    if isinstance(cause, jwt.ExpiredSignatureError):
        return f"the answer from {provider_name} had expired"
    if isinstance(cause, jwt.InvalidAudienceError):
        return f"{provider_name} signed you in to a different application (its client ID does not match Cohorta's)"
    if isinstance(cause, jwt.InvalidIssuerError):
        return f"the answer did not come from the {provider_name} Cohorta is set up with"
    if isinstance(cause, jwt.InvalidSignatureError) or "kid" in str(exception or ""):
        return (
            f"the answer from {provider_name} could not be verified "
            f"(its signature does not match {provider_name}'s keys)"
        )
    if isinstance(cause, jwt.PyJWTError):
        return f"the answer from {provider_name} could not be verified"
    if isinstance(exception, requests.RequestException):
        return f"{provider_name} could not be reached"
    return f"{provider_name} did not complete the sign-in"
