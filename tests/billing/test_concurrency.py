"""Spends racing on real Postgres: the balance never goes below zero, no update is
lost and an idempotency key spends once however many requests carry it."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from billing import selectors
from billing.models import CreditTransaction
from billing.services import credits_grant, credits_refund, credits_spend
from cohorta.accounts.models import User
from cohorta.errors import ApplicationError, InsufficientCredits
from tests.factories import UserFactory

pytestmark = [pytest.mark.service, pytest.mark.django_db(transaction=True)]

THREADS = 32


def _in_threads(count: int, work, *, user) -> list:
    """Run ``work(me, i)`` for i in range(count) over THREADS threads, ``me`` being the thread's own
    copy of ``user``. Each thread closes its database connection when done."""
    chunks = [range(start, count, THREADS) for start in range(THREADS)]

    def run_chunk(indexes) -> list:
        try:
            me = User.objects.get(pk=user.pk)
            return [work(me, i) for i in indexes]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return [outcome for chunk in pool.map(run_chunk, chunks) for outcome in chunk]


def _outcome(call):
    try:
        return call()
    except (InsufficientCredits, ApplicationError) as exc:
        return exc


def test_two_thousand_spends_against_five_hundred_credits():
    user = UserFactory()
    credits_grant(user=user, amount=500, idempotency_key="fund")

    def spend(me, i: int):
        return _outcome(lambda: credits_spend(user=me, amount=1, idempotency_key=f"spend:{i}"))

    outcomes = _in_threads(2000, spend, user=user)

    spent = [o for o in outcomes if isinstance(o, CreditTransaction)]
    refused = [o for o in outcomes if isinstance(o, InsufficientCredits)]
    assert (len(spent), len(refused)) == (500, 1500)
    assert selectors.credits_balance(user=user) == 0
    assert sorted(tx.balance_after for tx in spent) == list(range(500))  # every balance seen exactly once
    assert CreditTransaction.objects.filter(user=user, kind="spend").count() == 500
    assert selectors.ledger_is_consistent(user=user)


def test_one_key_from_ten_threads_spends_once():
    user = UserFactory()
    credits_grant(user=user, amount=100, idempotency_key="fund")
    start = threading.Barrier(10)

    def spend() -> int:
        try:
            me = User.objects.get(pk=user.pk)
            start.wait(timeout=10)
            return credits_spend(user=me, amount=7, idempotency_key="session-run:1").pk
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=10) as pool:
        ids = [future.result() for future in [pool.submit(spend) for _ in range(10)]]

    assert len(set(ids)) == 1
    assert CreditTransaction.objects.filter(kind="spend").count() == 1
    assert selectors.credits_balance(user=user) == 93
    assert selectors.ledger_is_consistent(user=user)


def test_concurrent_refunds_never_exceed_the_spend():
    user = UserFactory()
    credits_grant(user=user, amount=10, idempotency_key="fund")
    spend = credits_spend(user=user, amount=5, idempotency_key="spend")

    def refund(me, i: int):
        mine = CreditTransaction.objects.get(pk=spend.pk)
        return _outcome(lambda: credits_refund(spend=mine, amount=1, idempotency_key=f"refund:{i}"))

    outcomes = _in_threads(40, refund, user=user)

    assert sum(isinstance(o, CreditTransaction) for o in outcomes) == 5
    assert all(o.code == "refund_exceeds_spend" for o in outcomes if isinstance(o, ApplicationError))
    assert selectors.credits_balance(user=user) == 10
    assert selectors.ledger_is_consistent(user=user)
