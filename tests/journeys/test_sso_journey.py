"""Single sign-on in a browser: the log-in page's "Continue with Fake IdP" button, the provider's consent
page (the project's fake OpenID Connect provider), and back to Cohorta's dashboard, signed in with the
trial credits; a second visit is the same account; a cancelled consent is explained."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.journey]

SSO_ON_STACK = True  # conftest's stack configures the fake provider for this module
EMAIL = "grace.sso@example.com"


def _new_browser_session(page):
    """Leave the page first: its background requests (live updates) landing after the cookies are cleared would
    set a CSRF cookie of their own, and the log-in form's token would no longer match it."""
    page.goto("about:blank")
    page.context.clear_cookies()


def _continue_with_fake_idp(page):
    page.get_by_role("button", name="Continue with Fake IdP").click()
    expect(page.get_by_role("heading", name="Fake IdP")).to_be_visible()


def test_sign_in_with_single_sign_on(page, stack, screenshots):
    from allauth.socialaccount.models import SocialAccount

    from billing.models import CreditTransaction
    from cohorta.accounts.models import User

    shot = screenshots(90, 8)
    stack.oidc.user.update(sub="grace-1", email=EMAIL, email_verified=True, name="Grace Hopper")

    # 1. The log-in page offers the provider, at desktop and phone width.
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto("/accounts/login/")
    expect(page.get_by_role("button", name="Continue with Fake IdP")).to_be_visible()
    shot("sso-login")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/accounts/signup/")
    expect(page.get_by_role("button", name="Continue with Fake IdP")).to_be_visible()
    shot("sso-signup-phone")
    page.set_viewport_size({"width": 1366, "height": 768})

    # 2. The provider asks for consent; Allow brings the person back, signed in, on the dashboard.
    page.goto("/accounts/login/")
    _continue_with_fake_idp(page)
    expect(page.get_by_text("Grace Hopper <grace.sso@example.com>")).to_be_visible()
    shot("sso-consent")
    page.get_by_role("button", name="Allow").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name=re.compile("Welcome"))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"Credits\s*60"))).to_be_visible()
    shot("sso-dashboard")
    user = User.objects.get(email=EMAIL)
    assert user.name == "Grace Hopper" and user.role == "researcher"
    assert SocialAccount.objects.get(user=user).uid == "grace-1"
    assert CreditTransaction.objects.filter(user=user, kind="trial").count() == 1

    # An account made through the provider has no password: deleting it says to set one first.
    page.goto("/settings/delete/")
    expect(page.locator("#delete-needs-password")).to_contain_text("Set a password")
    shot("sso-delete-needs-password")

    # 3. Another day, another browser session: the same account, no second trial.
    _new_browser_session(page)
    page.goto("/accounts/login/")
    _continue_with_fake_idp(page)
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_role("heading", name=re.compile("Welcome"))).to_be_visible()
    assert User.objects.count() == 1
    assert CreditTransaction.objects.filter(user=user, kind="trial").count() == 1

    # 4. Cancelling at the provider is explained on Cohorta's page, with the way back.
    _new_browser_session(page)
    page.goto("/accounts/login/")
    _continue_with_fake_idp(page)
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "Sign-in with Fake IdP failed: access was not allowed at Fake IdP (the sign-in was cancelled). "
        "Try again or use your email and password."
    )
    shot("sso-cancelled")
    page.get_by_role("link", name="Back to log in").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
