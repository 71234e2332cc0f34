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

Lock order is always event row → checkout row → user row (the ledger), so two events of
one session cannot deadlock. Nothing here calls Stripe: the signed payload is the truth.
"""

import contextlib
import json
import logging
import uuid
from dataclasses import dataclass

import stripe
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from billing.models import (
    CheckoutSession,
    CheckoutStatus,
    CreditPack,
    CreditTransactionKind,
    StripeCustomer,
    StripeEvent,
    StripeEventStatus,
)
from billing.services import credits_clawback, credits_grant
from cohorta.audit.models import AuditEntry
from cohorta.audit.services import audit_record
from cohorta.errors import ApplicationError

logger = logging.getLogger(__name__)

DONE = (StripeEventStatus.PROCESSED, StripeEventStatus.IGNORED)
CHARGE_EVENTS = ("charge.succeeded", "charge.updated", "charge.refunded")


class WebhookRejected(ApplicationError):
    status_code = 400
    code = "invalid_signature"


@dataclass
class Outcome:
    status: str
    note: str = ""
    checkout: CheckoutSession | None = None
    shortfall: int = 0


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


def _int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _id_of(value) -> str:
    """Stripe sends a related object as its id, or as the object when expanded."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _user_for(obj: dict):
    meta = obj.get("metadata") or {}
    customer_id = _id_of(obj.get("customer"))
    owner_of_customer = (
        StripeCustomer.objects.filter(stripe_id=customer_id).values_list("user_id", flat=True).first()
        if customer_id
        else None
    )
    user_id = _int(meta.get("user_id")) or _int(obj.get("client_reference_id"))
    if user_id is None:
        user_id = owner_of_customer
    elif owner_of_customer is not None and owner_of_customer != user_id:
        return None  # the metadata and the customer disagree: credit nobody, let an admin look
    return get_user_model().objects.filter(pk=user_id).first() if user_id else None


def _checkout_for_session(obj: dict, *, create: bool) -> CheckoutSession | None:
    """Our row for this Checkout Session, locked.

    With ``create``, a session we have no row for (our insert failed after Stripe answered,
    or it was made elsewhere with our metadata) is rebuilt from the metadata we send.
    """
    session_id = _id_of(obj)
    if not session_id:
        return None
    found = CheckoutSession.objects.select_for_update().filter(stripe_id=session_id).first()
    if found is not None or not create:
        return found
    user = _user_for(obj)
    meta = obj.get("metadata") or {}
    pack = CreditPack.objects.filter(pk=_int(meta.get("pack_id")) or 0).first()
    credits = _int(meta.get("credits")) or (pack.credits if pack else None)
    if user is None or not credits:
        return None
    row, _ = CheckoutSession.objects.get_or_create(
        stripe_id=session_id,
        defaults={
            "user": user,
            "user_email": user.email,
            "pack": pack,
            "pack_name": pack.name if pack else "",
            "credits": credits,
            "amount": _int(obj.get("amount_total")) or 0,
            "currency": str(obj.get("currency") or "usd").lower()[:3],
        },
    )
    return CheckoutSession.objects.select_for_update().get(pk=row.pk)


def _checkout_for_charge(charge: dict) -> CheckoutSession | None:
    """Our checkout for a charge: by payment intent, charge id, or the attempt id in its metadata."""
    match = Q(pk__in=[])
    if _id_of(charge):
        match |= Q(charge_id=_id_of(charge))
    if _id_of(charge.get("payment_intent")):
        match |= Q(payment_intent_id=_id_of(charge.get("payment_intent")))
    # Charges made without our metadata (or someone else's) simply do not match on it.
    with contextlib.suppress(KeyError, ValueError):
        match |= Q(attempt_id=uuid.UUID(str((charge.get("metadata") or {})["attempt_id"])))
    return CheckoutSession.objects.select_for_update().filter(match).order_by("id").first()


def _unmatched(obj: dict, what: str = "checkout session") -> Outcome:
    return Outcome(
        StripeEventStatus.UNMATCHED,
        f"No Cohorta account matches this {what} ({_id_of(obj) or 'no id'}, "
        f"customer {_id_of(obj.get('customer')) or 'none'}); nothing was credited.",
    )


def _take_receipt(checkout: CheckoutSession, charge: dict) -> None:
    if isinstance(charge.get("receipt_url"), str) and charge["receipt_url"]:
        checkout.receipt_url = charge["receipt_url"]
    if _id_of(charge):
        checkout.charge_id = _id_of(charge)


def _note_payment(checkout: CheckoutSession, obj: dict) -> None:
    """Payment details from a session payload: payment intent, amount, and a receipt if we can find one."""
    payment_intent = obj.get("payment_intent")
    if isinstance(payment_intent, dict) and isinstance(payment_intent.get("latest_charge"), dict):
        _take_receipt(checkout, payment_intent["latest_charge"])
    payment_intent_id = _id_of(payment_intent)
    newly_known = payment_intent_id and checkout.payment_intent_id != payment_intent_id
    if newly_known:
        checkout.payment_intent_id = payment_intent_id
    if (_int(obj.get("amount_total")) or 0) > 0:
        checkout.amount = obj["amount_total"]
    if payment_intent_id and not checkout.receipt_url:
        # charge.succeeded usually arrives before the session completes, when we could not place it yet.
        earlier = (
            StripeEvent.objects.filter(type__in=CHARGE_EVENTS, payload__data__object__payment_intent=payment_intent_id)
            .order_by("-id")
            .first()
        )
        if earlier is not None:
            _take_receipt(checkout, earlier.data_object)
    checkout.save()
    if newly_known:
        transaction.on_commit(lambda: _retry_waiting_refunds(payment_intent_id))


def _retry_waiting_refunds(payment_intent_id: str) -> None:
    """A refund that arrived before its checkout completed was left unmatched; place it now."""
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


def _credit(checkout: CheckoutSession, row: StripeEvent) -> Outcome:
    if checkout.status == CheckoutStatus.PAID:
        return Outcome(StripeEventStatus.PROCESSED, "Already credited.", checkout)
    if checkout.user_id is None:
        return Outcome(
            StripeEventStatus.UNMATCHED, "The account that paid was deleted; nothing was credited.", checkout
        )
    before = checkout.status
    entry = credits_grant(
        user=checkout.user,
        amount=checkout.credits,
        kind=CreditTransactionKind.PURCHASE,
        idempotency_key=f"checkout:{checkout.stripe_id}",
        reference=f"checkout:{checkout.stripe_id}",
        description=f"{checkout.pack_name or 'Credit'} pack: {checkout.credits} credits",
    )
    checkout.status = CheckoutStatus.PAID
    checkout.paid_at = timezone.now()
    checkout.save(update_fields=["status", "paid_at", "updated_at"])
    audit_record(
        action=AuditEntry.Action.CREDIT_PURCHASE,
        target=checkout,
        subject_user=checkout.user,
        before={"status": before, "balance": entry.balance_after - entry.delta},
        after={
            "status": CheckoutStatus.PAID,
            "credits": checkout.credits,
            "balance": entry.balance_after,
            "amount": f"{checkout.price} {checkout.currency.upper()}",
        },
        reason=f"Stripe {row.type} ({row.event_id})",
    )
    return Outcome(StripeEventStatus.PROCESSED, "", checkout)


def _on_session_completed(row: StripeEvent, obj: dict) -> Outcome:
    checkout = _checkout_for_session(obj, create=True)
    if checkout is None:
        return _unmatched(obj)
    _note_payment(checkout, obj)
    payment_status = obj.get("payment_status")
    if payment_status == "paid":
        return _credit(checkout, row)
    if payment_status == "unpaid":
        if checkout.status == CheckoutStatus.PENDING:
            _move(checkout, CheckoutStatus.PROCESSING)
        return Outcome(
            StripeEventStatus.PROCESSED, "Paid by a delayed method: credits follow async_payment_succeeded.", checkout
        )
    return Outcome(StripeEventStatus.PROCESSED, f"payment_status is {payment_status!r}: nothing credited.", checkout)


def _on_async_payment_succeeded(row: StripeEvent, obj: dict) -> Outcome:
    checkout = _checkout_for_session(obj, create=True)
    if checkout is None:
        return _unmatched(obj)
    _note_payment(checkout, obj)
    return _credit(checkout, row)


def _on_async_payment_failed(row: StripeEvent, obj: dict) -> Outcome:
    checkout = _checkout_for_session(obj, create=False)
    if checkout is None:
        return _unmatched(obj)
    if checkout.status != CheckoutStatus.PAID:
        _move(checkout, CheckoutStatus.FAILED)
    return Outcome(StripeEventStatus.PROCESSED, "", checkout)


def _on_session_expired(row: StripeEvent, obj: dict) -> Outcome:
    checkout = _checkout_for_session(obj, create=False)
    if checkout is None:
        return _unmatched(obj)
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
    _take_receipt(checkout, charge)
    checkout.save(update_fields=["receipt_url", "charge_id", "updated_at"])
    return Outcome(StripeEventStatus.PROCESSED, "", checkout)


def _on_charge_refunded(row: StripeEvent, charge: dict) -> Outcome:
    checkout = _checkout_for_charge(charge)
    if checkout is None:
        return _unmatched(charge, "charge")
    _take_receipt(checkout, charge)
    amount, refunded = _int(charge.get("amount")) or 0, min(_int(charge.get("amount_refunded")) or 0, 10**12)
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
                idempotency_key=f"clawback:{_id_of(charge)}:{refunded}",
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
    "checkout.session.completed": _on_session_completed,
    "checkout.session.async_payment_succeeded": _on_async_payment_succeeded,
    "checkout.session.async_payment_failed": _on_async_payment_failed,
    "checkout.session.expired": _on_session_expired,
    "charge.succeeded": _on_charge,
    "charge.updated": _on_charge,
    "charge.refunded": _on_charge_refunded,
}
