"""Threads that answer the rest of a round, shared by every round in the process: an autonomous run's guide
question round the table, and a moderated question to several personas.

A round is one task: its first answer runs in the task's own thread and the others here, all at once, so the
answers leave for the provider together (one Celery task per answer made the last of eight start ~100 ms after
the first, each waiting for the broker). Bounded, because each answer needs a database connection for its
bookkeeping (quota, usage, the replay cache): fifty sessions going round a table of four at once must not open
two hundred. With psycopg's pool (DB_POOL) an answer holds a connection only around its call (the gateway hands
it back while the provider answers) and the pool bounds them, so many more answers can wait on the provider at
once. Past the bound a round's answers wait their turn.

Each helper runs its answer in a copy of the calling thread's context (contextvars), so what the round set up
for all its answers goes with them: the run their calls belong to and the round's one budget check
(conversation.answering_together)."""

import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from django.conf import settings
from django.db import connection

from llm.gateway import before_send

logger = logging.getLogger(__name__)

POOLED = bool(settings.DATABASES["default"].get("OPTIONS", {}).get("pool"))
# Without the pool each busy helper keeps a connection for its answer: 24 of them beside the worker's 32 threads
# stay under Postgres' default 100 connections with the web processes.
ROUND_HELPERS = 96 if POOLED else 24
HELPERS = ThreadPoolExecutor(max_workers=ROUND_HELPERS, thread_name_prefix="round-answer")

Item = TypeVar("Item")
Result = TypeVar("Result")


class _StartingGate:
    """A round's answers get ready for the provider one at a time, each letting the next in as its request leaves
    (or as it ends without one): the claim, the prompt and the call's bookkeeping are a few milliseconds of Python
    each, and eight threads doing them at once under one GIL sent the first request only after nearly all eight
    were ready. In turn, the first leaves after one answer's preparation and the last no later than before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        if not self._lock.acquire(blocking=False):
            # Waiting: a pooled connection this thread holds (the round's task thread read the room with it) serves
            # others meanwhile, or rounds starting at once could hold the whole pool while their turn-takers wait.
            if POOLED and not connection.in_atomic_block:
                connection.close()
            self._lock.acquire()
        released = False

        def let_next_in() -> None:
            nonlocal released
            if not released:  # once: a retry of the call sends again
                released = True
                self._lock.release()

        try:
            with before_send(let_next_in):
                yield
        finally:
            let_next_in()


def _in_turn(gate: _StartingGate, answer: Callable[[Item], Result], item: Item) -> Result:
    with gate.turn():
        return answer(item)


def _on_helper(answer: Callable[[Item], Result], item: Item, crashed: Callable[[Item], Result]) -> Result:
    try:
        return answer(item)
    except Exception:
        logger.exception("A round's answer for %r crashed", item)
        return crashed(item)
    finally:
        connection.close()  # the helper's own connection (or back to the pool): none is left open between rounds


def answer_together(
    answer: Callable[[Item], Result], items: list[Item], *, crashed: Callable[[Item], Result]
) -> list[Result]:
    """``answer(item)`` for every item at the same time: the first in this thread, the rest on the helpers.
    Results in the items' order. A helper's item whose answer raised gets ``crashed(item)`` (logged), so one crash
    never loses the others' answers; the first item's exception is the caller's, as it would be without a round."""
    if not items:
        return []
    gate = _StartingGate()
    gated = partial(_in_turn, gate, answer)
    helped = [HELPERS.submit(contextvars.copy_context().run, _on_helper, gated, item, crashed) for item in items[1:]]
    return [gated(items[0]), *(future.result() for future in helped)]
