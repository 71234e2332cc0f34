"""Stripe webhooks, received by dj-stripe: verify, log every delivery, act once on the few that move money.

dj-stripe's endpoint (``stripe/webhook/<uuid>/``, and the old ``/billing/stripe/webhook/``) logs
each delivery as a ``WebhookEventTrigger`` (with the traceback when processing raised) and stores
each event once as a ``djstripe.Event``. Its signals call ``stripe_event_receive`` for the types in
``WEBHOOK_EVENTS`` (dj-stripe's own handlers for them are disconnected: they would re-fetch from
the Stripe API), and we record what the event meant as a ``StripeEventOutcome``.

Exactly once, by construction rather than by luck:

* dj-stripe inserts the ``Event`` row (unique Stripe id) and sends the signal in the same
  transaction, so a concurrent copy of one event waits on the unique index until the first
  commits, then finds the event stored and sends nothing; a later copy sends nothing either;
* the events of one Checkout Session (``completed``, ``async_payment_succeeded``, their
  replays, in any order) lock the one ``CheckoutSession`` row and credit only while it is not
  paid, through the ledger keyed ``checkout:<session id>``, whose unique key would stop a
  second grant even if everything above failed;
* refunds claw back the part of the pack that the refunded amount stands for, tracked on the
  checkout row, so a replayed or late refund event never takes credits twice.

Only what we recorded is worth anything: a session is matched by the id we stored when we
created it, and credits and prices come from that record (``billing.checkout``), never from
the event's metadata. Refused payments (unknown checkout, wrong amount or currency, not paid)
are final statuses: Stripe gets a 200, the admin flags them.

Lock order is always event row → checkout row → user row (the ledger), so two events of
one session cannot deadlock. Nothing here calls Stripe: the signed payload says what happened.
"""

import json
import logging

import stripe
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from djstripe.models import Event

from billing.checkout import Outcome, checkout_fulfil, stripe_id_of, stripe_int, take_receipt
from billing.models import (
    REFUSED_EVENT_STATUSES,
    CheckoutSession,
    CheckoutStatus,
    StripeEventOutcome,
    StripeEventStatus,
)
from billing.services import credits_clawback
from cohorta.audit.models import AuditEntry
from cohorta.audit.services import audit_record
from cohorta.errors import ApplicationError

logger = logging.getLogger(__name__)

# Done: the answer cannot change by processing again. Refusals are done too.
DONE = (StripeEventStatus.PROCESSED, StripeEventStatus.IGNORED, *REFUSED_EVENT_STATUSES)


class WebhookRejected(ApplicationError):
    status_code = 400
    code = "invalid_signature"


# --- receiving -------------------------------------------------------------------------


def stripe_webhook_verify(*, payload: bytes, signature: str, secret: str) -> dict:
    """The event, if Stripe signed it with the endpoint's secret; else ``WebhookRejected`` (400).

    Checked before dj-stripe sees the request, so a forged or stale delivery stores nothing and
    dj-stripe's DEBUG-only ``X-Djstripe-Webhook-Secret`` shortcut can never stand in for a signature.
    """
    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(text, signature or "", secret, stripe.Webhook.DEFAULT_TOLERANCE)
        event = json.loads(text)
    except (stripe.SignatureVerificationError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise WebhookRejected(f"Webhook signature verification failed: {exc}") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise WebhookRejected("A signed payload that is not a Stripe event.")
    if "livemode" not in event:
        raise WebhookRejected("A signed payload that is not a Stripe event (no livemode).")
    return event


def stripe_event_receive(sender, event: Event, **kwargs) -> None:
    """dj-stripe's webhook signal for a type in ``WEBHOOK_EVENTS``: sent once per event id, inside
    the transaction that stores the event. An unexpected error propagates: dj-stripe rolls the
    event back, logs the traceback on the delivery, and the 500 makes Stripe deliver it again."""
    stripe_event_apply(event=event)


def stripe_event_apply(*, event: Event) -> StripeEventOutcome:
    """Act on a verified, stored event and record the outcome. A refusal from the ledger (an
    ``ApplicationError``) is recorded as failed and not raised: it would fail the same way on every
    retry, and an admin can process it again once the data is fixed."""
    try:
        with transaction.atomic():
            return _apply(event)
    except ApplicationError as exc:
        logger.error("Stripe event %s could not be applied: %s", event.id, exc.message)
        row, _ = StripeEventOutcome.objects.update_or_create(
            event=event,
            defaults={
                "type": event.type[:100],
                "status": StripeEventStatus.FAILED,
                "error": exc.message[:5000],
                "processed_at": timezone.now(),
            },
        )
        return row


def _apply(event: Event) -> StripeEventOutcome:
    """Run the event's handler and record the outcome. The caller holds the event (dj-stripe's insert, or
    the outcome row's lock)."""
    payload = {"id": event.id, "type": event.type, "data": event.data}
    handler = _HANDLERS.get(event.type)
    if handler is None:
        outcome = Outcome(StripeEventStatus.IGNORED, "Cohorta does not act on this event type.")
    else:
        outcome = handler(payload, (event.data or {}).get("object") or {})
    row, _ = StripeEventOutcome.objects.update_or_create(
        event=event,
        defaults={
            "type": event.type[:100],
            "status": outcome.status,
            "error": outcome.note,
            "checkout_session": outcome.checkout,
            "clawback_shortfall": outcome.shortfall,
            "processed_at": timezone.now(),
        },
    )
    return row


def stripe_event_process(*, outcome_pk: int) -> StripeEventOutcome:
    """Act again on a stored event that is not done: the admin's "Process again", and refunds that
    arrived before their checkout. Errors are handled as in ``stripe_event_apply``."""
    try:
        with transaction.atomic():
            row = StripeEventOutcome.objects.select_for_update().select_related("event").get(pk=outcome_pk)
            if row.status not in DONE:
                return _apply(row.event)
            return row
    except ApplicationError as exc:
        logger.error("Stripe event outcome %s could not be applied: %s", outcome_pk, exc.message)
        _mark_failed(outcome_pk, exc.message)
        return StripeEventOutcome.objects.get(pk=outcome_pk)
    except Exception as exc:
        _mark_failed(outcome_pk, f"{type(exc).__name__}: {exc}")
        raise


def _mark_failed(outcome_pk: int, message: str) -> None:
    # Never overwrite a success recorded meanwhile.
    StripeEventOutcome.objects.filter(pk=outcome_pk).exclude(status__in=DONE).update(
        status=StripeEventStatus.FAILED, error=message[:5000], processed_at=timezone.now()
    )


# --- matching payloads to our rows ---------------------------------------------------------


def _checkout_for_session(obj: dict) -> CheckoutSession | None:
    """Our row for this Checkout Session, locked: only by the session id we stored when we created it."""
    session_id = stripe_id_of(obj)
    if not session_id:
        return None
    return CheckoutSession.objects.select_for_update().filter(stripe_id=session_id).first()


def _checkout_for_charge(charge: dict) -> CheckoutSession | None:
    """Our checkout for a charge, by the charge or payment intent id we recorded from its paid session.

    Never by the charge's metadata: anyone who can create a charge in the account can write that.
    """
    match = Q(pk__in=[])
    if stripe_id_of(charge):
        match |= Q(charge_id=stripe_id_of(charge))
    if stripe_id_of(charge.get("payment_intent")):
        match |= Q(payment_intent_id=stripe_id_of(charge.get("payment_intent")))
    return CheckoutSession.objects.select_for_update().filter(match).order_by("id").first()


def _unmatched_charge(charge: dict) -> Outcome:
    return Outcome(
        StripeEventStatus.UNMATCHED,
        f"No Cohorta checkout has this charge yet ({stripe_id_of(charge) or 'no id'}, payment "
        f"{stripe_id_of(charge.get('payment_intent')) or 'none'}); nothing was changed.",
    )


def _retry_waiting_refunds(payment_intent_id: str) -> None:
    """A refund that arrived before its checkout was credited was left unmatched; place it now."""
    waiting = StripeEventOutcome.objects.filter(
        status=StripeEventStatus.UNMATCHED,
        type="charge.refunded",
        event__data__object__payment_intent=payment_intent_id,
    ).values_list("pk", flat=True)
    for pk in waiting:
        try:
            stripe_event_process(outcome_pk=pk)
        except Exception:
            logger.exception("Stripe event %s: retrying a waiting refund failed", pk)


def _move(checkout: CheckoutSession, status: str) -> None:
    checkout.status = status
    checkout.save(update_fields=["status", "updated_at"])


# --- what each event does -----------------------------------------------------------------


def _on_session_paid(event: dict, obj: dict) -> Outcome:
    outcome = checkout_fulfil(event=event)
    payment_intent_id = outcome.checkout.payment_intent_id if outcome.granted and outcome.checkout else ""
    if payment_intent_id:
        transaction.on_commit(lambda: _retry_waiting_refunds(payment_intent_id))
    return outcome


def _not_ours(obj: dict) -> Outcome:
    return Outcome(
        StripeEventStatus.IGNORED, f"Cohorta did not create checkout session {stripe_id_of(obj) or '(no id)'}."
    )


def _on_async_payment_failed(event: dict, obj: dict) -> Outcome:
    checkout = _checkout_for_session(obj)
    if checkout is None:
        return _not_ours(obj)
    if checkout.status != CheckoutStatus.PAID:
        _move(checkout, CheckoutStatus.FAILED)
    return Outcome(StripeEventStatus.PROCESSED, "", checkout)


def _on_session_expired(event: dict, obj: dict) -> Outcome:
    checkout = _checkout_for_session(obj)
    if checkout is None:
        return _not_ours(obj)
    if checkout.status in (CheckoutStatus.PENDING, CheckoutStatus.PROCESSING):
        _move(checkout, CheckoutStatus.EXPIRED)
    return Outcome(StripeEventStatus.PROCESSED, "", checkout)


def _on_charge(event: dict, charge: dict) -> Outcome:
    checkout = _checkout_for_charge(charge)
    if checkout is None:
        return Outcome(
            StripeEventStatus.IGNORED,
            "No checkout has this payment yet; the receipt is picked up when the checkout completes.",
        )
    take_receipt(checkout, charge)
    checkout.save(update_fields=["receipt_url", "charge_id", "updated_at"])
    return Outcome(StripeEventStatus.PROCESSED, "", checkout)


def _on_charge_refunded(event: dict, charge: dict) -> Outcome:
    checkout = _checkout_for_charge(charge)
    if checkout is None:
        return _unmatched_charge(charge)
    if checkout.status != CheckoutStatus.PAID:
        return Outcome(
            StripeEventStatus.UNMATCHED,
            f"Checkout {checkout.stripe_id} has not been credited ({checkout.get_status_display().lower()}): "
            "nothing to take back yet; this refund is applied when it is.",
            checkout,
        )
    take_receipt(checkout, charge)
    # What was paid and what it bought are ours: the amount we checked at payment, the credits we granted.
    amount, refunded = checkout.amount, min(stripe_int(charge.get("amount_refunded")) or 0, 10**12)
    if amount <= 0 or refunded <= checkout.amount_refunded:
        checkout.save()
        return Outcome(StripeEventStatus.PROCESSED, "Refund already accounted for.", checkout)
    refunded = min(refunded, amount)
    # The share of the pack the refunded money stands for, rounded half up; a full refund is the whole pack.
    owed_in_total = (2 * checkout.credits * refunded + amount) // (2 * amount)
    owed_now = owed_in_total - checkout.credits_clawed_back - checkout.clawback_shortfall
    before = {
        "amount_refunded": checkout.amount_refunded,
        "credits_clawed_back": checkout.credits_clawed_back,
        "clawback_shortfall": checkout.clawback_shortfall,
    }
    taken = shortfall = 0
    if owed_now > 0:
        if checkout.user_id is None:
            shortfall = owed_now
        else:
            _, shortfall = credits_clawback(
                user=checkout.user,
                amount=owed_now,
                idempotency_key=f"clawback:{stripe_id_of(charge)}:{refunded}",
                reference=f"checkout:{checkout.stripe_id}",
                description=f"Refund of {checkout.pack_name or 'credit'} pack: {owed_now} credits taken back",
            )
            taken = owed_now - shortfall
    checkout.amount_refunded = refunded
    checkout.credits_clawed_back += taken
    checkout.clawback_shortfall += shortfall
    checkout.save()
    reason = f"Stripe refund of {refunded} of {amount} {checkout.currency.upper()} minor units ({event['id']})"
    if shortfall:
        reason += f"; {shortfall} credits were already spent and could not be taken back"
        logger.warning(
            "Refund %s on checkout %s: %s of %s credits could not be clawed back from user %s (already spent)",
            event["id"],
            checkout.stripe_id,
            shortfall,
            owed_now,
            checkout.user_id,
        )
    audit_record(
        action=AuditEntry.Action.CREDIT_CLAWBACK,
        target=checkout,
        subject_user=checkout.user,
        before=before,
        after={
            "amount_refunded": checkout.amount_refunded,
            "credits_clawed_back": checkout.credits_clawed_back,
            "clawback_shortfall": checkout.clawback_shortfall,
        },
        reason=reason,
    )
    note = f"{shortfall} credits could not be taken back: the balance had already been spent." if shortfall else ""
    return Outcome(StripeEventStatus.PROCESSED, note, checkout, shortfall=shortfall)


_HANDLERS = {
    "checkout.session.completed": _on_session_paid,
    "checkout.session.async_payment_succeeded": _on_session_paid,
    "checkout.session.async_payment_failed": _on_async_payment_failed,
    "checkout.session.expired": _on_session_expired,
    "charge.succeeded": _on_charge,
    "charge.updated": _on_charge,
    "charge.refunded": _on_charge_refunded,
}

# The event types Cohorta acts on: dj-stripe sends them to ``stripe_event_receive``.
WEBHOOK_EVENTS = tuple(_HANDLERS)
