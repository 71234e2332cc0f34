"""The checkout-attempt snapshot migration, run for real: attempts made before it get their pack's terms."""

import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing.models import CheckoutAttempt

BEFORE = [("billing", "0003_default_credit_packs")]
AFTER = [("billing", "0005_checkout_attempt_snapshot_required")]


@pytest.mark.django_db(transaction=True)
def test_existing_attempts_are_backfilled_from_their_pack(owner):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    old_pack, old_attempt = old.get_model("billing", "CreditPack"), old.get_model("billing", "CheckoutAttempt")
    usd = old_pack.objects.create(name="Pro", credits=220, price=Decimal("199.00"), currency="usd")
    yen = old_pack.objects.create(name="Yen", credits=50, price=Decimal("7500"), currency="jpy")
    made = [old_attempt.objects.create(id=uuid.uuid4(), user_id=owner.pk, pack_id=pack.pk).pk for pack in [usd, yen]]

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)

    snapshots = {a.pk: (a.credits, a.amount, a.currency) for a in CheckoutAttempt.objects.filter(pk__in=made)}
    assert sorted(snapshots.values()) == [(50, 7500, "jpy"), (220, 19900, "usd")]
    # Back to every app's latest migration, so the next test finds the tables it expects: going back in
    # billing also unapplied the other apps' migrations that depend on it (a conformity check's credits).
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
