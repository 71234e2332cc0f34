"""Shared fixtures for the Stripe tests: packs, Cohorta pointed at the fake Stripe, signed webhook posts."""

import uuid
from decimal import Decimal

import pytest

from billing.models import CheckoutAttempt, CheckoutSession, CreditPack
from billing.stripe_setup import stripe_setup
from tests.fakes.stripe_server import signed_event

WEBHOOK_SECRET = "whsec_test_0123456789abcdef"
WEBHOOK_URL = "/billing/stripe/webhook/"


@pytest.fixture
def packs(db) -> dict[str, CreditPack]:
    """The default packs. Created here rather than trusted from the data migration: a transactional
    test elsewhere in the run flushes the tables."""
    made = {}
    for name, credits, price, order in [
        ("Starter", 50, "49.00", 10),
        ("Pro", 220, "199.00", 20),
        ("Scale", 600, "499.00", 30),
    ]:
        made[name], _ = CreditPack.objects.get_or_create(
            name=name, defaults={"credits": credits, "price": Decimal(price), "currency": "usd", "sort_order": order}
        )
    return made


@pytest.fixture
def stripe_on(settings, fake_stripe):
    """Payments configured, the SDK pointed at the fake server, no SDK retries (faults reach the code)."""
    settings.STRIPE_SECRET_KEY = "sk_test_fakecohorta000000000000000000"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_fake"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = fake_stripe.base_url
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    settings.STRIPE_TIMEOUT_SECONDS = 2
    return fake_stripe


@pytest.fixture
def webhook_secret(stripe_on) -> str:
    """Webhooks received: the keys set and ``stripe_setup`` run, as the release step does (it reads the
    platform account from the fake Stripe once). Receiving an event calls no API."""
    stripe_setup()
    stripe_on.requests.clear()
    return WEBHOOK_SECRET


def post_event(client, event: dict, *, secret: str = WEBHOOK_SECRET, signature: str | None = None):
    body, header = signed_event(event, secret)
    return client.post(
        WEBHOOK_URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature or header
    )


def make_attempt(user, pack: CreditPack) -> CheckoutAttempt:
    """A click on Buy, with the pack's credits and price as they are now (as checkout_session_create makes it)."""
    return CheckoutAttempt.objects.create(
        id=uuid.uuid4(), user=user, pack=pack, credits=pack.credits, amount=pack.unit_amount, currency=pack.currency
    )


def make_checkout(user, pack: CreditPack, *, stripe_id: str, status: str = "pending") -> CheckoutSession:
    """A Checkout Session as checkout_session_create records it: from an attempt, with its snapshot."""
    attempt = make_attempt(user, pack)
    return CheckoutSession.objects.create(
        stripe_id=stripe_id,
        user=user,
        user_email=user.email,
        attempt=attempt,
        pack=pack,
        pack_name=pack.name,
        credits=attempt.credits,
        amount=attempt.amount,
        currency=attempt.currency,
        status=status,
    )
