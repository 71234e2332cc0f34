"""Driving a single sign-on through the fake provider with Django's test client (no browser)."""

from __future__ import annotations

import urllib.parse

import requests

from tests.fakes.oidc_server import FakeOIDCServer

PROVIDER_ID = "fakeidp"
PROVIDER_NAME = "Fake IdP"
CLIENT_ID = "cohorta-test-client"
CLIENT_SECRET = "fake-client-secret-0123"
LOGIN_PATH = f"/accounts/oidc/{PROVIDER_ID}/login/"


def oidc_provider_settings(idp: FakeOIDCServer) -> dict:
    """SOCIALACCOUNT_PROVIDERS as config/settings.py builds it from OIDC_* (no database SocialApp)."""
    return {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": PROVIDER_ID,
                    "name": PROVIDER_NAME,
                    "client_id": CLIENT_ID,
                    "secret": CLIENT_SECRET,
                    "settings": {"server_url": idp.base_url},
                }
            ]
        }
    }


def start_sign_in(client, login_path: str = LOGIN_PATH, **query) -> str:
    """Press "Continue with …": the button's POST answers a redirect to the provider."""
    path = login_path + (f"?{urllib.parse.urlencode(query)}" if query else "")
    response = client.post(path)
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def visit_provider(authorize_url: str) -> str:
    """The browser at the provider: returns where the provider sends it back to."""
    response = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[:500]
    return response.headers["Location"]


def return_to_cohorta(client, callback_url: str):
    parts = urllib.parse.urlsplit(callback_url)
    assert parts.netloc == "testserver", callback_url
    return client.get(f"{parts.path}?{parts.query}")


def sso_sign_in(client, login_path: str = LOGIN_PATH):
    """The whole round trip; returns Cohorta's answer to the callback."""
    return return_to_cohorta(client, visit_provider(start_sign_in(client, login_path)))
