"""Job kinds: each maps to a handler that does the work inside a worker.

A handler receives the Job and a ``JobContext`` and returns a JSON-able
result. It reports progress through the context, which also raises
``JobCancelled`` when the user cancelled or was disabled.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[..., Any]

# What a handler returns when it has handed its work to tasks of its own: the job stays running without
# keeping a worker thread waiting for them, and the last of those tasks finishes it
# (``cohorta.jobs.services.job_finish``). Such a kind gives ``watch`` for the reaper.
HANDED_OFF = object()


@dataclass(frozen=True)
class JobKind:
    name: str
    label: str
    handler: Handler
    # Which Celery queue runs it: "llm" (I/O-bound, threads pool) or "default".
    queue: str = "llm"
    # Called when the job is interrupted (its worker died) or fails outside the
    # handler, to give back what it reserved (credits…). Must be idempotent.
    on_abandon: Handler | None = None
    # For a kind whose handler returns HANDED_OFF. Nobody beats for such a job while its tasks wait in
    # the broker, so when its heartbeat is stale the reaper calls ``watch(job)`` instead of marking it
    # interrupted: it fails the parts whose worker died, hands out what nobody else will, finishes the job
    # when nothing is left, and returns True while the job goes on (or is finished), which counts as a
    # heartbeat; False lets the reaper interrupt it. Cancelling such a running job stops it at once
    # (there is no handler to notice the request), giving back what it reserved through on_abandon.
    watch: Handler | None = None


_KINDS: dict[str, JobKind] = {}


def job_kind(
    name: str,
    *,
    label: str,
    queue: str = "llm",
    on_abandon: Handler | None = None,
    watch: Handler | None = None,
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _KINDS[name] = JobKind(name=name, label=label, handler=handler, queue=queue, on_abandon=on_abandon, watch=watch)
        return handler

    return register


def get_kind(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise LookupError(f"Unknown job kind {name!r}") from None


def kind_names() -> list[str]:
    return sorted(_KINDS)


def kind_label(name: str) -> str:
    kind = _KINDS.get(name)
    return kind.label if kind else name.replace("_", " ").capitalize()
