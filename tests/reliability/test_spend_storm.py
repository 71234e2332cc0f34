"""2,000 spends racing on Postgres: several users, 32 threads, mixed amounts, groups of requests
carrying one idempotency key, and more demand than some users can pay.

Invariants: each user's ledger adds up to ``credit_balance`` row by row; no balance is ever negative;
a key is charged at most once and every request with it gets that one row; a refusal is a 402 and
only happens when the balance really was too low (balances only fall here, so the final balance is
below every refused amount); users with enough credits are never refused."""

import random
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.db.models import Sum

from billing.models import CreditTransaction
from billing.selectors import ledger_is_consistent
from billing.services import credits_grant, credits_spend
from cohorta.accounts.models import User
from cohorta.errors import InsufficientCredits
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.service,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

THREADS = 32
SPENDS = 2000
# (grant, requests): some users can pay for everything, some for about half, one for very little.
USERS = [(4000, 250), (4000, 250), (600, 250), (600, 250), (300, 250), (300, 250), (40, 250), (0, 250)]


def _plan(users: list[User], rng: random.Random) -> list[tuple[int, int, str]]:
    """(user id, amount, key) per request. About a fifth of the requests share their key with 2-5 others
    (same user and amount, as a client retrying would send); they sit next to each other in the plan, so
    neighbouring threads send them at the same moment."""
    plan: list[tuple[int, int, str]] = []
    for user, (_, count) in zip(users, USERS, strict=True):
        made = 0
        while made < count:
            amount = rng.randint(1, 5)
            key = f"storm:{user.pk}:{made}"
            copies = rng.randint(2, 5) if rng.random() < 0.07 else 1
            copies = min(copies, count - made)
            plan.extend([(user.pk, amount, key)] * copies)
            made += copies
    # Interleave users, keep each key group together.
    groups: dict[str, list] = defaultdict(list)
    for item in plan:
        groups[item[2]].append(item)
    keys = list(groups)
    rng.shuffle(keys)
    return [item for key in keys for item in groups[key]]


def test_two_thousand_racing_spends_keep_every_ledger_exact():
    rng = random.Random(9)
    users = [UserFactory() for _ in USERS]
    assert not CreditTransaction.objects.filter(user__in=users).exists()  # factory users start at 0
    for user, (grant, _) in zip(users, USERS, strict=True):
        if grant:
            credits_grant(user=user, amount=grant, idempotency_key=f"storm-fund:{user.pk}")
    plan = _plan(users, rng)
    assert len(plan) == SPENDS

    # Thread t takes requests t, t+32, t+64…: consecutive requests (a key group) run at the same time.
    chunks = [list(range(start, SPENDS, THREADS)) for start in range(THREADS)]

    def run_chunk(indexes: list[int]) -> list[tuple[int, object]]:
        try:
            mine = {u.pk: User.objects.get(pk=u.pk) for u in users}
            out = []
            for i in indexes:
                user_id, amount, key = plan[i]
                try:
                    out.append((i, credits_spend(user=mine[user_id], amount=amount, idempotency_key=key)))
                except InsufficientCredits as exc:
                    out.append((i, exc))
            return out
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        outcomes = dict(item for chunk in pool.map(run_chunk, chunks) for item in chunk)
    assert len(outcomes) == SPENDS  # every request answered: a row or a 402, nothing else raised

    by_key: dict[str, list[object]] = defaultdict(list)
    amount_of = {key: amount for _, amount, key in plan}
    for i, outcome in outcomes.items():
        by_key[plan[i][2]].append(outcome)
    rows_by_key = defaultdict(list)
    for row in CreditTransaction.objects.filter(idempotency_key__startswith="storm:"):
        rows_by_key[row.idempotency_key].append(row)
    replayed = 0
    for key, results in by_key.items():
        rows = rows_by_key[key]
        assert len(rows) <= 1, key
        charged = [r for r in results if isinstance(r, CreditTransaction)]
        if rows:
            # Every request that got a row got the one row; the key moved the balance once.
            assert {r.pk for r in charged} == {rows[0].pk}, key
            assert -rows[0].delta == amount_of[key]
            replayed += len(charged) - 1
        else:
            assert not charged, key
    assert replayed > 50  # the key groups really raced and were answered with the first row

    refused_amounts: dict[int, list[int]] = defaultdict(list)
    for i, outcome in outcomes.items():
        if isinstance(outcome, InsufficientCredits):
            assert outcome.status_code == 402 and outcome.extra["required"] == plan[i][1]
            refused_amounts[plan[i][0]].append(plan[i][1])

    for user, (grant, _) in zip(users, USERS, strict=True):
        user.refresh_from_db()
        ledger = CreditTransaction.objects.filter(user=user)
        assert (ledger.aggregate(total=Sum("delta"))["total"] or 0) == user.credit_balance
        assert ledger_is_consistent(user=user)  # each balance_after is the running total, in lock order
        assert user.credit_balance >= 0 and not ledger.filter(balance_after__lt=0).exists()
        spent = -(ledger.filter(kind="spend").aggregate(total=Sum("delta"))["total"] or 0)
        assert grant - spent == user.credit_balance
        demand = sum(amount for _, amount, _ in {p for p in plan if p[0] == user.pk})
        if demand <= grant:
            assert not refused_amounts[user.pk], "refused although the user could pay for everything"
        else:
            # Refusals happened, and each was real: the balance only falls, so it ended below the amount.
            assert refused_amounts[user.pk]
            assert user.credit_balance < min(refused_amounts[user.pk])
    total_refused = sum(len(v) for v in refused_amounts.values())
    assert total_refused > 200  # the plan really overdraws (two users have ~nothing)
