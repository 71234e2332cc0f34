from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import CreditTransaction
from billing.services import credits_grant
from cohorta.audit.models import AuditEntry
from cohorta.core.models import get_app_settings

pytestmark = pytest.mark.django_db


def test_app_settings_changes_are_audited_with_before_and_after(staff_client, staff_user):
    app = get_app_settings()
    url = reverse("admin:core_appsettings_change", args=[app.pk])
    form = staff_client.get(url).context["adminform"].form
    data = {key: value for key, value in form.initial.items() if value is not None}
    data.update(
        trial_credits=75, session_run_credit_cost=45, default_monthly_quota_usd="30.00", change_reason="Q4 pricing"
    )
    assert staff_client.post(url, data).status_code == 302
    entry = AuditEntry.objects.get()
    assert entry.action == AuditEntry.Action.SETTINGS_CHANGE and entry.actor == staff_user
    assert entry.before == {"trial_credits": 60, "session_run_credit_cost": 40, "default_monthly_quota_usd": "25.00"}
    assert entry.after == {"trial_credits": 75, "session_run_credit_cost": 45, "default_monthly_quota_usd": "30.00"}
    assert entry.reason == "Q4 pricing"
    assert get_app_settings().default_monthly_quota_usd == Decimal("30.00")


def test_saving_app_settings_unchanged_writes_no_audit(staff_client):
    app = get_app_settings()
    url = reverse("admin:core_appsettings_change", args=[app.pk])
    form = staff_client.get(url).context["adminform"].form
    data = {key: value for key, value in form.initial.items() if value is not None}
    assert staff_client.post(url, data).status_code == 302
    assert not AuditEntry.objects.exists()


def test_ledger_is_read_only_and_links_to_adjustments(staff_client, owner):
    row = credits_grant(user=owner, amount=5, idempotency_key="t:1")
    listing = staff_client.get(reverse("admin:billing_credittransaction_changelist")).content.decode()
    assert reverse("admin:accounts_user_change", args=[owner.pk]) in listing
    detail = staff_client.get(reverse("admin:billing_credittransaction_change", args=[row.pk])).content.decode()
    assert reverse("admin:accounts_user_credits", args=[owner.pk]) in detail and 'name="delta"' not in detail
    assert (
        staff_client.post(reverse("admin:billing_credittransaction_change", args=[row.pk]), {"delta": 500}).status_code
        == 403
    )
    assert CreditTransaction.objects.get(pk=row.pk).delta == 5


def test_ledger_filters_by_user_and_admin_made_rows(staff_client, staff_user, owner, other_user):
    credits_grant(user=owner, amount=5, idempotency_key="t:2", created_by=staff_user)
    credits_grant(user=other_user, amount=5, idempotency_key="t:3")
    url = reverse("admin:billing_credittransaction_changelist")
    assert staff_client.get(f"{url}?user__id__exact={owner.pk}").context["cl"].result_count == 1
    assert staff_client.get(f"{url}?created_by__isempty=0").context["cl"].result_count == 1
