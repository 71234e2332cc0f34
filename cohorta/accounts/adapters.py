import logging

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.shortcuts import render

from cohorta.accounts.sso import failure_reason

logger = logging.getLogger(__name__)


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return settings.ACCOUNT_ALLOW_SIGNUP


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """Sign-up through a provider is the same sign-up as by email: allauth sends ``user_signed_up``
    once for the new user (billing grants the trial on it), the role and two-factor rules are the
    user's own, and ACCOUNT_ALLOW_SIGNUP closes both doors."""

    def populate_user(self, request, sociallogin, data):
        user = super().populate_user(request, sociallogin, data)
        full_name = data.get("name") or " ".join(p for p in (data.get("first_name"), data.get("last_name")) if p)
        user.name = (full_name or "").strip()[:150]
        return user

    def on_authentication_error(self, request, provider, error=None, exception=None, extra_context=None):
        # One page for every failure, cancel included, naming the provider and what to do next.
        reason = failure_reason(provider_name=provider.name, error=error, exception=exception)
        logger.warning("Sign-in with %s failed (%s): %r", provider.sub_id, error, exception)
        response = render(
            request,
            "socialaccount/authentication_error.html",
            {"provider_name": provider.name, "reason": reason},
            status=401,
        )
        raise ImmediateHttpResponse(response)
