"""Credit packs in the admin (audited) and the Stripe back office: events, checkouts, reprocessing."""

import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from djstripe.models import Event, WebhookEventTrigger

from billing.models import CreditPack, StripeEventOutcome
from cohorta.audit.models import AuditEntry
from tests.billing.conftest import make_checkout, post_event
from tests.fakes.stripe_server import charge_object, checkout_session_object, make_event

pytestmark = pytest.mark.django_db


def test_the_data_migration_creates_the_default_packs_on_a_fresh_install():
    migration = importlib.import_module("billing.migrations.0003_default_credit_packs")
    CreditPack.objects.all().delete()
    migration.create_default_packs(apps, None)
    assert [(p.name, p.credits, p.price, p.currency, p.active) for p in CreditPack.objects.all()] == [
        ("Starter", 50, Decimal("49.00"), "usd", True),
        ("Pro", 220, Decimal("199.00"), "usd", True),
        ("Scale", 600, Decimal("499.00"), "usd", True),
    ]
    migration.create_default_packs(apps, None)  # an operator's packs are never duplicated or reset
    assert CreditPack.objects.count() == 3


def test_admin_edits_a_pack_and_the_change_is_audited(client, staff_user, packs):
    pack = packs["Pro"]
    client.force_login(staff_user)
    response = client.post(
        f"/admin/billing/creditpack/{pack.pk}/change/",
        {
            "name": "Pro",
            "credits": 250,
            "price": "199.00",
            "currency": "USD",
            "stripe_price_id": "price_pro",
            "active": "on",
            "sort_order": 20,
        },
    )
    assert response.status_code == 302
    pack.refresh_from_db()
    assert (pack.credits, pack.currency, pack.stripe_price_id) == (250, "usd", "price_pro")
    entry = AuditEntry.objects.get(action=AuditEntry.Action.PACK_CHANGE)
    assert entry.actor == staff_user and entry.target_id == str(pack.pk)
    assert entry.before == {"credits": 220, "stripe_price_id": ""}
    assert entry.after == {"credits": 250, "stripe_price_id": "price_pro"}


def test_admin_adds_a_pack_audited_and_cannot_delete_one(client, staff_user, packs):
    client.force_login(staff_user)
    client.post(
        "/admin/billing/creditpack/add/",
        {
            "name": "Team",
            "credits": 1500,
            "price": "999.00",
            "currency": "usd",
            "stripe_price_id": "",
            "sort_order": 40,
        },
    )
    team = CreditPack.objects.get(name="Team")
    assert not team.active  # unticked checkbox: created switched off
    assert AuditEntry.objects.get(action=AuditEntry.Action.PACK_CHANGE).reason == "Pack created"
    assert client.post(f"/admin/billing/creditpack/{team.pk}/delete/", {"post": "yes"}).status_code == 403
    assert CreditPack.objects.filter(pk=team.pk).exists()


def test_stripe_events_and_checkouts_are_read_only_in_the_admin(client, staff_user, owner, packs, webhook_secret):
    checkout = make_checkout(owner, packs["Starter"], stripe_id="cs_test_admin")
    post_event(client, make_event("checkout.session.completed", checkout_session_object("cs_test_admin")))
    event = StripeEventOutcome.objects.get()
    client.force_login(staff_user)
    assert client.get("/admin/billing/stripeeventoutcome/").status_code == 200
    assert client.get(f"/admin/billing/stripeeventoutcome/{event.pk}/change/").status_code == 200
    assert client.get(f"/admin/billing/checkoutsession/{checkout.pk}/change/").status_code == 200
    assert client.get("/admin/billing/stripeeventoutcome/add/").status_code == 403
    assert client.post(f"/admin/billing/stripeeventoutcome/{event.pk}/delete/", {"post": "yes"}).status_code == 403


def test_unmatched_events_are_listed_for_attention_and_can_be_processed_again(
    client, staff_user, owner, packs, webhook_secret
):
    # A refund arrives before its checkout was credited: nothing to take back yet, so it waits.
    checkout = make_checkout(owner, packs["Starter"], stripe_id="cs_test_late")
    charge = charge_object("ch_late", payment_intent="pi_late", amount=4900, amount_refunded=4900)
    post_event(client, make_event("charge.refunded", charge))
    event = StripeEventOutcome.objects.get()
    client.force_login(staff_user)
    listed = client.get("/admin/billing/stripeeventoutcome/?attention=any").content.decode()
    assert event.event_id in listed and "Unmatched" in listed and 'data-status="unmatched"' in listed

    # The checkout is paid (its own retry of waiting refunds did not run); an operator processes the refund again.
    paid = checkout_session_object("cs_test_late", amount_total=checkout.amount, payment_intent="pi_late")
    post_event(client, make_event("checkout.session.completed", paid))
    owner.refresh_from_db()
    assert owner.credit_balance == 50
    response = client.post(
        "/admin/billing/stripeeventoutcome/", {"action": "process_again", "_selected_action": [event.pk]}, follow=True
    )
    assert "Processed 1 event(s) again" in response.content.decode()
    event.refresh_from_db()
    assert event.status == "processed"
    owner.refresh_from_db()
    assert owner.credit_balance == 0


def test_djstripe_objects_are_browsable_and_read_only_next_to_the_ledger(
    client, staff_user, owner, packs, webhook_secret
):
    checkout = make_checkout(owner, packs["Starter"], stripe_id="cs_test_browse")
    event = make_event("checkout.session.completed", checkout_session_object("cs_test_browse", amount_total=4900))
    post_event(client, event)
    trigger = WebhookEventTrigger.objects.get()
    client.force_login(staff_user)
    index = client.get("/admin/").content.decode()
    assert "/admin/billing/credittransaction/" in index and "/admin/djstripe/event/" in index
    for model in ["event", "webhookeventtrigger", "customer", "session", "charge", "paymentintent", "refund"]:
        assert client.get(f"/admin/djstripe/{model}/").status_code == 200, model
        assert client.get(f"/admin/djstripe/{model}/add/").status_code == 403, model
    stored = Event.objects.get(id=event["id"])
    assert client.get(f"/admin/djstripe/event/{stored.pk}/change/").status_code == 200
    assert client.post(f"/admin/djstripe/event/{stored.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/djstripe/webhookeventtrigger/{trigger.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Event.objects.filter(id=event["id"]).exists() and checkout.pk
    # dj-stripe's models Cohorta does not use stay out of the back office.
    assert client.get("/admin/djstripe/subscription/").status_code == 404
    # Deliveries (with their tracebacks) are for staff only.
    client.force_login(owner)
    assert client.get(f"/admin/djstripe/webhookeventtrigger/{trigger.pk}/change/").status_code == 302
