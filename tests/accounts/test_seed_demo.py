import pytest
from django.core.management import call_command

from billing.selectors import credits_balance
from cohorta.accounts.models import User

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_prints_logins(capsys, settings):
    settings.DEBUG = True  # pytest-django runs with DEBUG off; the default password is for local use
    call_command("seed_demo")
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "demo@cohorta.local" in out and "admin@cohorta.local" in out
    demo = User.objects.get(email="demo@cohorta.local")
    assert credits_balance(user=demo) == 200  # granted once, not twice
    assert User.objects.get(email="admin@cohorta.local").is_staff
    assert demo.check_password("cohorta-demo-2026")


def test_seed_demo_refuses_default_password_in_production(settings):
    from django.core.management.base import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("seed_demo")
