"""Starting a purchase: the user's Stripe Customer and a Checkout Session for one pack.

Nothing here grants credits. Credits arrive only through the signed webhook
(``billing.stripe_webhooks``): the browser coming back to the success URL proves nothing.

Retries are safe at every level. The Customer is created with the key ``customer:<user id>``
and stored as dj-stripe's ``Customer`` with the user as its subscriber; the Checkout Session
with the key of the ``CheckoutAttempt`` (one per click), so the SDK's own retries, a double
submit and a "Try again" after a provider error all get the same session from Stripe instead
of a second one.
"""

import logging
import uuid

import stripe
from django.conf import settings
from django.db.models import F
from django.utils import timezone
from djstripe.models import Customer
from djstripe.settings import djstripe_settings
from djstripe.utils import convert_tstamp
from stripe.params import CustomerCreateParams
from stripe.params.checkout import SessionCreateParams, SessionCreateParamsLineItem

from billing.models import CheckoutAttempt, CheckoutSession, CreditPack
from cohorta.errors import ApplicationError

logger = logging.getLogger(__name__)

SUCCESS_QUERY = "?checkout=success&session_id={CHECKOUT_SESSION_ID}"
CANCEL_QUERY = "?checkout=cancelled"


class PaymentsNotConfigured(ApplicationError):
    status_code = 503
    code = "payments_not_configured"

    def __init__(self) -> None:
        super().__init__("Payments are not configured; ask an admin to grant credits.")


class PaymentProviderError(ApplicationError):
    status_code = 503
    code = "payment_provider_error"


def payments_enabled() -> bool:
    """Selling needs both secrets: without the webhook secret a paid checkout could never be credited."""
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET)


def stripe_client() -> stripe.StripeClient:
    """A client of our own: nothing global in the ``stripe`` module is set or changed."""
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS),
    )


def _customer_params(user) -> CustomerCreateParams:
    # dj-stripe links a Customer to its subscriber through this metadata key when it syncs from Stripe.
    metadata = {"user_id": str(user.pk), djstripe_settings.SUBSCRIBER_CUSTOMER_KEY: str(user.pk)}
    return {"email": user.email, "name": user.name or user.email, "metadata": metadata}


def _customer_record(*, user, customer: stripe.Customer) -> Customer:
    data = customer.to_dict()
    row, _ = Customer.objects.update_or_create(
        id=customer.id,
        defaults={
            "subscriber": user,
            "livemode": bool(data.get("livemode")),
            "created": convert_tstamp(data.get("created")),
            "email": user.email,
            "metadata": data.get("metadata") or {},
            "stripe_data": data,
        },
    )
    return row


def stripe_customer_for(*, user) -> Customer | None:
    """The user's current dj-stripe Customer in this mode (test or live), if any."""
    return (
        Customer.objects.filter(subscriber=user, livemode=settings.STRIPE_LIVE_MODE, date_purged__isnull=True)
        .order_by("-djstripe_id")
        .first()
    )


def stripe_customer_get_or_create(*, user, client: stripe.StripeClient) -> Customer:
    existing = stripe_customer_for(user=user)
    if existing is not None:
        return existing
    # Two first clicks racing get the same customer from Stripe (same key) and record one row.
    customer = client.v1.customers.create(
        params=_customer_params(user), options={"idempotency_key": f"customer:{user.pk}"}
    )
    return _customer_record(user=user, customer=customer)


def _stripe_customer_replace(*, user, client: stripe.StripeClient, missing: Customer) -> Customer:
    logger.warning(
        "Stripe customer %s of user %s does not exist in this account; creating another", missing.id, user.pk
    )
    customer = client.v1.customers.create(
        params=_customer_params(user), options={"idempotency_key": f"customer:{user.pk}:replaces:{missing.id}"}
    )
    # The old record stays for the history of its checkouts, marked gone.
    Customer.objects.filter(pk=missing.pk).update(subscriber=None, date_purged=timezone.now())
    return _customer_record(user=user, customer=customer)


def _attempt_for(*, user, pack: CreditPack, attempt_id: uuid.UUID | None) -> CheckoutAttempt:
    # The pack's credits and price now, as the buyer saw them: the checkout sells exactly this.
    attempt, _ = CheckoutAttempt.objects.get_or_create(
        id=attempt_id or uuid.uuid4(),
        defaults={
            "user_id": user.pk,
            "pack": pack,
            "credits": pack.credits,
            "amount": pack.unit_amount,
            "currency": pack.currency,
        },
    )
    if attempt.user_id != user.pk or attempt.pack_id != pack.pk:
        # Reusing a key for different parameters is an error at Stripe too; say it here, clearly.
        raise ApplicationError(
            "This checkout form was already used for another purchase. Reload the page and try again.",
            code="checkout_attempt_mismatch",
            status_code=409,
        )
    return attempt


def _line_item(pack: CreditPack, attempt: CheckoutAttempt) -> SessionCreateParamsLineItem:
    if pack.stripe_price_id:
        return {"price": pack.stripe_price_id, "quantity": 1}
    return {
        "price_data": {
            "currency": attempt.currency,
            "unit_amount": attempt.amount,
            "product_data": {"name": f"Cohorta {pack.name}: {attempt.credits} credits"},
        },
        "quantity": 1,
    }


def _charged(pack: CreditPack, attempt: CheckoutAttempt, session: dict) -> tuple[int, str]:
    """What Stripe will charge for this session: the price we sent, or the pack's Stripe Price as
    Stripe told us in its answer to our own call. The webhook credits only this amount paid."""
    if not pack.stripe_price_id:
        return attempt.amount, attempt.currency
    amount, currency = session.get("amount_total"), session.get("currency")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0 or not isinstance(currency, str):
        logger.error(
            "Stripe price %s of pack %s gave session %s no amount", pack.stripe_price_id, pack.pk, session.get("id")
        )
        raise PaymentProviderError(
            "The payment provider did not say what this pack costs. Nothing was charged; please try again later."
        )
    return amount, currency.lower()


def checkout_session_create(
    *, user, pack_id: int, attempt_id: uuid.UUID | None = None, return_url: str
) -> CheckoutSession:
    """A Stripe Checkout Session for one pack, recorded as pending.

    ``return_url`` is the Billing page's absolute URL; Stripe sends the buyer back there.
    Raises ``PaymentsNotConfigured`` / ``PaymentProviderError`` (503) and records nothing as paid.
    """
    if not payments_enabled():
        raise PaymentsNotConfigured
    pack = CreditPack.objects.filter(pk=pack_id, active=True).first()
    if pack is None:
        raise ApplicationError("This credit pack is not on sale.", code="pack_not_found", status_code=404)
    attempt = _attempt_for(user=user, pack=pack, attempt_id=attempt_id)
    done = CheckoutSession.objects.filter(attempt=attempt).first()
    if done is not None:
        return done  # a double submit: the session this click already opened
    if not attempt.matches_pack(pack):
        # A retry of an old click after the pack changed: the buyer agreed to the old price, not this one.
        raise ApplicationError(
            f"The {pack.name} pack changed since this page was opened (now {pack.credits} credits for "
            f"{pack.price} {pack.currency.upper()}). Nothing was charged; reload the page and buy again.",
            code="pack_changed",
            status_code=409,
        )

    CheckoutAttempt.objects.filter(pk=attempt.pk).update(tries=F("tries") + 1)
    # For people reading the Stripe dashboard only: the webhook never reads it back.
    metadata = {
        "user_id": str(user.pk),
        "pack_id": str(pack.pk),
        "credits": str(attempt.credits),
        "attempt_id": str(attempt.pk),
    }
    client = stripe_client()
    params: SessionCreateParams = {
        "mode": "payment",
        "client_reference_id": str(user.pk),
        "line_items": [_line_item(pack, attempt)],
        "metadata": metadata,
        # Copied onto the charge, so refunds can be traced without the session.
        "payment_intent_data": {"metadata": metadata},
        "success_url": return_url + SUCCESS_QUERY,
        "cancel_url": return_url + CANCEL_QUERY,
    }
    # No database transaction is open across these calls: a slow provider must not hold locks.
    try:
        customer = stripe_customer_get_or_create(user=user, client=client)
        try:
            session = client.v1.checkout.sessions.create(
                params={**params, "customer": customer.id},
                options={"idempotency_key": attempt.idempotency_key},
            ).to_dict()
        except stripe.InvalidRequestError as exc:
            if exc.code != "resource_missing" or customer.id not in str(exc):
                raise
            # The stored customer is not in this Stripe account (the keys moved from test to live, or to
            # another account): every purchase would fail. Replace it once; the new keys stay retry-safe.
            customer = _stripe_customer_replace(user=user, client=client, missing=customer)
            session = client.v1.checkout.sessions.create(
                params={**params, "customer": customer.id},
                options={"idempotency_key": f"{attempt.idempotency_key}:{customer.id}"},
            ).to_dict()
    except stripe.StripeError as exc:
        reason = f"{type(exc).__name__}: {exc.user_message or str(exc) or 'no message'}"
        CheckoutAttempt.objects.filter(pk=attempt.pk).update(last_error=reason[:2000])
        logger.warning("Stripe could not start checkout for user %s (attempt %s): %s", user.pk, attempt.pk, reason)
        raise PaymentProviderError(
            "The payment provider could not start checkout. Nothing was charged; please try again in a minute.",
            extra={"attempt_id": str(attempt.pk)},
        ) from None

    amount, currency = _charged(pack, attempt, session)
    row, _ = CheckoutSession.objects.get_or_create(
        stripe_id=session["id"],
        defaults={
            "user_id": user.pk,
            "user_email": user.email,
            "attempt": attempt,
            "pack": pack,
            "pack_name": pack.name,
            "credits": attempt.credits,
            "amount": amount,
            "currency": currency,
            "url": session.get("url") or "",
        },
    )
    return row
