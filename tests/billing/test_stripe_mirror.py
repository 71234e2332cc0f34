"""Each purchase's Stripe objects are copied into dj-stripe's tables for the admin, after the webhook and
apart from it: signed events through the real endpoint, nested objects fetched from the fake Stripe."""

import logging

import pytest
from django.urls import reverse
from djstripe.models import APIKey, Charge, Customer, Event, PaymentIntent, Refund, Session, WebhookEndpoint

from billing.models import CreditTransaction, StripeEventOutcome, StripeObjectMirror
from billing.stripe_checkout import checkout_session_create
from billing.tasks import MIRROR_MAX_RETRIES, stripe_event_mirror
from config.celery import app
from tests.billing.conftest import post_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """POST a signed event and run what was queued on commit, as after a real commit (tasks run eagerly)."""

    def post(event: dict) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            response = post_event(client, event)
        assert response.status_code == 200, response.content
        return response.json()

    return post


@pytest.fixture
def retries_run(monkeypatch):
    """Eager tasks retry as a worker would: the test settings otherwise raise the task's ``Retry`` to the caller."""
    monkeypatch.setitem(app.conf, "task_eager_propagates", False)


@pytest.fixture
def paid(owner, packs, webhook_secret, stripe_on):
    """A Pro pack bought through Checkout at the fake Stripe: our records, the buyer's Customer, a paid session."""
    checkout = checkout_session_create(user=owner, pack_id=packs["Pro"].pk, return_url="http://testserver/billing/")
    stripe_on.complete(checkout.stripe_id)
    stripe_on.requests.clear()
    return checkout


def _purchase_events(fake, session_id: str) -> list[dict]:
    # Stripe's usual order: the charge, the session, then (later) the refund.
    return [
        fake.event("charge.succeeded", session_id),
        fake.event("checkout.session.completed", session_id),
        fake.refund(session_id),
    ]


def test_a_purchase_and_its_refund_are_in_dj_stripes_tables_linked_to_the_buyer(owner, paid, stripe_on, deliver):
    events = _purchase_events(stripe_on, paid.stripe_id)

    statuses = [deliver(event)["status"] for event in events]

    # The charge comes before its checkout is paid: billing ignores it (the receipt is picked up later).
    assert statuses == ["ignored", "processed", "processed"]
    customer = Customer.objects.get(subscriber=owner)
    session = Session.objects.get(id=paid.stripe_id)
    charge_id = stripe_on.charge_for(paid.stripe_id)["id"]
    charge = Charge.objects.get(id=charge_id)
    payment_intent = PaymentIntent.objects.get(id=stripe_on.sessions[paid.stripe_id]["payment_intent"])
    assert session.customer == customer and session.payment_intent == payment_intent
    assert session.payment_status == "paid" and session.amount_total == 19900
    assert payment_intent.customer == customer and payment_intent.stripe_data["status"] == "succeeded"
    assert charge.customer == customer and charge.payment_intent == payment_intent
    assert charge.stripe_data["amount_refunded"] == 19900 and charge.stripe_data["refunded"] is True
    (refund,) = Refund.objects.all()
    assert refund.charge == charge and refund.amount == 19900 and refund.id in stripe_on.refunds
    # The credits moved through the ledger as always: bought once, taken back once.
    assert list(CreditTransaction.objects.filter(user=owner).values_list("kind", "delta")) == [
        ("adjustment", -220),
        ("purchase", 220),
    ]
    # What dj-stripe fetched: only the nested objects the payloads name by id; the refunds of the charge.
    fetched = sorted(r.path for r in stripe_on.requests)
    assert fetched == [
        f"/v1/balance_transactions/{charge.stripe_data['balance_transaction']}",
        f"/v1/payment_intents/{payment_intent.id}",
        "/v1/refunds",
    ]
    assert stripe_on.requests_to("GET", "/v1/refunds")[0].params == {"charge": charge_id}
    assert StripeObjectMirror.objects.get(stripe_id=charge_id).event_id == events[2]["id"]


def test_replayed_events_copy_nothing_twice_and_call_stripe_no_more(owner, paid, stripe_on, deliver):
    events = _purchase_events(stripe_on, paid.stripe_id)
    for event in events:
        deliver(event)
    stripe_on.requests.clear()

    for event in events * 3:
        deliver(event)
    # The task itself run again, as a redelivered Celery message would be.
    assert [stripe_event_mirror.delay(event["id"]).get() for event in events] == ["up to date"] * 3

    assert stripe_on.requests == []
    assert (Session.objects.count(), PaymentIntent.objects.count(), Charge.objects.count()) == (1, 1, 1)
    assert Refund.objects.count() == 1 and Customer.objects.count() == 1
    assert CreditTransaction.objects.filter(user=owner, kind="purchase").count() == 1


def test_an_older_event_copied_late_does_not_overwrite_a_newer_one(paid, stripe_on, deliver):
    succeeded, completed, refunded = _purchase_events(stripe_on, paid.stripe_id)
    succeeded["created"] = refunded["created"] - 60
    deliver(completed)
    deliver(refunded)

    deliver(succeeded)  # delivered (or retried) last, but it says what the charge was a minute before the refund

    charge = Charge.objects.get(id=refunded["data"]["object"]["id"])
    assert charge.stripe_data["amount_refunded"] == 19900
    assert StripeObjectMirror.objects.get(stripe_id=charge.id).event_id == refunded["id"]


def test_a_stripe_error_while_copying_is_retried(paid, stripe_on, deliver, retries_run):
    stripe_on.add_fault("server_error")  # the payment intent's fetch fails once

    deliver(stripe_on.event("checkout.session.completed", paid.stripe_id))

    fetches = stripe_on.requests_to(
        "GET", f"/v1/payment_intents/{stripe_on.sessions[paid.stripe_id]['payment_intent']}"
    )
    assert [r.status for r in fetches] == [500, 200]
    assert Session.objects.get(id=paid.stripe_id).payment_intent is not None
    assert StripeObjectMirror.objects.get(stripe_id=paid.stripe_id).error == ""


@pytest.mark.django_db(transaction=True)
def test_when_copying_fails_for_good_the_credits_and_the_200_are_untouched(
    client, owner, paid, stripe_on, caplog, retries_run
):
    """Committed for real: the copy runs (eagerly, in tests) after the webhook's transaction commits."""
    stripe_on.add_fault("server_error", count=MIRROR_MAX_RETRIES + 1)
    event = stripe_on.event("checkout.session.completed", paid.stripe_id)

    with caplog.at_level(logging.ERROR, logger="billing.stripe_mirror"):
        response = post_event(client, event)

    assert response.status_code == 200 and response.json() == {"received": True, "status": "processed"}
    assert list(CreditTransaction.objects.filter(user=owner).values_list("kind", "delta")) == [("purchase", 220)]
    assert StripeEventOutcome.objects.get(event_id=event["id"]).status == "processed"
    # Every try asked Stripe once and got the fault; then the task gave up and said so.
    assert [r.status for r in stripe_on.requests] == [500] * (MIRROR_MAX_RETRIES + 1)
    assert not Session.objects.exists() and not PaymentIntent.objects.exists()
    state = StripeObjectMirror.objects.get(stripe_id=paid.stripe_id)
    assert state.event is None and state.failed_at is not None and state.error.startswith("APIError")
    assert f"Stripe event {event['id']}: copying checkout.session {paid.stripe_id}" in caplog.text

    # A replay changes nothing: the event was handled, and credits were granted once.
    assert post_event(client, event).status_code == 200
    assert CreditTransaction.objects.filter(user=owner, kind="purchase").count() == 1
    assert Event.objects.filter(id=event["id"]).count() == 1


def test_copying_can_be_turned_off(settings, paid, stripe_on, deliver):
    settings.STRIPE_MIRROR_OBJECTS = False

    for event in _purchase_events(stripe_on, paid.stripe_id):
        assert deliver(event)["status"] in ("ignored", "processed")
    assert CreditTransaction.objects.filter(kind="adjustment", delta=-220).exists()

    assert stripe_on.requests == []
    assert not (Session.objects.exists() or Charge.objects.exists() or Refund.objects.exists())


def test_the_admin_shows_a_purchases_stripe_objects_linked_and_never_the_secret_key(
    client, settings, staff_user, owner, paid, stripe_on, deliver
):
    for event in _purchase_events(stripe_on, paid.stripe_id):
        deliver(event)
    session, intent, charge = Session.objects.get(), PaymentIntent.objects.get(), Charge.objects.get()
    refund, customer = Refund.objects.get(), Customer.objects.get()
    stored = Event.objects.get(type="checkout.session.completed")
    ours = reverse("admin:billing_checkoutsession_change", args=[paid.pk])
    client.force_login(staff_user)

    def page(url: str) -> str:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        # dj-stripe's own admin listed every property, the secret key among them.
        assert settings.STRIPE_SECRET_KEY not in html and "Default api key" not in html, url
        return html

    def change(obj) -> str:
        return reverse(f"admin:djstripe_{obj._meta.model_name}_change", args=[obj.pk])

    listed = page(reverse("admin:djstripe_session_changelist"))
    assert all(
        text in listed for text in [paid.stripe_id, owner.email, "199.00\u00a0USD", "Paid", "Pro · 220 credits", ours]
    )
    listed = page(reverse("admin:djstripe_charge_changelist"))
    assert listed.count("199.00\u00a0USD") == 2 and "Succeeded" in listed  # charged, and refunded in full
    assert refund.id in page(reverse("admin:djstripe_refund_changelist"))
    assert "Succeeded" in page(reverse("admin:djstripe_paymentintent_changelist"))
    assert "In use" in page(reverse("admin:djstripe_customer_changelist"))
    assert "Processed" in page(reverse("admin:djstripe_event_changelist"))
    assert "Processed" in page(reverse("admin:djstripe_webhookeventtrigger_changelist"))
    # Each object's page links to the next one of the purchase, and to Cohorta's record of it.
    assert ours in page(change(session)) and change(intent) in page(change(session))
    assert change(charge) in page(change(intent)) and change(refund) in page(change(charge))
    assert change(charge) in page(change(refund)) and change(customer) in page(change(charge))
    assert "Processed" in page(change(stored)) and page(change(customer))
    assert all(change(obj) in page(ours) for obj in (session, intent, charge))
    # The key and the webhook secret stripe_setup recorded are never shown, the key only redacted.
    for model in (APIKey, WebhookEndpoint):
        (row,) = model.objects.all()
        html = page(reverse(f"admin:djstripe_{model._meta.model_name}_change", args=[row.pk]))
        assert settings.STRIPE_WEBHOOK_SECRET not in html and row.secret not in html
    assert "sk_test_...0000" in page(reverse("admin:djstripe_apikey_changelist"))
    # Read-only: nothing can be added, changed or deleted.
    assert client.get(reverse("admin:djstripe_charge_add")).status_code == 403
    assert client.post(change(charge), {"status": "failed"}).status_code == 403
    assert client.post(reverse("admin:djstripe_charge_delete", args=[charge.pk]), {"post": "yes"}).status_code == 403
