from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import CreditTransaction
from billing.services import credits_grant
from cohorta.accounts.models import User
from cohorta.audit.models import AuditEntry
from cohorta.core.models import get_app_settings
from cohorta.jobs.models import JobState
from tests.backoffice.conftest import make_event
from tests.factories import JobFactory, UserFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/accounts/user/"


def _action(client, action: str, users, follow: bool = False, **data):
    payload = {"action": action, ACTION_CHECKBOX_NAME: [u.pk for u in users], **data}
    return client.post(CHANGELIST, payload, follow=follow)


# --- the list ---------------------------------------------------------------------------------------


def test_list_shows_balance_month_spend_quota_role_and_activity(staff_client, owner):
    credits_grant(user=owner, amount=37, idempotency_key="t:1")
    make_event(user=owner, cost="1.25")
    make_event(user=owner, cost="0.75")
    owner.monthly_quota_usd = Decimal("10.00")
    owner.save()
    response = staff_client.get(CHANGELIST + f"?q={owner.email}")
    row = response.context["cl"].result_list[0]
    assert (row.credit_balance, row.month_spend, row.effective_quota) == (37, Decimal(2), Decimal(10))
    body = response.content.decode()
    assert "$2.00" in body and "$10.00" in body and "20% used" in body and "researcher" in body


def test_default_quota_comes_from_app_settings(staff_client, owner):
    app = get_app_settings()
    app.default_monthly_quota_usd = Decimal("12.50")
    app.save()
    row = staff_client.get(CHANGELIST + f"?q={owner.email}").context["cl"].result_list[0]
    assert row.effective_quota == Decimal("12.50")
    assert "· default" in staff_client.get(CHANGELIST).content.decode()


def test_last_months_events_do_not_count_towards_this_month(staff_client, owner):
    from usage.services import month_start

    make_event(user=owner, cost="5", at=month_start() - __import__("datetime").timedelta(seconds=1))
    make_event(user=owner, cost="1")
    row = staff_client.get(CHANGELIST + f"?q={owner.email}").context["cl"].result_list[0]
    assert row.month_spend == Decimal(1)


def _changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CHANGELIST + "?o=5").status_code == 200  # sorted by month spend, the costliest column
    return len(queries)


def test_the_list_costs_the_same_queries_for_5_or_50_users(staff_client, make_users):
    users = make_users(5)
    for user in users:
        make_event(user=user, cost="0.10")
    staff_client.get(CHANGELIST)  # warm caches (session, app settings)
    few = _changelist_queries(staff_client)
    for user in make_users(45):
        make_event(user=user, cost="0.20")
        credits_grant(user=user, amount=3, idempotency_key=f"t:{user.pk}")
    many = _changelist_queries(staff_client)
    assert few == many
    assert many <= 8


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("role=admin", {"staff@example.com"}),
        ("quota=over", {"owner@example.com"}),
        ("spend=yes", {"owner@example.com"}),
    ],
)
def test_filters(staff_client, owner, other_user, query, expected):
    owner.monthly_quota_usd = Decimal("1.00")
    owner.save()
    make_event(user=owner, cost="1.50")
    emails = {u.email for u in staff_client.get(f"{CHANGELIST}?{query}").context["cl"].result_list}
    assert emails == expected


def test_balance_filter_and_search(staff_client, owner, other_user):
    credits_grant(user=owner, amount=20, idempotency_key="t:2")
    assert [u.email for u in staff_client.get(CHANGELIST + "?balance=some").context["cl"].result_list] == [owner.email]
    assert [u.email for u in staff_client.get(CHANGELIST + "?q=Oscar").context["cl"].result_list] == [other_user.email]


# --- enable / disable / roles -------------------------------------------------------------------------


def test_disable_cancels_jobs_and_is_audited_with_ip(staff_client, staff_user, owner):
    job = JobFactory(owner=owner, state=JobState.PENDING)
    _action(staff_client, "disable_users", [owner])
    owner.refresh_from_db()
    job.refresh_from_db()
    assert not owner.is_active and job.state == JobState.CANCELLED
    entry = AuditEntry.objects.get(action=AuditEntry.Action.USER_DISABLE)
    assert entry.actor == staff_user and entry.subject_user == owner
    assert (entry.before, entry.after) == ({"is_active": True}, {"is_active": False})
    assert entry.ip_address == "127.0.0.1"  # the test client's address

    _action(staff_client, "enable_users", [owner])
    owner.refresh_from_db()
    assert owner.is_active
    assert AuditEntry.objects.filter(action=AuditEntry.Action.USER_ENABLE, subject_user=owner).count() == 1


def test_promote_and_demote_are_audited(staff_client, owner):
    _action(staff_client, "make_admins", [owner])
    owner.refresh_from_db()
    assert owner.is_staff and owner.is_superuser
    _action(staff_client, "make_researchers", [owner])
    owner.refresh_from_db()
    assert not owner.is_staff and not owner.is_superuser
    entries = AuditEntry.objects.filter(action=AuditEntry.Action.ROLE_CHANGE).order_by("id")
    assert [e.after["is_staff"] for e in entries] == [True, False]


def test_admins_cannot_demote_or_disable_themselves(staff_client, staff_user):
    response = _action(staff_client, "make_researchers", [staff_user], follow=True)
    assert "cannot remove your own admin access" in response.content.decode()
    _action(staff_client, "disable_users", [staff_user])
    staff_user.refresh_from_db()
    assert staff_user.is_staff and staff_user.is_active
    assert not AuditEntry.objects.exists()


def test_unchanged_users_are_not_audited(staff_client, owner):
    _action(staff_client, "enable_users", [owner])  # already active
    assert not AuditEntry.objects.exists()


# --- credits ------------------------------------------------------------------------------------------


def test_grant_credits_action_shows_a_form_first(staff_client, owner, other_user):
    response = _action(staff_client, "change_credits", [owner, other_user])
    assert response.status_code == 200
    body = response.content.decode()
    assert "Grant or adjust credits" in body and owner.email in body and 'name="reason"' in body
    assert not CreditTransaction.objects.exists()


def test_grant_credits_goes_through_the_ledger_and_is_audited(staff_client, staff_user, owner, other_user):
    form = {"apply": "1", "kind": "grant", "amount": 25, "reason": "Support ticket 123", "token": "tok1"}
    response = _action(staff_client, "change_credits", [owner, other_user], **form)
    assert response.status_code == 302
    for user in (owner, other_user):
        user.refresh_from_db()
        assert user.credit_balance == 25
        row = CreditTransaction.objects.get(user=user)
        assert (row.kind, row.delta, row.description, row.created_by) == ("grant", 25, "Support ticket 123", staff_user)
        entry = AuditEntry.objects.get(subject_user=user)
        assert entry.action == AuditEntry.Action.CREDIT_GRANT and entry.reason == "Support ticket 123"
        assert (entry.before, entry.after["credit_balance"]) == ({"credit_balance": 0}, 25)
        assert entry.target_id == str(row.pk)


def test_submitting_the_same_form_twice_grants_once(staff_client, owner):
    form = {"apply": "1", "kind": "grant", "amount": 5, "reason": "Double click", "token": "same-token"}
    _action(staff_client, "change_credits", [owner], **form)
    _action(staff_client, "change_credits", [owner], **form)
    owner.refresh_from_db()
    assert owner.credit_balance == 5
    assert AuditEntry.objects.count() == 1


def test_grant_with_an_empty_reason_is_refused(staff_client, owner):
    form = {"apply": "1", "kind": "grant", "amount": 5, "reason": "   ", "token": "t"}
    response = _action(staff_client, "change_credits", [owner], **form)
    assert response.status_code == 200  # the form again, with the error
    assert "Give a reason" in response.content.decode() or "This field is required" in response.content.decode()
    owner.refresh_from_db()
    assert owner.credit_balance == 0 and not CreditTransaction.objects.exists() and not AuditEntry.objects.exists()


def test_a_grant_cannot_be_negative(staff_client, owner):
    form = {"apply": "1", "kind": "grant", "amount": -5, "reason": "oops", "token": "t"}
    response = _action(staff_client, "change_credits", [owner], **form)
    assert "A grant adds credits" in response.content.decode()
    assert not CreditTransaction.objects.exists()


def test_negative_correction_within_the_balance(staff_client, owner):
    credits_grant(user=owner, amount=10, idempotency_key="t:3")
    form = {"apply": "1", "kind": "adjustment", "amount": -4, "reason": "Duplicate grant", "token": "t4"}
    _action(staff_client, "change_credits", [owner], **form)
    owner.refresh_from_db()
    assert owner.credit_balance == 6
    assert CreditTransaction.objects.filter(kind="adjustment", delta=-4).exists()
    assert AuditEntry.objects.get().action == AuditEntry.Action.CREDIT_ADJUST


def test_negative_beyond_the_balance_is_refused_and_nothing_changes(staff_client, owner, other_user):
    credits_grant(user=owner, amount=50, idempotency_key="t:4")
    credits_grant(user=other_user, amount=3, idempotency_key="t:5")
    form = {"apply": "1", "kind": "adjustment", "amount": -10, "reason": "Clawback", "token": "t5"}
    response = _action(staff_client, "change_credits", [owner, other_user], follow=True, **form)
    body = response.content.decode()
    assert "Nothing was changed" in body and "other@example.com has 3 credits" in body
    owner.refresh_from_db()
    other_user.refresh_from_db()
    # All or nothing: the owner, who could pay, was not charged either.
    assert (owner.credit_balance, other_user.credit_balance) == (50, 3)
    assert CreditTransaction.objects.filter(kind="adjustment").count() == 0
    assert not AuditEntry.objects.exists()


def test_per_user_credits_page(staff_client, staff_user, owner):
    url = reverse("admin:accounts_user_credits", args=[owner.pk])
    page = staff_client.get(url)
    assert page.status_code == 200 and "Latest ledger rows" in page.content.decode()
    token = page.context["form"].initial["token"]
    response = staff_client.post(url, {"kind": "grant", "amount": 7, "reason": "Welcome back", "token": token})
    assert response.status_code == 302 and response["Location"].endswith(f"/admin/accounts/user/{owner.pk}/change/")
    owner.refresh_from_db()
    assert owner.credit_balance == 7


def test_per_user_page_refuses_removing_more_than_the_balance(staff_client, owner):
    credits_grant(user=owner, amount=2, idempotency_key="t:6")
    url = reverse("admin:accounts_user_credits", args=[owner.pk])
    response = staff_client.post(url, {"kind": "adjustment", "amount": -5, "reason": "x", "token": "t6"})
    assert response.status_code == 200
    assert "Nothing was changed" in response.content.decode() and "below zero" in response.content.decode()
    owner.refresh_from_db()
    assert owner.credit_balance == 2


def test_user_page_links_to_credits_ledger_usage_and_audit(staff_client, owner):
    body = staff_client.get(reverse("admin:accounts_user_change", args=[owner.pk])).content.decode()
    assert reverse("admin:accounts_user_credits", args=[owner.pk]) in body
    assert f"user__id__exact={owner.pk}" in body and f"subject_user__id__exact={owner.pk}" in body


# --- quota ----------------------------------------------------------------------------------------------


def test_set_quota_action(staff_client, owner, other_user):
    form = {"apply": "1", "quota_usd": "40.00", "reason": "Enterprise trial"}
    _action(staff_client, "set_quota", [owner, other_user], **form)
    for user in (owner, other_user):
        user.refresh_from_db()
        assert user.monthly_quota_usd == Decimal("40.00")
    entries = AuditEntry.objects.filter(action=AuditEntry.Action.QUOTA_CHANGE)
    assert entries.count() == 2
    assert entries.first().before == {"monthly_quota_usd": None} and entries.first().after == {
        "monthly_quota_usd": "40.00"
    }

    _action(staff_client, "set_quota", [owner], **{"apply": "1", "quota_usd": "", "reason": "Back to default"})
    owner.refresh_from_db()
    assert owner.monthly_quota_usd is None


def test_set_quota_needs_a_reason_and_a_valid_amount(staff_client, owner):
    response = _action(staff_client, "set_quota", [owner], **{"apply": "1", "quota_usd": "-3", "reason": ""})
    assert response.status_code == 200 and response.context["form"].errors.keys() == {"quota_usd", "reason"}
    owner.refresh_from_db()
    assert owner.monthly_quota_usd is None and not AuditEntry.objects.exists()


# --- the change form --------------------------------------------------------------------------------


def _change_form_data(client, user, **changes) -> dict:
    form = client.get(reverse("admin:accounts_user_change", args=[user.pk])).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.pop("password", None)
    data["groups"], data["user_permissions"] = [], []
    for key in ("last_login", "date_joined"):
        data.pop(key, None)
    data.update(changes)
    return {key: value for key, value in data.items() if value is not False}


def test_change_form_edits_of_access_and_quota_are_audited(staff_client, staff_user, owner):
    url = reverse("admin:accounts_user_change", args=[owner.pk])
    data = _change_form_data(
        staff_client, owner, is_staff="on", monthly_quota_usd="99.00", change_reason="Hired as ops", name="Olivia"
    )
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    owner.refresh_from_db()
    assert owner.is_staff and owner.monthly_quota_usd == Decimal("99.00")
    role = AuditEntry.objects.get(action=AuditEntry.Action.ROLE_CHANGE)
    assert (role.before, role.after, role.reason) == ({"is_staff": False}, {"is_staff": True}, "Hired as ops")
    quota = AuditEntry.objects.get(action=AuditEntry.Action.QUOTA_CHANGE)
    assert quota.after == {"monthly_quota_usd": "99.00"} and quota.actor == staff_user


def test_change_form_disable_is_audited_and_cancels_jobs(staff_client, owner):
    job = JobFactory(owner=owner, state=JobState.QUEUED)
    data = _change_form_data(staff_client, owner)
    data.pop("is_active", None)  # unticked
    assert staff_client.post(reverse("admin:accounts_user_change", args=[owner.pk]), data).status_code == 302
    owner.refresh_from_db()
    job.refresh_from_db()
    assert not owner.is_active and job.state == JobState.CANCELLED
    assert AuditEntry.objects.get().action == AuditEntry.Action.USER_DISABLE


def test_change_form_without_access_changes_writes_no_audit(staff_client, owner):
    data = _change_form_data(staff_client, owner, name="Renamed")
    assert staff_client.post(reverse("admin:accounts_user_change", args=[owner.pk]), data).status_code == 302
    assert User.objects.get(pk=owner.pk).name == "Renamed"
    assert not AuditEntry.objects.exists()


def test_user_factory_users_are_listed(staff_client):
    UserFactory(email="zed@example.com")
    assert "zed@example.com" in staff_client.get(CHANGELIST).content.decode()
