"""Job kinds: each maps to a handler that does the work inside a worker.

A handler receives the Job and a ``JobContext`` and returns a JSON-able
result. It reports progress through the context, which also raises
``JobCancelled`` when the user cancelled or was disabled.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[..., Any]


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


_KINDS: dict[str, JobKind] = {}


def job_kind(
    name: str, *, label: str, queue: str = "llm", on_abandon: Handler | None = None
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _KINDS[name] = JobKind(name=name, label=label, handler=handler, queue=queue, on_abandon=on_abandon)
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
