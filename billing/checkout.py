"""Fulfilling a checkout: credits only for a Checkout Session Cohorta created, paid in full.

What a checkout grants and costs comes from our own records: the ``CheckoutAttempt`` made when
the buyer clicked Buy (the pack's credits, price and currency at that moment), copied onto the
``CheckoutSession`` when Stripe created it. The event is only compared with them: its metadata
is never read, its amount and currency must equal ours, and it must say the session is paid.

A session we have no record of, a payment of another amount or currency, or a session that is
not paid grants nothing. The event is stored with that status (the admin flags it), audited and
logged, and Stripe still gets a 200: delivering it again cannot change the answer.

``checkout_fulfil`` takes a verified event payload: dj-stripe's webhook signal receivers
(``billing.stripe_webhooks``) call it. Call it inside a transaction: it locks the checkout row.
"""

import logging
from dataclasses import dataclass

from django.utils import timezone
from djstripe.models import Event

from billing.models import (
    CheckoutSession,
    CheckoutStatus,
    CreditTransactionKind,
    StripeEventStatus,
    from_minor_units,
)
from billing.services import credits_grant
from cohorta.audit.models import AuditEntry
from cohorta.audit.services import audit_record

logger = logging.getLogger(__name__)

CHARGE_EVENTS = ("charge.succeeded", "charge.updated", "charge.refunded")
CHECK_IN_STRIPE = "Check the payment in the Stripe dashboard: refund it, or grant credits by hand if it is genuine."


@dataclass
class Outcome:
    status: str
    note: str = ""
    checkout: CheckoutSession | None = None
    shortfall: int = 0
    granted: bool = False


def stripe_int(value) -> int | None:
    """An integer from a payload, or None: a bool, a float or text with anything but digits is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def stripe_id_of(value) -> str:
    """Stripe sends a related object as its id, or as the object when expanded."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def take_receipt(checkout: CheckoutSession, charge: dict) -> None:
    """Copy a charge's receipt and id onto the checkout (the caller saves)."""
    if isinstance(charge.get("receipt_url"), str) and charge["receipt_url"]:
        checkout.receipt_url = charge["receipt_url"]
    if stripe_id_of(charge):
        checkout.charge_id = stripe_id_of(charge)


def _money(amount: int | None, currency: str) -> str:
    if amount is None or amount < 0:
        return f"no amount in {currency.upper() or 'no currency'}"
    return f"{from_minor_units(amount, currency)} {currency.upper()}" if currency else f"{amount} (no currency)"


def _claimed_credits(obj: dict) -> str:
    metadata = obj.get("metadata")
    claimed = metadata.get("credits") if isinstance(metadata, dict) else None
    return f"; its metadata claims {str(claimed)[:20]} credits" if claimed not in (None, "") else ""


def _note_payment(checkout: CheckoutSession, obj: dict) -> None:
    """The payment intent, and a receipt if we can find one. What was paid stays as we recorded it."""
    payment_intent = obj.get("payment_intent")
    if isinstance(payment_intent, dict) and isinstance(payment_intent.get("latest_charge"), dict):
        take_receipt(checkout, payment_intent["latest_charge"])
    payment_intent_id = stripe_id_of(payment_intent)
    if payment_intent_id:
        checkout.payment_intent_id = payment_intent_id
    if payment_intent_id and not checkout.receipt_url:
        # charge.succeeded usually arrives before the session completes, when we could not place it yet.
        earlier = (
            Event.objects.filter(type__in=CHARGE_EVENTS, data__object__payment_intent=payment_intent_id)
            .order_by("-djstripe_id")
            .first()
        )
        if earlier is not None:
            take_receipt(checkout, (earlier.data or {}).get("object") or {})
    checkout.save()


def _refuse(
    event: dict, status: StripeEventStatus, note: str, checkout: CheckoutSession | None, *, paid: str, session_id: str
) -> Outcome:
    logger.warning("Stripe %s %s refused (%s): %s", event.get("type"), event.get("id"), status.label, note)
    audit_record(
        action=AuditEntry.Action.PAYMENT_REFUSED,
        target=checkout,
        subject_user=checkout.user if checkout is not None else None,
        before={"status": checkout.status} if checkout is not None else {},
        after={
            "refused": status.label,
            "credits": 0,
            "session": session_id,
            "paid": paid,
            "expected": _money(checkout.amount, checkout.currency) if checkout is not None else "",
        },
        reason=f"Refused, nothing credited ({status.label}): {note} Stripe {event.get('type')} {event.get('id')}.",
    )
    return Outcome(status, note, checkout)


def _credit(checkout: CheckoutSession, event: dict) -> Outcome:
    if checkout.status == CheckoutStatus.PAID:
        return Outcome(StripeEventStatus.PROCESSED, "Already credited.", checkout)
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
        reason=f"Stripe {event.get('type')} ({event.get('id')})",
    )
    return Outcome(StripeEventStatus.PROCESSED, "", checkout, granted=True)


def checkout_fulfil(*, event: dict) -> Outcome:
    """Credit the pack of the checkout a verified ``checkout.session.completed`` or
    ``checkout.session.async_payment_succeeded`` event is about, exactly once, if it is ours and paid
    in full; otherwise refuse it (see the module docstring). Locks the checkout row."""
    obj = (event.get("data") or {}).get("object") or {}
    session_id = stripe_id_of(obj)
    paid_amount = stripe_int(obj.get("amount_total"))
    currency = obj.get("currency")
    paid_currency = currency.lower()[:10] if isinstance(currency, str) else ""
    paid = _money(paid_amount, paid_currency)
    checkout = CheckoutSession.objects.select_for_update().filter(stripe_id=session_id).first() if session_id else None
    if checkout is not None and checkout.user_id is None:
        if checkout.status == CheckoutStatus.PAID:
            return Outcome(StripeEventStatus.PROCESSED, "Already credited; the account was deleted since.", checkout)
        return Outcome(
            StripeEventStatus.UNMATCHED, "The account that paid was deleted; nothing was credited.", checkout
        )
    if checkout is None:
        note = (
            f"Cohorta has no record of checkout session {session_id or '(no id)'} (paid {paid}"
            f"{_claimed_credits(obj)}): nothing was credited. {CHECK_IN_STRIPE}"
        )
        return _refuse(event, StripeEventStatus.UNKNOWN_CHECKOUT, note, None, paid=paid, session_id=session_id)
    if checkout.attempt_id is None:
        # Only an earlier version made these rows: rebuilt from a webhook's own metadata, not from a click on Buy.
        note = (
            f"Checkout {session_id} was recorded from a webhook's metadata, not created by a click on Buy: "
            f"nothing was credited. {CHECK_IN_STRIPE}"
        )
        return _refuse(event, StripeEventStatus.UNKNOWN_CHECKOUT, note, checkout, paid=paid, session_id=session_id)
    expected = _money(checkout.amount, checkout.currency)
    if paid_currency != checkout.currency:
        note = f"Checkout {session_id} costs {expected} but was paid in {paid}: nothing was credited. {CHECK_IN_STRIPE}"
        return _refuse(event, StripeEventStatus.CURRENCY_MISMATCH, note, checkout, paid=paid, session_id=session_id)
    if paid_amount != checkout.amount:
        note = f"Checkout {session_id} costs {expected} but {paid} was paid: nothing was credited. {CHECK_IN_STRIPE}"
        return _refuse(event, StripeEventStatus.AMOUNT_MISMATCH, note, checkout, paid=paid, session_id=session_id)
    payment_status = obj.get("payment_status")
    if payment_status != "paid":
        if checkout.status == CheckoutStatus.PAID:
            note = "Already credited; this older copy of the session changes nothing."
            return Outcome(StripeEventStatus.PROCESSED, note, checkout)
        _note_payment(checkout, obj)
        if payment_status == "unpaid" and checkout.status == CheckoutStatus.PENDING:
            checkout.status = CheckoutStatus.PROCESSING
            checkout.save(update_fields=["status", "updated_at"])
        shown = repr(payment_status[:40]) if isinstance(payment_status, str) else "missing"
        note = (
            f"Checkout {session_id} is not paid (payment status {shown}): nothing was credited. "
            "A delayed payment method is credited when Stripe confirms it (async_payment_succeeded)."
        )
        return _refuse(event, StripeEventStatus.NOT_PAID, note, checkout, paid=paid, session_id=session_id)
    _note_payment(checkout, obj)
    return _credit(checkout, event)
