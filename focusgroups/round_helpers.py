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

import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

POOLED = bool(settings.DATABASES["default"].get("OPTIONS", {}).get("pool"))
# Without the pool each busy helper keeps a connection for its answer: 24 of them beside the worker's 32 threads
# stay under Postgres' default 100 connections with the web processes.
ROUND_HELPERS = 96 if POOLED else 24
HELPERS = ThreadPoolExecutor(max_workers=ROUND_HELPERS, thread_name_prefix="round-answer")

Item = TypeVar("Item")
Result = TypeVar("Result")


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
    helped = [HELPERS.submit(contextvars.copy_context().run, _on_helper, answer, item, crashed) for item in items[1:]]
    return [answer(items[0]), *(future.result() for future in helped)]
