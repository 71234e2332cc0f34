"""Single sign-on is configured by the environment: each provider exists only with its client id and secret.

Each case runs the real settings module in a subprocess with a controlled environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SSO_VARIABLES = {
    "MICROSOFT_CLIENT_ID",
    "MICROSOFT_CLIENT_SECRET",
    "MICROSOFT_TENANT",
    "GOOGLE_CLIENT_ID",
    "GOOGLE_CLIENT_SECRET",
    "OIDC_PROVIDER_ID",
    "OIDC_NAME",
    "OIDC_SERVER_URL",
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
}
# What the settings built, and which sign-in paths answer.
PROBE = """
import json
from django.conf import settings
from django.urls import Resolver404, resolve
paths = [
    "/accounts/microsoft/login/callback/",
    "/accounts/google/login/callback/",
    "/accounts/oidc/okta/login/callback/",
]
def routed(path):
    try:
        return resolve(path).func.__module__
    except Resolver404:
        return None
print(json.dumps({"providers": settings.SOCIALACCOUNT_PROVIDERS, "routes": {p: routed(p) for p in paths}}))
"""


def _settings(extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    dropped = {"DJANGO_SETTINGS_MODULE", "DEBUG", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", *SSO_VARIABLES}
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "SQLITE_PATH": "/tmp/cohorta-sso-settings.sqlite3"})
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _probe(extra_env: dict[str, str]) -> dict:
    result = _settings(extra_env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_without_sso_variables_there_is_no_provider_and_no_sign_in_route():
    probe = _probe({})
    assert probe["providers"] == {}
    assert set(probe["routes"].values()) == {None}


@pytest.mark.slow
def test_each_provider_needs_both_its_client_id_and_secret():
    probe = _probe({"MICROSOFT_CLIENT_ID": "ms-id", "GOOGLE_CLIENT_SECRET": "g-secret"})
    assert probe["providers"] == {}


@pytest.mark.slow
def test_every_provider_from_the_environment():
    probe = _probe(
        {
            "MICROSOFT_CLIENT_ID": "ms-id",
            "MICROSOFT_CLIENT_SECRET": "ms-secret",
            "MICROSOFT_TENANT": "contoso.onmicrosoft.com",
            "GOOGLE_CLIENT_ID": "g-id",
            "GOOGLE_CLIENT_SECRET": "g-secret",
            "OIDC_PROVIDER_ID": "okta",
            "OIDC_NAME": "Okta",
            "OIDC_SERVER_URL": "https://example.okta.com",
            "OIDC_CLIENT_ID": "okta-id",
            "OIDC_CLIENT_SECRET": "okta-secret",
        }
    )
    providers = probe["providers"]
    microsoft = providers["microsoft"]["APPS"][0]
    assert (microsoft["client_id"], microsoft["secret"]) == ("ms-id", "ms-secret")
    assert microsoft["settings"]["tenant"] == "contoso.onmicrosoft.com"
    assert microsoft["settings"]["login_url"] == "https://login.microsoftonline.com"
    assert providers["google"]["APPS"][0]["client_id"] == "g-id"
    oidc = providers["openid_connect"]["APPS"][0]
    assert (oidc["provider_id"], oidc["name"], oidc["client_id"]) == ("okta", "Okta", "okta-id")
    assert oidc["settings"]["server_url"] == "https://example.okta.com"
    assert probe["routes"] == {
        "/accounts/microsoft/login/callback/": "allauth.socialaccount.providers.oauth2.views",
        "/accounts/google/login/callback/": "allauth.socialaccount.providers.oauth2.views",
        "/accounts/oidc/okta/login/callback/": "cohorta.accounts.sso",
    }


@pytest.mark.slow
def test_microsoft_defaults_to_any_tenant():
    probe = _probe({"MICROSOFT_CLIENT_ID": "ms-id", "MICROSOFT_CLIENT_SECRET": "ms-secret"})
    assert probe["providers"]["microsoft"]["APPS"][0]["settings"]["tenant"] == "common"
    assert set(probe["providers"]) == {"microsoft"}


@pytest.mark.slow
def test_openid_connect_needs_its_server_url():
    result = _settings({"OIDC_CLIENT_ID": "id", "OIDC_CLIENT_SECRET": "secret"})
    assert result.returncode != 0 and "OIDC_SERVER_URL is required" in result.stderr


@pytest.mark.slow
def test_production_refuses_a_plain_http_openid_connect_server():
    production = {
        "DEBUG": "0",
        "SECRET_KEY": "k" * 10 + "Zq8#vL2@pX9!mR4$tW7^yB1&nC6*eF3(hJ5)uA0-sD" + "g" * 10,
        "ALLOWED_HOSTS": "cohorta.example.com",
    }
    canary = "oidc-canary-secret-7f3a"
    oidc = {"OIDC_CLIENT_ID": "id", "OIDC_CLIENT_SECRET": canary, "OIDC_SERVER_URL": "http://idp.example.com"}
    result = _settings({**production, **oidc})
    assert result.returncode != 0 and "OIDC_SERVER_URL must be https://" in result.stderr
    assert canary not in result.stderr
