"""Stripe webhooks: verify, record every event once, act on the few that move money.

Exactly once, by construction rather than by luck:

* every delivery of an event lands on one ``StripeEvent`` row (unique event id); processing
  locks that row, so concurrent deliveries of one event run one after the other and the
  later ones find it done;
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
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from billing.checkout import Outcome, checkout_fulfil, stripe_id_of, stripe_int, take_receipt
from billing.models import (
    REFUSED_EVENT_STATUSES,
    CheckoutSession,
    CheckoutStatus,
    StripeEvent,
    StripeEventStatus,
)
from billing.services import credits_clawback
from cohorta.audit.models import AuditEntry
from cohorta.audit.services import audit_record
from cohorta.errors import ApplicationError

logger = logging.getLogger(__name__)

# Done: a later delivery of the event only counts itself. Refusals are done too: the answer cannot change.
DONE = (StripeEventStatus.PROCESSED, StripeEventStatus.IGNORED, *REFUSED_EVENT_STATUSES)


class WebhookRejected(ApplicationError):
    status_code = 400
    code = "invalid_signature"


# --- receiving -------------------------------------------------------------------------


def stripe_webhook_verify(*, payload: bytes, signature: str) -> dict:
    """The event, if Stripe signed it with our endpoint's secret; else ``WebhookRejected`` (400)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise ApplicationError(
            "Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).",
            code="payments_not_configured",
            status_code=503,
        )
    try:
        text = payload.decode("utf-8")
        stripe.Webhook.construct_event(text, signature or "", secret)
        event = json.loads(text)
    except (stripe.SignatureVerificationError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise WebhookRejected(f"Webhook signature verification failed: {exc}") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise WebhookRejected("A signed payload that is not a Stripe event.")
    return event


def _event_defaults(event: dict, now) -> dict:
    return {
        "type": event["type"][:100],
        "livemode": bool(event.get("livemode")),
        "payload": event,
        "created_at": now,
        "last_received_at": now,
    }


def _count_delivery(row: StripeEvent, now) -> None:
    StripeEvent.objects.filter(pk=row.pk).update(received_count=F("received_count") + 1, last_received_at=now)
    row.received_count += 1


def _apply(row: StripeEvent) -> None:
    """Run the event's handler and record the outcome. The caller holds the event row's lock."""
    handler = _HANDLERS.get(row.type)
    if handler is None:
        outcome = Outcome(StripeEventStatus.IGNORED, "Cohorta does not act on this event type.")
    else:
        outcome = handler(row, row.data_object)
    row.status = outcome.status
    row.error = outcome.note
    row.checkout_session = outcome.checkout
    row.clawback_shortfall = outcome.shortfall
    row.processed_at = timezone.now()
    row.save(update_fields=["status", "error", "checkout_session", "clawback_shortfall", "processed_at"])


def stripe_webhook_receive(*, payload: bytes, signature: str) -> StripeEvent:
    return stripe_event_handle(event=stripe_webhook_verify(payload=payload, signature=signature))


def stripe_event_handle(*, event: dict) -> StripeEvent:
    """Record one delivery of a verified event and act on it, once, in one transaction.

    The first delivery inserts the event row; a concurrent copy waits on the unique index until
    that transaction commits, then finds the event done. Later copies lock the row, count
    themselves and stop. A refusal from the ledger (an ``ApplicationError``) is recorded as
    failed and not raised: it would fail the same way on every retry. Anything else is recorded
    and raised, so the webhook answers 500 and Stripe delivers the event again later.
    """
    now = timezone.now()
    event_id = event["id"][:255]
    try:
        with transaction.atomic():
            row = StripeEvent.objects.select_for_update().filter(event_id=event_id).first()
            if row is None:
                try:
                    with transaction.atomic():
                        row = StripeEvent.objects.create(event_id=event_id, **_event_defaults(event, now))
                except IntegrityError:
                    row = StripeEvent.objects.select_for_update().get(event_id=event_id)
                    _count_delivery(row, now)
            else:
                _count_delivery(row, now)
            if row.status not in DONE:
                _apply(row)
            return row
    except ApplicationError as exc:
        logger.error("Stripe event %s could not be applied: %s", event_id, exc.message)
        return _record_failure(event, exc.message, now)
    except Exception as exc:
        _record_failure(event, f"{type(exc).__name__}: {exc}", now)
        raise


def _record_failure(event: dict, message: str, now) -> StripeEvent:
    """The failed delivery's transaction was rolled back: record the event (and this delivery) afresh."""
    defaults = {**_event_defaults(event, now), "status": StripeEventStatus.FAILED, "error": message[:5000]}
    row, created = StripeEvent.objects.get_or_create(event_id=event["id"][:255], defaults=defaults)
    if not created:
        _count_delivery(row, now)
        _mark_failed(row.pk, message)
    return StripeEvent.objects.get(pk=row.pk)


def stripe_event_process(*, event_pk: int) -> StripeEvent:
    """Act on a recorded event that is not done yet: the admin's "Process again", and refunds
    that arrived before their checkout. Errors are handled as in ``stripe_event_handle``."""
    try:
        with transaction.atomic():
            row = StripeEvent.objects.select_for_update().get(pk=event_pk)
            if row.status not in DONE:
                _apply(row)
            return row
    except ApplicationError as exc:
        logger.error("Stripe event %s could not be applied: %s", event_pk, exc.message)
        _mark_failed(event_pk, exc.message)
        return StripeEvent.objects.get(pk=event_pk)
    except Exception as exc:
        _mark_failed(event_pk, f"{type(exc).__name__}: {exc}")
        raise


def _mark_failed(event_pk: int, message: str) -> None:
    # Never overwrite a success another delivery recorded meanwhile.
    StripeEvent.objects.filter(pk=event_pk).exclude(status__in=DONE).update(
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
    waiting = StripeEvent.objects.filter(
        status=StripeEventStatus.UNMATCHED,
        type="charge.refunded",
        payload__data__object__payment_intent=payment_intent_id,
    ).values_list("pk", flat=True)
    for pk in waiting:
        try:
            stripe_event_process(event_pk=pk)
        except Exception:
            logger.exception("Stripe event %s: retrying a waiting refund failed", pk)


def _move(checkout: CheckoutSession, status: str) -> None:
    checkout.status = status
    checkout.save(update_fields=["status", "updated_at"])


# --- what each event does -----------------------------------------------------------------


def _on_session_paid(row: StripeEvent, obj: dict) -> Outcome:
    outcome = checkout_fulfil(event=row.payload)
    payment_intent_id = outcome.checkout.payment_intent_id if outcome.granted else ""
    if payment_intent_id:
        transaction.on_commit(lambda: _retry_waiting_refunds(payment_intent_id))
    return outcome


def _not_ours(obj: dict) -> Outcome:
    return Outcome(
        StripeEventStatus.IGNORED, f"Cohorta did not create checkout session {stripe_id_of(obj) or '(no id)'}."
    )


def _on_async_payment_failed(row: StripeEvent, obj: dict) -> Outcome:
    checkout = _checkout_for_session(obj)
    if checkout is None:
        return _not_ours(obj)
    if checkout.status != CheckoutStatus.PAID:
        _move(checkout, CheckoutStatus.FAILED)
    return Outcome(StripeEventStatus.PROCESSED, "", checkout)


def _on_session_expired(row: StripeEvent, obj: dict) -> Outcome:
    checkout = _checkout_for_session(obj)
    if checkout is None:
        return _not_ours(obj)
    if checkout.status in (CheckoutStatus.PENDING, CheckoutStatus.PROCESSING):
        _move(checkout, CheckoutStatus.EXPIRED)
    return Outcome(StripeEventStatus.PROCESSED, "", checkout)


def _on_charge(row: StripeEvent, charge: dict) -> Outcome:
    checkout = _checkout_for_charge(charge)
    if checkout is None:
        return Outcome(
            StripeEventStatus.IGNORED,
            "No checkout has this payment yet; the receipt is picked up when the checkout completes.",
        )
    take_receipt(checkout, charge)
    checkout.save(update_fields=["receipt_url", "charge_id", "updated_at"])
    return Outcome(StripeEventStatus.PROCESSED, "", checkout)


def _on_charge_refunded(row: StripeEvent, charge: dict) -> Outcome:
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
    reason = f"Stripe refund of {refunded} of {amount} {checkout.currency.upper()} minor units ({row.event_id})"
    if shortfall:
        reason += f"; {shortfall} credits were already spent and could not be taken back"
        logger.warning(
            "Refund %s on checkout %s: %s of %s credits could not be clawed back from user %s (already spent)",
            row.event_id,
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
