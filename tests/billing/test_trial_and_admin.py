import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing import selectors
from billing.models import CreditTransaction
from billing.services import credits_grant, credits_grant_trial
from cohorta.accounts.models import User
from cohorta.core.models import FIRST_STUDY_CREDITS, AppSettings, get_app_settings
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db


def _signup(client, email: str):
    return client.post(
        "/accounts/signup/", {"email": email, "password1": DEFAULT_PASSWORD, "password2": DEFAULT_PASSWORD}
    )


@pytest.mark.parametrize("verification", ["none", "mandatory"])
def test_signup_grants_the_trial_credits_once(client, settings, verification):
    settings.ACCOUNT_EMAIL_VERIFICATION = verification
    assert _signup(client, "new@example.com").status_code == 302
    user = User.objects.get(email="new@example.com")
    assert selectors.credits_balance(user=user) == 60
    trial = CreditTransaction.objects.get(user=user)
    assert (trial.kind, trial.delta, trial.balance_after) == ("trial", 60, 60)
    assert trial.idempotency_key == f"trial:{user.pk}"
    assert credits_grant_trial(user=user) == trial  # a second trial is the same trial
    assert selectors.credits_balance(user=user) == 60


def test_the_default_trial_covers_a_first_study():
    """Six AI personas, one AI change and one autonomous run (its themes and report are free), at the
    default costs: what a new account can do before it can buy anything."""
    app = get_app_settings()
    first_study = 6 * app.persona_credit_cost + app.persona_modify_credit_cost + app.session_run_credit_cost
    assert first_study == FIRST_STUDY_CREDITS == 54
    assert app.trial_credits >= first_study and app.trial_credits == 60


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("before", "after"), [(50, 60), (75, 75)])
def test_the_migration_moves_only_a_trial_left_on_the_old_default(before, after):
    executor = MigrationExecutor(connection)
    executor.migrate([("core", "0002_autonomous_outage_settings")])
    old = executor.loader.project_state([("core", "0002_autonomous_outage_settings")]).apps
    old.get_model("core", "AppSettings").objects.update_or_create(pk=1, defaults={"trial_credits": before})

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    # Every app's latest migration: going back in core also unapplied what depends on it elsewhere.
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert AppSettings.objects.get(pk=1).trial_credits == after


def test_trial_amount_follows_app_settings(client):
    app = get_app_settings()
    app.trial_credits = 120
    app.save()
    _signup(client, "generous@example.com")
    assert selectors.credits_balance(user=User.objects.get(email="generous@example.com")) == 120


def test_zero_trial_credits_records_nothing(client):
    app = get_app_settings()
    app.trial_credits = 0
    app.save()
    _signup(client, "none@example.com")
    assert selectors.credits_balance(user=User.objects.get(email="none@example.com")) == 0
    assert not CreditTransaction.objects.exists()


def test_a_refused_signup_grants_nothing(client):
    client.post("/accounts/signup/", {"email": "x@example.com", "password1": "password", "password2": "password"})
    assert not CreditTransaction.objects.exists()


def test_users_created_outside_signup_get_no_trial(owner):
    assert selectors.credits_balance(user=owner) == 0 and not CreditTransaction.objects.exists()


def test_admin_ledger_is_read_only(client, staff_user, owner):
    row = credits_grant(user=owner, amount=5, idempotency_key="support:42", reference="ticket:42")
    client.force_login(staff_user)
    changelist = client.get("/admin/billing/credittransaction/")
    assert changelist.status_code == 200 and "owner@example.com" in changelist.content.decode()
    assert client.get("/admin/billing/credittransaction/?q=support:42").context["cl"].result_count == 1
    assert client.get("/admin/billing/credittransaction/?kind__exact=spend").context["cl"].result_count == 0
    assert client.get("/admin/billing/credittransaction/add/").status_code == 403
    detail = client.get(f"/admin/billing/credittransaction/{row.pk}/change/")
    assert detail.status_code == 200 and 'name="delta"' not in detail.content.decode()
    assert client.post(f"/admin/billing/credittransaction/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert CreditTransaction.objects.filter(pk=row.pk, delta=5).exists()
