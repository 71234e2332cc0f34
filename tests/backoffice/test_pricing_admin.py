"""Prices that recorded calls were made at are history: old events keep their cost."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from cohorta.audit.models import AuditEntry
from usage.models import ModelAlias, ModelPrice, UsageEvent
from usage.selectors import price_row_is_used
from usage.services import TokenUsage, usage_backfill, usage_event_record

pytestmark = pytest.mark.django_db
TOKENS = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)


@pytest.fixture
def price(db):
    return ModelPrice.objects.create(
        model="gpt-test",
        effective_from=(timezone.now() - timedelta(days=30)).replace(microsecond=0),
        input_per_1m=Decimal("1.00"),
        output_per_1m=Decimal("2.00"),
    )


def _record():
    return usage_event_record(feature="moderator", provider="openai", model="gpt-test", tokens=TOKENS)


def _form(**fields) -> dict:
    now = timezone.localtime()
    data = {
        "model": "gpt-test",
        "effective_from_0": now.strftime("%Y-%m-%d"),
        "effective_from_1": now.strftime("%H:%M:%S"),
        "input_per_1m": "1.00",
        "output_per_1m": "2.00",
        "notes": "",
        "change_reason": "",
    }
    data.update(fields)
    return data


def test_an_unused_price_can_be_edited_and_the_change_is_audited(staff_client, staff_user, price):
    assert not price_row_is_used(price)
    url = reverse("admin:usage_modelprice_change", args=[price.pk])
    start = timezone.localtime(price.effective_from)
    data = _form(
        effective_from_0=start.strftime("%Y-%m-%d"),
        effective_from_1=start.strftime("%H:%M:%S"),
        output_per_1m="3.00",
        change_reason="Typo in the list price",
    )
    assert staff_client.post(url, data).status_code == 302
    price.refresh_from_db()
    assert price.output_per_1m == Decimal("3.00")
    entry = AuditEntry.objects.get(action=AuditEntry.Action.PRICING_CHANGE)
    assert entry.actor == staff_user and entry.reason == "Typo in the list price"
    assert (entry.before, entry.after) == ({"output_per_1m": "2.000000"}, {"output_per_1m": "3.000000"})


def test_editing_a_price_old_events_used_is_refused_and_old_events_keep_their_cost(staff_client, price):
    old = _record()
    assert old.cost_usd == Decimal("3.00000000")
    assert price_row_is_used(price)

    url = reverse("admin:usage_modelprice_change", args=[price.pk])
    page = staff_client.get(url)
    body = page.content.decode()
    assert page.status_code == 200 and "can no longer be edited" in body and 'name="output_per_1m"' not in body
    assert "Add a new price based on this one" in body
    assert staff_client.post(url, _form(output_per_1m="9.00")).status_code == 403
    assert (
        staff_client.post(reverse("admin:usage_modelprice_delete", args=[price.pk]), {"post": "yes"}).status_code == 403
    )
    price.refresh_from_db()
    assert price.output_per_1m == Decimal("2.00")

    # The way to change a price: a new row, from the moment it is saved (the form's default).
    now = {"effective_from_0": "", "effective_from_1": ""}
    add = staff_client.post(
        reverse("admin:usage_modelprice_add"), _form(output_per_1m="9.00", change_reason="New list price", **now)
    )
    assert add.status_code == 302, add.context["adminform"].form.errors
    new = _record()
    assert new.cost_usd == Decimal("10.00000000")
    old.refresh_from_db()
    assert old.cost_usd == Decimal("3.00000000")
    usage_backfill(delete_existing_estimates=True)  # re-pricing estimates does not touch reported costs
    old.refresh_from_db()
    assert old.cost_usd == Decimal("3.00000000")
    assert AuditEntry.objects.filter(action=AuditEntry.Action.PRICING_CHANGE, after__output_per_1m="9.000000").exists()


def test_a_new_price_may_not_start_before_calls_already_priced(staff_client, price):
    _record()
    yesterday = timezone.localtime() - timedelta(days=1)
    data = _form(effective_from_0=yesterday.strftime("%Y-%m-%d"), effective_from_1="00:00:00", output_per_1m="9.00")
    response = staff_client.post(reverse("admin:usage_modelprice_add"), data)
    assert response.status_code == 200
    assert "were already priced" in response.content.decode()
    assert ModelPrice.objects.count() == 1


def test_events_priced_through_an_alias_make_the_price_used(price):
    ModelAlias.objects.create(alias="gpt-test-2026-01-01", model="gpt-test")
    usage_event_record(feature="moderator", provider="openai", model="gpt-test-2026-01-01", tokens=TOKENS)
    assert price_row_is_used(price)


def test_a_price_superseded_before_any_call_is_not_used(price):
    ModelPrice.objects.create(
        model="gpt-test", effective_from=timezone.now() - timedelta(days=1), input_per_1m=1, output_per_1m=5
    )
    _record()  # priced by the newer row
    assert not price_row_is_used(price)


def test_unpriced_events_can_be_priced_by_a_backdated_row(staff_client):
    event = usage_event_record(feature="moderator", provider="openai", model="new-model", tokens=TOKENS)
    assert event.cost_usd is None
    start = timezone.localtime() - timedelta(days=1)
    data = _form(model="new-model", effective_from_0=start.strftime("%Y-%m-%d"), effective_from_1="00:00:00")
    assert staff_client.post(reverse("admin:usage_modelprice_add"), data).status_code == 302
    usage_backfill()
    assert UsageEvent.objects.get(pk=event.pk).cost_usd == Decimal("3.00000000")


def test_alias_changes_are_audited(staff_client):
    data = {"alias": "old-name", "model": "gpt-test", "change_reason": "Retired name"}
    assert staff_client.post(reverse("admin:usage_modelalias_add"), data).status_code == 302
    alias = ModelAlias.objects.get()
    staff_client.post(reverse("admin:usage_modelalias_delete", args=[alias.pk]), {"post": "yes"})
    actions = list(AuditEntry.objects.order_by("id").values_list("after", flat=True))
    assert actions == [{"alias": "old-name", "model": "gpt-test"}, {"deleted": True}]
