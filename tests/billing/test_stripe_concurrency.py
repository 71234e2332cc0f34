"""Webhook deliveries racing on real Postgres, through dj-stripe's endpoint: every paid checkout is
credited exactly once, and the view answers every delivery (never a 500), however many copies arrive
at once and in whatever order."""

import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.db.models import Sum
from django.test import Client
from djstripe.models import Event, Session, WebhookEventTrigger

from billing import selectors
from billing.models import CheckoutAttempt, CheckoutSession, CreditTransaction, StripeEventOutcome, StripeObjectMirror
from billing.services import credits_grant
from cohorta.accounts.models import User
from tests.billing.conftest import WEBHOOK_URL, make_checkout
from tests.fakes.stripe_server import charge_object, checkout_session_object, make_event, signed_event

pytestmark = [pytest.mark.service, pytest.mark.django_db(transaction=True)]


def _session_obj(checkout, *, payment_status="paid") -> dict:
    return checkout_session_object(
        checkout.stripe_id,
        payment_status=payment_status,
        metadata={"user_id": str(checkout.user_id), "credits": str(checkout.credits)},
        amount_total=checkout.amount,
        payment_intent=f"pi_{checkout.stripe_id}",
    )


def _deliver_all(deliveries: list[tuple[str, str]], *, threads: int, start_together: bool = False) -> list[int]:
    """POST every (body, signature) through Django's test client from ``threads`` threads; the statuses."""
    barrier = threading.Barrier(threads) if start_together else None
    chunks = [deliveries[i::threads] for i in range(threads)]

    def run(chunk) -> list[int]:
        client = Client()
        try:
            if barrier is not None:
                barrier.wait(timeout=30)
            return [
                client.post(
                    WEBHOOK_URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=sig
                ).status_code
                for body, sig in chunk
            ]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return [status for statuses in pool.map(run, chunks) for status in statuses]


def test_one_event_delivered_ten_times_at_once_credits_once(owner, packs, webhook_secret):
    checkout = make_checkout(owner, packs["Pro"], stripe_id="cs_test_race")
    delivery = signed_event(make_event("checkout.session.completed", _session_obj(checkout)), webhook_secret)

    statuses = _deliver_all([delivery] * 10, threads=10, start_together=True)

    assert statuses == [200] * 10
    assert CreditTransaction.objects.filter(kind="purchase").count() == 1
    assert selectors.credits_balance(user=owner) == 220
    # dj-stripe logged ten deliveries of one stored event, and billing acted on it once.
    assert StripeEventOutcome.objects.get().received_count == 10
    assert Event.objects.count() == 1 and WebhookEventTrigger.objects.filter(processed=True).count() == 10
    assert selectors.ledger_is_consistent(user=owner)


def test_completed_and_async_succeeded_racing_credit_once(owner, packs, webhook_secret):
    checkout = make_checkout(owner, packs["Scale"], stripe_id="cs_test_two_kinds")
    completed = signed_event(make_event("checkout.session.completed", _session_obj(checkout)), webhook_secret)
    succeeded = signed_event(
        make_event("checkout.session.async_payment_succeeded", _session_obj(checkout)), webhook_secret
    )

    statuses = _deliver_all([completed, succeeded] * 6, threads=12, start_together=True)

    assert statuses == [200] * 12
    assert CreditTransaction.objects.filter(kind="purchase").count() == 1
    assert selectors.credits_balance(user=owner) == 600
    assert CheckoutSession.objects.get().status == "paid"


def test_a_refund_delivered_ten_times_at_once_claws_back_once(owner, packs, webhook_secret):
    checkout = make_checkout(owner, packs["Pro"], stripe_id="cs_test_refund_race")
    _deliver_all(
        [signed_event(make_event("checkout.session.completed", _session_obj(checkout)), webhook_secret)], threads=1
    )
    charge = charge_object("ch_race", payment_intent=f"pi_{checkout.stripe_id}", amount=19900, amount_refunded=9950)
    refund = signed_event(make_event("charge.refunded", charge), webhook_secret)

    statuses = _deliver_all([refund] * 10, threads=10, start_together=True)

    assert statuses == [200] * 10
    assert list(CreditTransaction.objects.filter(kind="adjustment").values_list("delta", flat=True)) == [-110]
    assert selectors.credits_balance(user=owner) == 110
    assert selectors.ledger_is_consistent(user=owner)


def test_reliability_ten_thousand_deliveries_credit_each_paid_session_exactly_once(packs, webhook_secret):
    """The figure: 1,000 paid checkouts (250 buyers), each delivered 10 times (half as one
    ``completed`` event, half as ``completed`` unpaid + ``async_payment_succeeded``), shuffled,
    from 16 threads. Expected: exactly the packs of the 1,000 sessions credited, and the ledger
    adds up to every balance."""
    rng = random.Random(2026)
    users = User.objects.bulk_create([User(email=f"buyer{i}@example.com", name=f"Buyer {i}") for i in range(250)])
    for user in users:  # some buyers already had credits: balances must end at start + purchases
        credits_grant(user=user, amount=7, idempotency_key=f"start:{user.pk}")
    pack_list = list(packs.values())
    attempts = CheckoutAttempt.objects.bulk_create(
        [
            CheckoutAttempt(
                id=uuid.UUID(int=i + 1),
                user=users[i % len(users)],
                pack=pack_list[i % 3],
                credits=pack_list[i % 3].credits,
                amount=pack_list[i % 3].unit_amount,
                currency="usd",
            )
            for i in range(1000)
        ]
    )
    sessions = CheckoutSession.objects.bulk_create(
        [
            CheckoutSession(
                stripe_id=f"cs_test_rel_{i:04d}",
                user=attempt.user,
                user_email=attempt.user.email,
                attempt=attempt,
                pack=attempt.pack,
                pack_name=attempt.pack.name,
                credits=attempt.credits,
                amount=attempt.amount,
                currency=attempt.currency,
            )
            for i, attempt in enumerate(attempts)
        ]
    )
    deliveries = []
    for i, checkout in enumerate(sessions):
        if i % 2 == 0:
            paid = signed_event(make_event("checkout.session.completed", _session_obj(checkout)), webhook_secret)
            deliveries += [paid] * 10
        else:
            unpaid = make_event("checkout.session.completed", _session_obj(checkout, payment_status="unpaid"))
            succeeded = make_event("checkout.session.async_payment_succeeded", _session_obj(checkout))
            deliveries += [signed_event(unpaid, webhook_secret)] * 4 + [signed_event(succeeded, webhook_secret)] * 6
    rng.shuffle(deliveries)
    assert len(deliveries) == 10_000

    started = time.monotonic()
    statuses = _deliver_all(deliveries, threads=16)
    elapsed = time.monotonic() - started

    assert Counter(statuses) == {200: 10_000}
    expected = sum(s.credits for s in sessions)
    purchases = CreditTransaction.objects.filter(kind="purchase")
    assert purchases.count() == 1000
    assert purchases.aggregate(total=Sum("delta"))["total"] == expected
    assert set(purchases.values_list("reference", flat=True)) == {f"checkout:{s.stripe_id}" for s in sessions}
    assert CheckoutSession.objects.exclude(status="paid").count() == 0
    assert Event.objects.count() == 1500 and StripeEventOutcome.objects.count() == 1500
    assert WebhookEventTrigger.objects.filter(valid=True, processed=True, exception="").count() == 10_000
    # An "unpaid" completed event is refused as not paid, or, when it arrives after the payment, changes nothing.
    assert StripeEventOutcome.objects.exclude(status="processed").exclude(status="not_paid").count() == 0
    assert set(StripeEventOutcome.objects.filter(status="not_paid").values_list("type", flat=True)) <= {
        "checkout.session.completed"
    }
    balances = dict(User.objects.filter(pk__in=[u.pk for u in users]).values_list("pk", "credit_balance"))
    assert sum(balances.values()) == expected + 7 * len(users)
    ledger = dict(
        CreditTransaction.objects.filter(user__in=users)
        .values("user")
        .annotate(total=Sum("delta"))
        .values_list("user", "total")
    )
    assert ledger == balances
    assert all(selectors.ledger_is_consistent(user=u) for u in users)
    # Each session was also copied into dj-stripe's tables for the admin, after its events and apart from them.
    assert Session.objects.count() == 1000 and not StripeObjectMirror.objects.exclude(error="").exists()
    print(f"\n10,000 webhook deliveries, 16 threads: {elapsed:.1f} s ({10_000 / elapsed:.0f}/s); {expected} credits")
