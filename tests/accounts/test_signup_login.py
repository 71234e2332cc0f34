import re

import pytest
from django.core import mail

from cohorta.accounts.models import User
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

SIGNUP = "/accounts/signup/"
LOGIN = "/accounts/login/"


def _signup(client, email, password=DEFAULT_PASSWORD, password2=None):
    return client.post(SIGNUP, {"email": email, "password1": password, "password2": password2 or password})


def test_signup_creates_a_researcher_and_sends_a_confirmation(client):
    response = _signup(client, "New.Person@Example.com")
    assert response.status_code == 302
    user = User.objects.get()
    assert user.email == "new.person@example.com"
    assert user.role == "researcher" and not user.is_staff
    assert len(mail.outbox) == 1 and "confirm" in mail.outbox[0].body.lower()


def test_confirmation_link_verifies_the_email(client):
    _signup(client, "verify@example.com")
    link = re.search(r"http://testserver(/accounts/confirm-email/[^\s]+/)", mail.outbox[0].body).group(1)
    assert client.get(link).status_code == 200
    client.post(link)
    assert User.objects.get().emailaddress_set.get().verified


def test_signup_with_an_existing_email_creates_nothing(client, owner):
    response = _signup(client, "OWNER@example.com")
    assert User.objects.count() == 1
    assert response.status_code == 200
    assert "already registered with this email" in response.content.decode()


def test_existing_email_with_mandatory_verification_does_not_reveal_the_account(client, owner, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    response = _signup(client, "owner@example.com")
    assert User.objects.count() == 1
    # No enumeration: the page answers as for a new address, and the real
    # owner is told by email that someone tried to sign up with it.
    assert response.status_code == 302
    assert [message.to for message in mail.outbox] == [["owner@example.com"]]


def test_signup_with_a_weak_password_is_refused(client):
    response = _signup(client, "weak@example.com", password="password")
    assert response.status_code == 200
    assert not User.objects.exists()
    assert "too common" in response.content.decode()


def test_signup_with_mismatched_passwords_is_refused(client):
    response = _signup(client, "mismatch@example.com", password2="Another-Password-77")
    assert response.status_code == 200 and not User.objects.exists()


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "spaces in@example.com", ""])
def test_signup_with_a_malformed_email_is_refused(client, email):
    response = _signup(client, email)
    assert response.status_code == 200
    assert not User.objects.exists()


def test_signup_has_no_username_field(client):
    assert 'name="username"' not in client.get(SIGNUP).content.decode()


def test_login_with_email_and_logout(client, owner):
    response = client.post(LOGIN, {"login": "owner@example.com", "password": DEFAULT_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert "Welcome, Olivia Owner" in client.get("/").content.decode()
    client.post("/accounts/logout/")
    assert client.get("/jobs/").status_code == 302


def test_wrong_password_shows_an_error(client, owner):
    response = client.post(LOGIN, {"login": "owner@example.com", "password": "nope-nope-nope"})
    assert response.status_code == 200
    assert "not correct" in response.content.decode()


def test_login_brute_force_on_one_account_locks_it_for_a_while(client, owner):
    for attempt in range(5):
        response = client.post(LOGIN, {"login": "owner@example.com", "password": f"wrong-{attempt}"})
        assert "Too many failed login attempts" not in response.content.decode()
    locked = client.post(LOGIN, {"login": "owner@example.com", "password": "wrong-again"})
    assert "Too many failed login attempts" in locked.content.decode()
    # Even the right password is refused until the window passes.
    client.post(LOGIN, {"login": "owner@example.com", "password": DEFAULT_PASSWORD})
    assert "_auth_user_id" not in client.session


def test_hammering_the_login_endpoint_gets_429(client):
    statuses = [client.post(LOGIN, {"login": f"u{i}@example.com", "password": "x"}).status_code for i in range(35)]
    assert statuses[0] == 200
    assert statuses[-1] == 429


def test_disabled_user_cannot_log_in(client):
    UserFactory(email="gone@example.com", is_active=False)
    response = client.post(LOGIN, {"login": "gone@example.com", "password": DEFAULT_PASSWORD})
    assert response.status_code in (200, 302)
    assert "_auth_user_id" not in client.session
    if response.status_code == 302:
        assert response["Location"] == "/accounts/inactive/"


def test_password_reset_sends_a_link_that_works(client, owner):
    response = client.post("/accounts/password/reset/", {"email": "owner@example.com"})
    assert response.status_code == 302
    link = re.search(r"http://testserver(/accounts/password/reset/key/[^\s]+/)", mail.outbox[0].body).group(1)
    follow = client.get(link, follow=True)
    assert follow.status_code == 200
    form_url = follow.redirect_chain[-1][0] if follow.redirect_chain else link
    done = client.post(form_url, {"password1": "Brand-New-Secret-42", "password2": "Brand-New-Secret-42"})
    assert done.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("Brand-New-Secret-42")


def _current_totp(secret: str) -> str:
    import time

    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def test_mfa_totp_can_be_activated_and_is_then_required(client, owner):
    from allauth.account.models import EmailAddress
    from allauth.mfa.models import Authenticator

    # allauth only lets verified addresses turn on two-factor authentication.
    EmailAddress.objects.create(user=owner, email=owner.email, verified=True, primary=True)
    client.post(LOGIN, {"login": owner.email, "password": DEFAULT_PASSWORD})
    # Turning on 2FA is sensitive: allauth asks for the password again first.
    assert client.get("/accounts/2fa/totp/activate/")["Location"].startswith("/accounts/reauthenticate/")
    client.post("/accounts/reauthenticate/", {"password": DEFAULT_PASSWORD})
    assert client.get("/accounts/2fa/totp/activate/").status_code == 200
    secret = client.session["mfa.totp.secret"]
    response = client.post("/accounts/2fa/totp/activate/", {"code": _current_totp(secret)})
    assert response.status_code == 302
    assert Authenticator.objects.filter(user=owner, type=Authenticator.Type.TOTP).exists()

    client.post("/accounts/logout/")
    response = client.post(LOGIN, {"login": owner.email, "password": DEFAULT_PASSWORD})
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert "_auth_user_id" not in client.session
    wrong = client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert wrong.status_code == 200 and "_auth_user_id" not in client.session
