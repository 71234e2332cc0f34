"""The Stripe webhook: signed payloads built locally, posted to the real view. Credits move exactly once."""

import json
import logging
import time
import uuid

import pytest
from djstripe.models import Customer, Event, WebhookEventTrigger

from billing import selectors
from billing.models import CheckoutSession, CreditTransaction, StripeEventOutcome
from billing.services import credits_spend
from billing.stripe_setup import configured_webhook_endpoint, stripe_setup
from cohorta.audit.models import AuditEntry
from tests.billing.conftest import WEBHOOK_URL, make_checkout, post_event
from tests.fakes.stripe_server import (
    charge_object,
    checkout_session_object,
    make_event,
    sign_payload,
    signed_event,
)

pytestmark = pytest.mark.django_db


def _session(checkout, *, payment_status="paid", payment_intent="pi_1", **more) -> dict:
    """The session as Stripe sends it for our checkout: paid in full, with the metadata we set."""
    more.setdefault("amount_total", checkout.amount)
    return checkout_session_object(
        checkout.stripe_id,
        payment_status=payment_status,
        metadata={"user_id": str(checkout.user_id), "pack_id": str(checkout.pack_id), "credits": str(checkout.credits)},
        payment_intent=payment_intent,
        **more,
    )


def _purchases(user) -> list[CreditTransaction]:
    return list(CreditTransaction.objects.filter(user=user, kind="purchase"))


@pytest.fixture
def checkout(owner, packs):
    return make_checkout(owner, packs["Pro"], stripe_id="cs_test_pro_1")


# --- signatures ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [
        "",  # missing
        "t=1,v1=deadbeef",  # garbage
        "other-body",  # replaced below: a valid signature, of another body
        "wrong-secret",  # replaced below: right body, wrong secret
        "stale",  # replaced below: right secret, an hour old (replay protection)
    ],
)
def test_an_unverifiable_event_is_refused_and_credits_nothing(client, owner, checkout, webhook_secret, signature):
    event = make_event("checkout.session.completed", _session(checkout))
    body = json.dumps(event)
    if signature == "other-body":
        signature = sign_payload("{}", webhook_secret)
    elif signature == "wrong-secret":
        signature = sign_payload(body, "whsec_not_ours")
    elif signature == "stale":
        signature = sign_payload(body, webhook_secret, timestamp=int(time.time()) - 3600)
    response = client.post(WEBHOOK_URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert StripeEventOutcome.objects.count() == 0 and CreditTransaction.objects.count() == 0
    # Refused before dj-stripe sees it: not even its delivery log keeps a forged request.
    assert WebhookEventTrigger.objects.count() == 0 and Event.objects.count() == 0
    assert CheckoutSession.objects.get().status == "pending"


def test_a_signed_body_that_is_not_json_is_refused(client, webhook_secret):
    body = "not json"
    response = client.post(
        WEBHOOK_URL,
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_payload(body, webhook_secret),
    )
    assert response.status_code == 400


def test_without_a_webhook_secret_events_are_not_accepted(client, checkout):
    response = post_event(client, make_event("checkout.session.completed", _session(checkout)))
    assert response.status_code == 503
    assert CreditTransaction.objects.count() == 0


def test_the_webhook_takes_post_only_and_needs_no_login_or_csrf(client, checkout, webhook_secret):
    assert client.get(WEBHOOK_URL).status_code == 405
    client.handler.enforce_csrf_checks = True
    assert post_event(client, make_event("checkout.session.completed", _session(checkout))).status_code == 200


# --- crediting ---------------------------------------------------------------------------------------------------


def test_a_paid_checkout_credits_the_pack_once(client, owner, checkout, webhook_secret):
    event = make_event("checkout.session.completed", _session(checkout))

    response = post_event(client, event)

    assert response.status_code == 200 and response.json() == {"received": True, "status": "processed"}
    (purchase,) = _purchases(owner)
    assert (purchase.delta, purchase.idempotency_key, purchase.reference) == (
        220,
        "checkout:cs_test_pro_1",
        "checkout:cs_test_pro_1",
    )
    assert purchase.description == "Pro pack: 220 credits"
    checkout.refresh_from_db()
    assert checkout.status == "paid" and checkout.paid_at is not None and checkout.payment_intent_id == "pi_1"
    recorded = StripeEventOutcome.objects.get()
    assert (recorded.event_id, recorded.type, recorded.status, recorded.received_count) == (
        event["id"],
        "checkout.session.completed",
        "processed",
        1,
    )
    assert recorded.checkout_session == checkout and recorded.event.data == event["data"]
    # dj-stripe stored the event and logged the delivery as processed.
    (trigger,) = WebhookEventTrigger.objects.all()
    assert trigger.valid and trigger.processed and trigger.event_id == event["id"] and not trigger.exception
    audit = AuditEntry.objects.get(action=AuditEntry.Action.CREDIT_PURCHASE)
    assert audit.actor is None and audit.subject_user == owner and audit.target_id == str(checkout.pk)
    assert audit.before == {"status": "pending", "balance": 0}
    assert audit.after["balance"] == 220 and audit.after["amount"] == "199.00 USD"


def test_a_replayed_event_credits_once_and_counts_the_deliveries(client, owner, checkout, webhook_secret):
    event = make_event("checkout.session.completed", _session(checkout))
    for _ in range(5):
        assert post_event(client, event).status_code == 200
    assert len(_purchases(owner)) == 1 and selectors.credits_balance(user=owner) == 220
    assert StripeEventOutcome.objects.get().received_count == 5
    assert AuditEntry.objects.filter(action=AuditEntry.Action.CREDIT_PURCHASE).count() == 1


def test_async_succeeded_before_completed_credits_once(client, owner, checkout, webhook_secret):
    post_event(client, make_event("checkout.session.async_payment_succeeded", _session(checkout)))
    post_event(client, make_event("checkout.session.completed", _session(checkout)))
    post_event(client, make_event("checkout.session.async_payment_succeeded", _session(checkout)))
    assert len(_purchases(owner)) == 1 and selectors.credits_balance(user=owner) == 220
    assert StripeEventOutcome.objects.filter(status="processed").count() == 3


def test_a_delayed_payment_waits_then_credits_once(client, owner, checkout, webhook_secret):
    post_event(client, make_event("checkout.session.completed", _session(checkout, payment_status="unpaid")))
    checkout.refresh_from_db()
    assert checkout.status == "processing" and _purchases(owner) == []

    post_event(client, make_event("checkout.session.async_payment_succeeded", _session(checkout)))
    # A late, reordered copy of the unpaid "completed" must not undo anything.
    post_event(client, make_event("checkout.session.completed", _session(checkout, payment_status="unpaid")))

    checkout.refresh_from_db()
    assert checkout.status == "paid"
    assert len(_purchases(owner)) == 1 and selectors.credits_balance(user=owner) == 220


def test_a_failed_delayed_payment_is_marked_and_credits_nothing(client, owner, checkout, webhook_secret):
    post_event(client, make_event("checkout.session.completed", _session(checkout, payment_status="unpaid")))
    post_event(client, make_event("checkout.session.async_payment_failed", _session(checkout, payment_status="unpaid")))
    checkout.refresh_from_db()
    assert checkout.status == "failed" and _purchases(owner) == []


def test_an_expired_checkout_is_marked(client, owner, checkout, webhook_secret):
    obj = _session(checkout, payment_status="unpaid", payment_intent=None)
    post_event(client, make_event("checkout.session.expired", obj))
    checkout.refresh_from_db()
    assert checkout.status == "expired"


def test_credits_come_from_our_record_not_from_the_event_metadata(client, owner, checkout, packs, webhook_secret):
    # The pack was edited after the click, and the event's metadata claims far more: neither counts.
    packs["Pro"].credits = 999
    packs["Pro"].save()
    obj = _session(checkout)
    obj["metadata"] = {"user_id": str(owner.pk), "pack_id": str(packs["Scale"].pk), "credits": "100000"}
    assert post_event(client, make_event("checkout.session.completed", obj)).json()["status"] == "processed"
    (purchase,) = _purchases(owner)
    assert purchase.delta == 220 and selectors.credits_balance(user=owner) == 220


# --- payments that are refused: nothing credited, a final status, flagged, audited, logged ------------------------


def _refusal(event: StripeEventOutcome) -> AuditEntry:
    (audit,) = AuditEntry.objects.filter(action=AuditEntry.Action.PAYMENT_REFUSED, reason__startswith="Refused")
    assert event.event_id in audit.reason and audit.actor is None and audit.after["credits"] == 0
    return audit


def test_a_session_cohorta_never_created_grants_nothing(client, owner, packs, webhook_secret, caplog, staff_user):
    # The reported attack: a signed event for a session made outside Cohorta, claiming 100,000 credits for $1.
    Customer.objects.create(id="cus_owner", subscriber=owner, livemode=False)
    obj = checkout_session_object(
        "cs_test_forged",
        customer="cus_owner",
        client_reference_id=str(owner.pk),
        metadata={"user_id": str(owner.pk), "pack_id": str(packs["Scale"].pk), "credits": "100000"},
        amount_total=100,
    )
    event = make_event("checkout.session.completed", obj)
    with caplog.at_level(logging.WARNING, logger="billing.checkout"):
        response = post_event(client, event)

    assert response.status_code == 200 and response.json() == {"received": True, "status": "unknown_checkout"}
    assert CreditTransaction.objects.count() == 0 and selectors.credits_balance(user=owner) == 0
    assert CheckoutSession.objects.count() == 0  # nothing is rebuilt from what the event says
    recorded = StripeEventOutcome.objects.get()
    assert recorded.status == "unknown_checkout" and recorded.get_status_display() == "Unknown checkout"
    assert "no record of checkout session cs_test_forged" in recorded.error
    assert "1.00 USD" in recorded.error and "claims 100000 credits" in recorded.error
    audit = _refusal(recorded)
    assert audit.after["refused"] == "Unknown checkout" and audit.after["paid"] == "1.00 USD"
    assert "refused (Unknown checkout)" in caplog.text and "cs_test_forged" in caplog.text
    # A replay is counted and changes nothing, not even the audit log.
    assert post_event(client, event).json()["status"] == "unknown_checkout"
    assert StripeEventOutcome.objects.get().received_count == 2 and selectors.credits_balance(user=owner) == 0
    _refusal(StripeEventOutcome.objects.get())
    # The admin flags it, under "needs attention" and its own filter.
    client.force_login(staff_user)
    for url in [
        "/admin/billing/stripeeventoutcome/?attention=refused",
        "/admin/billing/stripeeventoutcome/?attention=any",
    ]:
        listed = client.get(url).content.decode()
        assert event["id"] in listed and 'data-status="unknown_checkout"' in listed and "Unknown checkout" in listed
    assert event["id"] not in client.get("/admin/billing/stripeeventoutcome/?attention=failed").content.decode()


def test_a_checkout_row_not_made_by_a_click_on_buy_grants_nothing(client, owner, checkout, webhook_secret):
    # Rows an earlier version rebuilt from a webhook's metadata have no attempt behind them.
    CheckoutSession.objects.filter(pk=checkout.pk).update(attempt=None, credits=100000)
    response = post_event(client, make_event("checkout.session.completed", _session(checkout)))
    assert response.json()["status"] == "unknown_checkout"
    assert selectors.credits_balance(user=owner) == 0
    checkout.refresh_from_db()
    assert checkout.status == "pending"
    assert _refusal(StripeEventOutcome.objects.get()).subject_user == owner


@pytest.mark.parametrize("event_type", ["checkout.session.completed", "checkout.session.async_payment_succeeded"])
def test_paying_less_than_the_pack_costs_grants_nothing(client, owner, checkout, webhook_secret, caplog, event_type):
    obj = _session(checkout, amount_total=100)
    with caplog.at_level(logging.WARNING, logger="billing.checkout"):
        response = post_event(client, make_event(event_type, obj))

    assert response.status_code == 200 and response.json()["status"] == "amount_mismatch"
    assert CreditTransaction.objects.count() == 0
    recorded = StripeEventOutcome.objects.get()
    assert recorded.get_status_display() == "Amount mismatch" and recorded.checkout_session == checkout
    assert "costs 199.00 USD but 1.00 USD was paid" in recorded.error
    checkout.refresh_from_db()
    assert (checkout.status, checkout.amount, checkout.payment_intent_id) == ("pending", 19900, "")
    audit = _refusal(recorded)
    assert audit.subject_user == owner and (audit.after["paid"], audit.after["expected"]) == ("1.00 USD", "199.00 USD")
    assert "refused (Amount mismatch)" in caplog.text
    # The genuine event still credits the pack: a refused copy does not poison the checkout.
    assert post_event(client, make_event(event_type, _session(checkout))).json()["status"] == "processed"
    assert selectors.credits_balance(user=owner) == 220


def test_paying_more_or_no_amount_is_a_mismatch_too(client, owner, checkout, webhook_secret):
    more, missing = _session(checkout, amount_total=19901), _session(checkout)
    del missing["amount_total"]
    for obj in [more, missing]:
        response = post_event(client, make_event("checkout.session.completed", obj))
        assert response.json()["status"] == "amount_mismatch"
    assert selectors.credits_balance(user=owner) == 0


def test_paying_in_another_currency_grants_nothing(client, owner, checkout, webhook_secret, caplog):
    # The same number in yen is about a hundredth of the price.
    obj = _session(checkout, currency="jpy")
    with caplog.at_level(logging.WARNING, logger="billing.checkout"):
        response = post_event(client, make_event("checkout.session.completed", obj))

    assert response.status_code == 200 and response.json()["status"] == "currency_mismatch"
    recorded = StripeEventOutcome.objects.get()
    assert recorded.get_status_display() == "Currency mismatch"
    assert "costs 199.00 USD but was paid in 19900 JPY" in recorded.error
    assert selectors.credits_balance(user=owner) == 0
    assert _refusal(recorded).after["refused"] == "Currency mismatch"
    assert "refused (Currency mismatch)" in caplog.text


@pytest.mark.parametrize("payment_status", ["unpaid", "no_payment_required", None])
@pytest.mark.parametrize("event_type", ["checkout.session.completed", "checkout.session.async_payment_succeeded"])
def test_a_session_that_is_not_paid_grants_nothing(
    client, owner, checkout, webhook_secret, caplog, staff_user, event_type, payment_status
):
    obj = _session(checkout, payment_status=payment_status)
    with caplog.at_level(logging.WARNING, logger="billing.checkout"):
        response = post_event(client, make_event(event_type, obj))

    assert response.status_code == 200 and response.json()["status"] == "not_paid"
    assert CreditTransaction.objects.count() == 0
    recorded = StripeEventOutcome.objects.get()
    shown = repr(payment_status) if payment_status else "missing"
    assert recorded.get_status_display() == "Not paid" and f"payment status {shown}" in recorded.error
    assert _refusal(recorded).after["refused"] == "Not paid"
    assert "refused (Not paid)" in caplog.text
    client.force_login(staff_user)
    listed = client.get("/admin/billing/stripeeventoutcome/?attention=refused").content.decode()
    assert recorded.event_id in listed and 'data-status="not_paid"' in listed


def test_a_payment_for_a_deleted_account_credits_nobody(client, owner, checkout, packs, webhook_secret):
    paid_before = make_checkout(owner, packs["Starter"], stripe_id="cs_test_paid_before")
    _paid(client, paid_before)
    # Deleting an account clears the checkouts' user and removes its attempts.
    CheckoutSession.objects.filter(user=owner).update(user=None, attempt=None)
    assert post_event(client, make_event("checkout.session.completed", _session(checkout))).json()["status"] == (
        "unmatched"
    )
    assert "account that paid was deleted" in StripeEventOutcome.objects.filter(status="unmatched").get().error
    late = make_event("checkout.session.async_payment_succeeded", _session(paid_before))
    assert post_event(client, late).json()["status"] == "processed"
    assert CreditTransaction.objects.filter(kind="purchase").count() == 1


def test_a_failed_or_expired_session_we_did_not_create_is_ignored(client, webhook_secret):
    for event_type in ["checkout.session.async_payment_failed", "checkout.session.expired"]:
        obj = checkout_session_object("cs_test_elsewhere", payment_status="unpaid")
        assert post_event(client, make_event(event_type, obj)).json()["status"] == "ignored"
    assert CheckoutSession.objects.count() == 0 and AuditEntry.objects.count() == 0


def test_an_unknown_event_type_is_acknowledged_and_ignored(client, webhook_secret):
    response = post_event(
        client, make_event("customer.subscription.created", {"id": "sub_1", "object": "subscription"})
    )
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    assert Event.objects.get().type == "customer.subscription.created" and not StripeEventOutcome.objects.exists()


def test_a_refund_for_a_charge_we_do_not_know_is_unmatched(client, webhook_secret):
    charge = charge_object("ch_unknown", payment_intent="pi_unknown", amount=4900, amount_refunded=4900)
    assert post_event(client, make_event("charge.refunded", charge)).json()["status"] == "unmatched"


def test_a_ledger_refusal_marks_the_event_failed_without_a_500(client, owner, other_user, checkout, webhook_secret):
    # The ledger key of this checkout already belongs to someone else's row: a data problem an admin must see.
    from billing.services import credits_grant

    credits_grant(user=other_user, amount=5, idempotency_key="checkout:cs_test_pro_1")
    response = post_event(client, make_event("checkout.session.completed", _session(checkout)))
    assert response.status_code == 200 and response.json()["status"] == "failed"
    recorded = StripeEventOutcome.objects.get()
    assert "idempotency key" in recorded.error
    assert selectors.credits_balance(user=owner) == 0


def test_an_unexpected_error_is_a_500_so_stripe_retries_and_the_retry_credits(
    client, owner, checkout, webhook_secret, monkeypatch
):
    from billing import checkout as fulfilment

    real = fulfilment.credits_grant
    calls = {"n": 0}

    def flaky(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database went away")
        return real(**kwargs)

    monkeypatch.setattr(fulfilment, "credits_grant", flaky)
    event = make_event("checkout.session.completed", _session(checkout))
    client.raise_request_exception = False
    assert post_event(client, event).status_code == 500
    # dj-stripe rolled the event back and kept the delivery, with the error and its traceback, for staff.
    assert not StripeEventOutcome.objects.exists() and not Event.objects.exists()
    (failed,) = WebhookEventTrigger.objects.all()
    assert failed.valid and not failed.processed and failed.exception == "database went away"
    assert "RuntimeError: database went away" in failed.traceback
    assert selectors.credits_balance(user=owner) == 0
    assert post_event(client, event).status_code == 200
    assert StripeEventOutcome.objects.get().status == "processed" and selectors.credits_balance(user=owner) == 220


# --- receipts ----------------------------------------------------------------------------------------------------


def test_the_receipt_from_an_earlier_charge_event_is_picked_up(client, owner, checkout, webhook_secret):
    # charge.succeeded usually arrives before checkout.session.completed.
    charge = charge_object("ch_1", payment_intent="pi_1", amount=19900, receipt_url="https://pay.stripe.com/r/ch_1")
    assert post_event(client, make_event("charge.succeeded", charge)).json()["status"] == "ignored"
    post_event(client, make_event("checkout.session.completed", _session(checkout)))
    checkout.refresh_from_db()
    assert (checkout.receipt_url, checkout.charge_id) == ("https://pay.stripe.com/r/ch_1", "ch_1")


def test_a_charge_event_after_completion_sets_the_receipt(client, owner, checkout, webhook_secret):
    post_event(client, make_event("checkout.session.completed", _session(checkout)))
    charge = charge_object("ch_2", payment_intent="pi_1", amount=19900, receipt_url="https://pay.stripe.com/r/ch_2")
    assert post_event(client, make_event("charge.succeeded", charge)).json()["status"] == "processed"
    checkout.refresh_from_db()
    assert checkout.receipt_url == "https://pay.stripe.com/r/ch_2"


def test_an_expanded_latest_charge_carries_the_receipt(client, owner, checkout, webhook_secret):
    expanded = {
        "id": "pi_9",
        "object": "payment_intent",
        "latest_charge": charge_object("ch_9", payment_intent="pi_9", amount=19900, receipt_url="https://r/ch_9"),
    }
    post_event(client, make_event("checkout.session.completed", _session(checkout, payment_intent=expanded)))
    checkout.refresh_from_db()
    assert (checkout.payment_intent_id, checkout.charge_id, checkout.receipt_url) == ("pi_9", "ch_9", "https://r/ch_9")


# --- refunds -------------------------------------------------------------------------------------------------------


def _paid(client, checkout) -> None:
    post_event(client, make_event("checkout.session.completed", _session(checkout)))


def _refund(client, *, refunded: int, amount: int = 19900, event_id: str | None = None):
    charge = charge_object("ch_pro", payment_intent="pi_1", amount=amount, amount_refunded=refunded)
    return post_event(client, make_event("charge.refunded", charge, event_id=event_id))


def test_a_full_refund_takes_the_credits_back(client, owner, checkout, webhook_secret):
    _paid(client, checkout)
    assert _refund(client, refunded=19900).json()["status"] == "processed"
    assert selectors.credits_balance(user=owner) == 0
    clawback = CreditTransaction.objects.get(kind="adjustment")
    assert (clawback.delta, clawback.idempotency_key) == (-220, "clawback:ch_pro:19900")
    checkout.refresh_from_db()
    assert (checkout.amount_refunded, checkout.credits_clawed_back, checkout.clawback_shortfall) == (19900, 220, 0)
    assert AuditEntry.objects.filter(action=AuditEntry.Action.CREDIT_CLAWBACK).count() == 1
    assert selectors.ledger_is_consistent(user=owner)


def test_partial_refunds_take_back_their_share_once_each(client, owner, checkout, webhook_secret):
    _paid(client, checkout)
    first = _refund(client, refunded=9950, event_id="evt_refund_half")  # half: 110 credits
    _refund(client, refunded=9950, event_id="evt_refund_half")  # a replay
    assert first.status_code == 200 and selectors.credits_balance(user=owner) == 110
    _refund(client, refunded=14925)  # now three quarters in total: 165
    assert selectors.credits_balance(user=owner) == 55
    _refund(client, refunded=9950)  # a late copy of the first refund, reordered: nothing more
    assert selectors.credits_balance(user=owner) == 55
    checkout.refresh_from_db()
    assert (checkout.amount_refunded, checkout.credits_clawed_back) == (14925, 165)
    assert [t.delta for t in CreditTransaction.objects.filter(kind="adjustment").order_by("id")] == [-110, -55]
    assert selectors.ledger_is_consistent(user=owner)


def test_a_refund_after_the_credits_were_spent_takes_what_is_left_and_flags_the_shortfall(
    client, owner, checkout, webhook_secret, caplog, staff_user
):
    _paid(client, checkout)
    credits_spend(user=owner, amount=200, idempotency_key="session-run:1")
    with caplog.at_level(logging.WARNING, logger="billing.stripe_webhooks"):
        response = _refund(client, refunded=19900)

    assert response.status_code == 200
    assert selectors.credits_balance(user=owner) == 0  # never below zero
    assert CreditTransaction.objects.get(kind="adjustment").delta == -20
    checkout.refresh_from_db()
    assert (checkout.credits_clawed_back, checkout.clawback_shortfall) == (20, 200)
    event = StripeEventOutcome.objects.get(type="charge.refunded")
    assert event.clawback_shortfall == 200 and "200 credits could not be taken back" in event.error
    assert "200 of 220 credits could not be clawed back" in caplog.text
    audit = AuditEntry.objects.get(action=AuditEntry.Action.CREDIT_CLAWBACK)
    assert audit.after["clawback_shortfall"] == 200 and "already spent" in audit.reason
    # Admins see it under "needs attention" on both lists.
    client.force_login(staff_user)
    listed = client.get("/admin/billing/stripeeventoutcome/?attention=shortfall").content.decode()
    assert event.event_id in listed and "⚠ 200 credits" in listed
    assert "cs_test_pro_1" in client.get("/admin/billing/checkoutsession/?shortfall=yes").content.decode()
    # A replay neither takes more nor flags twice.
    client.logout()
    _refund(client, refunded=19900)
    checkout.refresh_from_db()
    assert (checkout.credits_clawed_back, checkout.clawback_shortfall) == (20, 200)
    assert selectors.ledger_is_consistent(user=owner)


def test_a_refund_that_arrives_before_the_purchase_is_placed_when_it_completes(
    client, owner, checkout, webhook_secret, django_capture_on_commit_callbacks
):
    charge = charge_object("ch_early", payment_intent="pi_1", amount=19900, amount_refunded=19900)
    assert post_event(client, make_event("charge.refunded", charge)).json()["status"] == "unmatched"
    with django_capture_on_commit_callbacks(execute=True):
        _paid(client, checkout)
    assert StripeEventOutcome.objects.get(type="charge.refunded").status == "processed"
    assert selectors.credits_balance(user=owner) == 0
    assert selectors.ledger_is_consistent(user=owner)


def test_a_refund_takes_back_our_share_of_what_we_recorded_not_what_the_charge_claims(
    client, owner, checkout, packs, webhook_secret
):
    _paid(client, checkout)
    packs["Pro"].credits = 5000  # edited after the purchase: the checkout's own credits count
    packs["Pro"].save()
    # The charge claims it was for $1 and carries metadata for 100,000 credits; $1 of our $199 is refunded.
    charge = charge_object(
        "ch_pro",
        payment_intent="pi_1",
        amount=100,
        amount_refunded=100,
        metadata={"credits": "100000", "attempt_id": str(checkout.attempt_id)},
    )
    assert post_event(client, make_event("charge.refunded", charge)).json()["status"] == "processed"
    assert CreditTransaction.objects.get(kind="adjustment").delta == -1  # 220 × 100/19900, rounded
    assert _refund(client, refunded=19900).json()["status"] == "processed"  # then the rest: the whole pack
    assert selectors.credits_balance(user=owner) == 0
    checkout.refresh_from_db()
    assert (checkout.amount_refunded, checkout.credits_clawed_back) == (19900, 220)


def test_a_refund_is_not_matched_by_its_metadata(client, owner, checkout, webhook_secret):
    _paid(client, checkout)
    charge = charge_object(
        "ch_elsewhere",
        payment_intent="pi_elsewhere",
        amount=19900,
        amount_refunded=19900,
        metadata={"attempt_id": str(checkout.attempt_id), "user_id": str(owner.pk)},
    )
    assert post_event(client, make_event("charge.refunded", charge)).json()["status"] == "unmatched"
    assert selectors.credits_balance(user=owner) == 220
    checkout.refresh_from_db()
    assert checkout.amount_refunded == 0


def test_a_refund_before_a_delayed_payment_is_credited_waits_for_it(
    client, owner, checkout, webhook_secret, django_capture_on_commit_callbacks
):
    post_event(client, make_event("checkout.session.completed", _session(checkout, payment_status="unpaid")))
    charge = charge_object("ch_slow", payment_intent="pi_1", amount=19900, amount_refunded=19900)
    response = post_event(client, make_event("charge.refunded", charge))
    assert response.json()["status"] == "unmatched" and CreditTransaction.objects.count() == 0
    assert "has not been credited" in StripeEventOutcome.objects.get(type="charge.refunded").error
    with django_capture_on_commit_callbacks(execute=True):
        post_event(client, make_event("checkout.session.async_payment_succeeded", _session(checkout)))
    assert StripeEventOutcome.objects.get(type="charge.refunded").status == "processed"
    assert selectors.credits_balance(user=owner) == 0
    assert selectors.ledger_is_consistent(user=owner)


# --- dj-stripe's endpoint ------------------------------------------------------------------------------------------


def test_dj_stripes_uuid_url_credits_like_the_old_one(client, owner, checkout, webhook_secret):
    endpoint = configured_webhook_endpoint()
    event = make_event("checkout.session.completed", _session(checkout))
    body, header = signed_event(event, webhook_secret)
    url = f"/stripe/webhook/{endpoint.djstripe_uuid}/"
    response = client.post(url, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
    assert response.status_code == 200 and response.json()["status"] == "processed"
    assert selectors.credits_balance(user=owner) == 220
    other = client.post(
        f"/stripe/webhook/{uuid.uuid4()}/", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    assert other.status_code == 404


def test_the_debug_secret_header_never_replaces_a_signature(client, owner, checkout, webhook_secret, settings):
    # dj-stripe accepts X-Djstripe-Webhook-Secret instead of a signature when DEBUG is on; Cohorta does not.
    settings.DEBUG = True
    body, _ = signed_event(make_event("checkout.session.completed", _session(checkout)), webhook_secret)
    forged = sign_payload(body, "whsec_attacker")
    response = client.post(
        WEBHOOK_URL,
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=forged,
        HTTP_X_DJSTRIPE_WEBHOOK_SECRET="whsec_attacker",
    )
    assert response.status_code == 400 and selectors.credits_balance(user=owner) == 0
    assert WebhookEventTrigger.objects.count() == 0


def test_stripe_setup_is_idempotent_and_follows_the_secret(webhook_secret, settings, stripe_on):
    first = configured_webhook_endpoint()
    settings.STRIPE_WEBHOOK_SECRET = "whsec_rotated_0123456789"
    stripe_setup(site_url="https://cohorta.example.com")
    again = configured_webhook_endpoint()
    assert again.pk == first.pk and again.djstripe_uuid == first.djstripe_uuid
    assert again.secret == "whsec_rotated_0123456789"
    assert again.url == f"https://cohorta.example.com/stripe/webhook/{first.djstripe_uuid}/"
    assert again.djstripe_owner_account.id == stripe_on.account_id
    assert stripe_on.requests == []  # the account was read once, the first time: no call now
