"""Stripe settings from the environment: secrets from X_FILE, and no plain-HTTP API address in production."""

import pytest

from tests.test_settings_env import PRODUCTION_ENV, _django

PRINT = ["shell", "-c", "from django.conf import settings as s; print(s.STRIPE_SECRET_KEY, s.STRIPE_WEBHOOK_SECRET)"]


@pytest.mark.slow
def test_stripe_secrets_can_come_from_files(tmp_path):
    (tmp_path / "sk").write_text("sk_test_from_file\n")
    (tmp_path / "wh").write_text("whsec_from_file\n")
    result = _django(
        PRINT, {"STRIPE_SECRET_KEY_FILE": str(tmp_path / "sk"), "STRIPE_WEBHOOK_SECRET_FILE": str(tmp_path / "wh")}
    )
    assert result.returncode == 0, result.stderr
    assert "sk_test_from_file whsec_from_file" in result.stdout


@pytest.mark.slow
def test_production_refuses_a_plain_http_stripe_api_base():
    env = {**PRODUCTION_ENV, "STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_API_BASE": "http://stripe.internal"}
    result = _django(["check"], env)
    assert result.returncode != 0 and "STRIPE_API_BASE must be https://" in result.stderr
