"""Single sign-on, end to end against the project's fake OpenID Connect provider (tests/fakes/oidc_server.py):
Cohorta's real views and allauth talk HTTP to it, and it signs real RS256 ID tokens."""

from __future__ import annotations

import urllib.parse

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount
from django.core import mail

from billing.models import CreditTransaction, CreditTransactionKind
from cohorta.accounts.models import User
from cohorta.accounts.services import user_set_active
from cohorta.core.models import get_app_settings
from tests.accounts.sso_helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    LOGIN_PATH,
    PROVIDER_ID,
    oidc_provider_settings,
    return_to_cohorta,
    sso_sign_in,
    start_sign_in,
    visit_provider,
)
from tests.factories import UserFactory
from tests.fakes.oidc_server import FakeOIDCServer

pytestmark = pytest.mark.django_db

TRY_AGAIN = "Try again or use your email and password."


@pytest.fixture
def idp(settings):
    with FakeOIDCServer(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as server:
        settings.SOCIALACCOUNT_PROVIDERS = oidc_provider_settings(server)
        yield server


def _logged_in_user(client) -> User | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


def _trial_rows(user) -> int:
    return CreditTransaction.objects.filter(user=user, kind=CreditTransactionKind.TRIAL).count()


# --- buttons -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/signup/"])
def test_no_sso_buttons_without_a_configured_provider(client, settings, path):
    settings.SOCIALACCOUNT_PROVIDERS = {}
    page = client.get(path).content.decode()
    assert "Continue with" not in page and "sso-button" not in page


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/signup/"])
def test_each_configured_provider_has_its_button_with_an_icon(client, settings, path):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "microsoft": {"APPS": [{"client_id": "ms-id", "secret": "ms-secret", "settings": {"tenant": "common"}}]},
        "google": {"APPS": [{"client_id": "g-id", "secret": "g-secret"}]},
        **oidc_provider_settings(FakeOIDCServer()),
    }
    page = client.get(path).content.decode()
    for label, action, icon in [
        ("Continue with Microsoft", "/accounts/microsoft/login/", '<svg class="sso-icon"'),
        ("Continue with Google", "/accounts/google/login/", '<svg class="sso-icon"'),
        ("Continue with Fake IdP", LOGIN_PATH, "bi-shield-lock sso-icon"),
    ]:
        assert label in page
        # A POST form with the CSRF token: no "continue?" page between the button and the provider.
        form = page[page.index(f'action="{action}') :]
        assert form.index("csrfmiddlewaretoken") < form.index(label)
        assert icon in form[: form.index(label)]


# --- the generic OpenID Connect provider, the whole round trip ------------------------------------------


def test_first_sign_in_creates_a_researcher_with_the_trial_credits(client, idp):
    response = sso_sign_in(client)
    assert response.status_code == 302 and response["Location"] == "/"
    user = _logged_in_user(client)
    assert user is not None and user.email == "ada@example.com" and user.name == "Ada Lovelace"
    assert user.role == "researcher" and not user.is_staff and not user.is_superuser
    assert user.credit_balance == get_app_settings().trial_credits > 0
    assert _trial_rows(user) == 1
    assert EmailAddress.objects.get(user=user).verified  # the provider said so: no confirmation email
    assert mail.outbox == []
    account = SocialAccount.objects.get(user=user)
    assert (account.provider, account.uid) == (PROVIDER_ID, "fake-user-1")
    # The ID token's signature was checked against the provider's published key.
    assert "/jwks" in idp.paths_requested("GET")
    assert "Welcome, Ada Lovelace" in client.get("/").content.decode()


def test_a_second_sign_in_logs_into_the_same_user_without_a_second_trial(client, idp):
    sso_sign_in(client)
    first = _logged_in_user(client)
    client.post("/accounts/logout/")
    assert _logged_in_user(client) is None

    response = sso_sign_in(client)
    assert response.status_code == 302
    assert _logged_in_user(client) == first
    assert User.objects.count() == 1 and SocialAccount.objects.count() == 1
    first.refresh_from_db()
    assert _trial_rows(first) == 1 and first.credit_balance == get_app_settings().trial_credits


def test_an_sso_only_user_is_told_to_set_a_password_before_deleting_the_account(client, idp, owner):
    sso_sign_in(client)
    page = client.get("/settings/delete/").content.decode()
    assert "delete-needs-password" in page and 'href="/accounts/password/set/"' in page
    client.force_login(owner)  # an email sign-up has a password: no such note
    assert "delete-needs-password" not in client.get("/settings/delete/").content.decode()


def test_sign_in_goes_back_to_the_page_asked_for(client, idp):
    url = start_sign_in(client, next="/usage/")
    response = return_to_cohorta(client, visit_provider(url))
    assert response["Location"] == "/usage/"


def test_with_mandatory_verification_a_verified_provider_email_signs_in_at_once(client, idp, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    response = sso_sign_in(client)
    assert response.status_code == 302 and response["Location"] == "/"
    assert _logged_in_user(client) is not None and mail.outbox == []


def test_an_existing_account_with_that_verified_email_is_linked_not_duplicated(client, idp):
    existing = UserFactory(email="ada@example.com", name="Ada (email sign-up)")
    EmailAddress.objects.create(user=existing, email=existing.email, verified=True, primary=True)
    balance = existing.credit_balance

    response = sso_sign_in(client)
    assert response.status_code == 302
    assert _logged_in_user(client) == existing
    assert User.objects.count() == 1
    assert SocialAccount.objects.get(provider=PROVIDER_ID).user == existing
    existing.refresh_from_db()
    assert existing.credit_balance == balance and _trial_rows(existing) == 0  # not a sign-up: no trial
    assert existing.has_usable_password()  # the owner's verified address: their password stays


def test_an_unverified_email_at_the_provider_never_signs_into_the_existing_account(client, idp):
    existing = UserFactory(email="ada@example.com")
    EmailAddress.objects.create(user=existing, email=existing.email, verified=True, primary=True)
    idp.user["email_verified"] = False

    sso_sign_in(client)
    assert _logged_in_user(client) != existing
    assert not SocialAccount.objects.filter(user=existing).exists()
    assert User.objects.count() == 1


def test_an_sso_user_with_two_factor_authentication_is_asked_for_the_code(client, idp):
    sso_sign_in(client)
    user = _logged_in_user(client)
    Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "JBSWY3DPEHPK3PXP"})
    client.post("/accounts/logout/")

    response = sso_sign_in(client)
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/authenticate/"
    assert _logged_in_user(client) is None


def test_closed_sign_up_keeps_new_people_out_but_lets_existing_ones_in(client, idp, settings):
    settings.ACCOUNT_ALLOW_SIGNUP = False
    sso_sign_in(client)
    assert _logged_in_user(client) is None and not User.objects.exists()

    existing = UserFactory(email="ada@example.com")
    EmailAddress.objects.create(user=existing, email=existing.email, verified=True, primary=True)
    sso_sign_in(client)
    assert _logged_in_user(client) == existing


# --- refusals -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("wrong_audience", "Fake IdP signed you in to a different application"),
        ("expired", "the answer from Fake IdP had expired"),
        ("bad_signature", "the answer from Fake IdP could not be verified (its signature does not match"),
        ("wrong_issuer", "the answer did not come from the Fake IdP Cohorta is set up with"),
    ],
)
def test_a_bad_id_token_is_refused_with_a_clear_page(client, idp, fault, reason):
    idp.add_token_fault(fault)
    response = sso_sign_in(client)
    assert response.status_code == 401
    page = response.content.decode()
    assert f"Sign-in with Fake IdP failed: {reason}" in page
    assert TRY_AGAIN in page and 'href="/accounts/login/"' in page
    assert _logged_in_user(client) is None and not User.objects.exists()
    # The next, good, attempt works: nothing is stuck.
    assert sso_sign_in(client).status_code == 302 and _logged_in_user(client) is not None


def test_a_cancelled_consent_is_explained(client, idp):
    idp.consent = "deny"
    response = sso_sign_in(client)
    assert response.status_code == 401
    page = response.content.decode()
    assert "Sign-in with Fake IdP failed: access was not allowed at Fake IdP (the sign-in was cancelled)." in page
    assert TRY_AGAIN in page
    assert _logged_in_user(client) is None and not User.objects.exists()


def test_an_unreachable_provider_is_explained(client, idp):
    authorize = start_sign_in(client)
    callback = visit_provider(authorize)
    idp.stop()
    response = return_to_cohorta(client, callback)
    assert response.status_code == 401
    assert "Sign-in with Fake IdP failed: Fake IdP could not be reached." in response.content.decode()


def test_a_provider_error_text_is_not_shown_to_the_user(client, idp):
    authorize = start_sign_in(client)
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query)["state"][0]
    crafted = urllib.parse.urlencode({"error": "server_error", "error_description": "Call +1 555 0100", "state": state})
    response = client.get(f"/accounts/oidc/{PROVIDER_ID}/login/callback/?{crafted}")
    page = response.content.decode()
    assert "Sign-in with Fake IdP failed: Fake IdP did not complete the sign-in." in page
    assert "555" not in page


def test_a_disabled_sso_user_cannot_sign_in(client, idp):
    sso_sign_in(client)
    user = _logged_in_user(client)
    client.post("/accounts/logout/")
    user_set_active(user=user, active=False)  # what the admin's "Disable" does

    response = sso_sign_in(client)
    assert _logged_in_user(client) is None
    assert response.status_code == 302 and response["Location"] == "/accounts/inactive/"


def test_a_disabled_email_account_is_not_reached_through_sso_either(client, idp):
    existing = UserFactory(email="ada@example.com", is_active=False)
    EmailAddress.objects.create(user=existing, email=existing.email, verified=True, primary=True)
    response = sso_sign_in(client)
    assert _logged_in_user(client) is None
    assert response.status_code == 302 and response["Location"] == "/accounts/inactive/"
    assert User.objects.count() == 1  # no second account made for the same person either


# --- Microsoft (Entra ID) against the fake's Microsoft endpoints; Google's redirect ---------------------


@pytest.fixture
def microsoft(settings):
    with FakeOIDCServer(client_id="ms-client", client_secret="ms-secret") as server:
        settings.SOCIALACCOUNT_PROVIDERS = {
            "microsoft": {
                "APPS": [
                    {
                        "client_id": "ms-client",
                        "secret": "ms-secret",
                        "settings": {
                            "tenant": "contoso.onmicrosoft.com",
                            "login_url": server.base_url,
                            "graph_url": server.base_url,
                        },
                    }
                ]
            }
        }
        yield server


def test_microsoft_sends_people_to_the_configured_tenant(client, microsoft):
    authorize = urllib.parse.urlsplit(start_sign_in(client, "/accounts/microsoft/login/"))
    assert authorize.path == "/contoso.onmicrosoft.com/oauth2/v2.0/authorize"
    query = urllib.parse.parse_qs(authorize.query)
    assert query["client_id"] == ["ms-client"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == ["http://testserver/accounts/microsoft/login/callback/"]
    assert "User.Read" in query["scope"][0]


def test_microsoft_sign_in_creates_the_user_from_the_graph_profile(client, microsoft):
    response = sso_sign_in(client, "/accounts/microsoft/login/")
    assert response.status_code == 302
    user = _logged_in_user(client)
    assert user.email == "ada@example.com" and user.name == "Ada Lovelace"
    assert _trial_rows(user) == 1
    assert microsoft.tenants == ["contoso.onmicrosoft.com", "contoso.onmicrosoft.com"]
    # Graph does not say whether the address is verified: Cohorta confirms it itself.
    assert not EmailAddress.objects.get(user=user).verified


def test_microsoft_never_links_an_existing_account_by_email(client, microsoft):
    existing = UserFactory(email="ada@example.com")
    EmailAddress.objects.create(user=existing, email=existing.email, verified=True, primary=True)
    response = sso_sign_in(client, "/accounts/microsoft/login/")
    assert _logged_in_user(client) != existing
    assert not SocialAccount.objects.filter(user=existing).exists()
    # The person is asked to finish signing up, and pointed at their password for the existing account.
    assert response["Location"] == "/accounts/3rdparty/signup/"
    page = client.get(response["Location"]).content.decode()
    assert "You are signing up with your Microsoft account" in page and "Log in with your password" in page
    refused = client.post("/accounts/3rdparty/signup/", {"email": "ada@example.com"})
    assert "already exists" in refused.content.decode() and User.objects.count() == 1


def test_google_sends_people_to_google_with_the_callback_and_account_picker(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "google": {
            "APPS": [{"client_id": "g-client", "secret": "g-secret"}],
            "AUTH_PARAMS": {"prompt": "select_account"},
        }
    }
    authorize = urllib.parse.urlsplit(start_sign_in(client, "/accounts/google/login/"))
    assert (authorize.scheme, authorize.netloc, authorize.path) == ("https", "accounts.google.com", "/o/oauth2/v2/auth")
    query = urllib.parse.parse_qs(authorize.query)
    assert query["client_id"] == ["g-client"] and query["prompt"] == ["select_account"]
    assert query["redirect_uri"] == ["http://testserver/accounts/google/login/callback/"]
    assert {"email", "profile"} <= set(query["scope"][0].split())
    assert query["state"][0]
