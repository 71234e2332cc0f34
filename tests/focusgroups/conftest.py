"""Fixtures of the autonomous-mode tests: a funded researcher, and turn tasks run like a worker would."""

import pytest

from billing.services import credits_grant
from focusgroups.autonomous import turns as autonomous_turns


@pytest.fixture
def funded(owner):
    credits_grant(user=owner, amount=100, idempotency_key="test:fund")
    return owner


@pytest.fixture
def turns(monkeypatch):
    """Queue turn tasks instead of running them inline; ``drain()`` runs them like a worker would, at once
    (a countdown is recorded in ``drain.countdowns``, not waited for)."""
    queue, countdowns = [], []

    def enqueue(args, **options):
        queue.append(args)
        if options.get("countdown"):
            countdowns.append(options["countdown"])

    monkeypatch.setattr("focusgroups.tasks.autonomous_turn.apply_async", enqueue)

    def drain(limit=500):
        done = []
        while queue and len(done) < limit:
            run_id, turn = queue.pop(0)
            done.append(autonomous_turns.turn_run(run_id=run_id, turn=turn))
        return done

    drain.queue = queue
    drain.countdowns = countdowns
    return drain
