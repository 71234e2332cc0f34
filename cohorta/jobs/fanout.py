"""One job's work spread over items, each done by a short task of its own, with nobody waiting.

A survey run's respondents (surveys/runner.py) and a panel's members (panels/runner.py) work this way:
the job hands out the first items and returns (``HANDED_OFF``); each item's task claims it, does it,
and as it ends hands out the next while fewer than the parallelism are in flight; the last one finishes
the job; the reaper fails items whose worker died. What is the same for every such job lives here: the
items' states, handing out under the parent's row lock, failing an item once, closing the open ones,
finding the dead and the lost, the progress text. What an item is, what it costs and what is refunded
stay with each runner (``on_fail``)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

# The states an item goes through, as every fan-out model names them (a TextChoices with these values).
PENDING, QUEUED, RUNNING, DONE, FAILED, CANCELLED = "pending", "queued", "running", "done", "failed", "cancelled"
OPEN_STATES = (PENDING, QUEUED, RUNNING)
STATES = (PENDING, QUEUED, RUNNING, DONE, FAILED, CANCELLED)

Dispatch = Callable[[int], None]


def eta_text(seconds: float) -> str:
    if seconds < 60:
        return "less than a minute left"
    minutes = round(seconds / 60)
    return f"about {minutes} minute{'s' if minutes != 1 else ''} left"


def lost_after_seconds() -> float:
    """A task a dead worker had taken comes back after the broker's visibility timeout; one not started
    well after that is gone."""
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    return float(options.get("visibility_timeout", 3600)) + 300


@dataclass(frozen=True)
class Fanout:
    """The items of one kind of parent: ``item_model`` rows with ``state``, ``error``, ``finished_at`` and
    ``heartbeat_at`` fields and a foreign key ``parent_field`` to a ``parent_model`` row."""

    item_model: type[models.Model]
    parent_model: type[models.Model]
    parent_field: str
    parallelism: Callable[[], int]

    def items(self, parent) -> QuerySet:
        return self.item_model._default_manager.filter(**{self.parent_field: parent})

    def counts(self, parent) -> dict[str, int]:
        row = self.items(parent).aggregate(
            total=Count("pk"), **{state: Count("pk", filter=Q(state=state)) for state in STATES}
        )
        return {key: value or 0 for key, value in row.items()}

    def fail(self, item_pk, reason: str, *, from_states=(RUNNING,), on_fail: Callable[[], Any] | None = None) -> bool:
        """Fail the item if it is still in ``from_states``; ``on_fail`` (its refund) runs in the same
        transaction, once: of two callers only the one that moved it runs it."""
        with transaction.atomic():
            moved = self.item_model._default_manager.filter(pk=item_pk, state__in=from_states).update(
                state=FAILED, error=reason[:500], finished_at=timezone.now()
            )
            if moved and on_fail is not None:
                on_fail()
        return bool(moved)

    def close_open(self, parent, reason: str) -> int:
        """Cancel every item still open: a late result for one is discarded."""
        return (
            self.items(parent)
            .filter(state__in=OPEN_STATES)
            .update(state=CANCELLED, finished_at=timezone.now(), error=reason[:500])
        )

    def hand_out(self, parent, dispatch: Dispatch) -> list[int]:
        """Queue the next items while fewer than the parallelism are in flight. The parent's row is locked
        meanwhile, so two items finishing together do not both fill the same room."""
        parallel = max(1, self.parallelism())
        with transaction.atomic():
            self.parent_model._default_manager.select_for_update().filter(pk=parent.pk).first()
            in_flight = self.items(parent).filter(state__in=(QUEUED, RUNNING)).count()
            if in_flight >= parallel:
                return []
            ids = list(
                self.items(parent)
                .filter(state=PENDING)
                .order_by("position", "id")[: parallel - in_flight]
                .values_list("pk", flat=True)
            )
            self.items(parent).filter(pk__in=ids, state=PENDING).update(state=QUEUED, heartbeat_at=timezone.now())
            for item_id in ids:
                transaction.on_commit(partial(dispatch, item_id))
        return ids

    def dead(self, parent) -> QuerySet:
        """Running items whose worker stopped beating."""
        silent = timezone.now() - timedelta(seconds=settings.JOBS_STALE_AFTER_SECONDS)
        quiet = Q(heartbeat_at__lt=silent) | Q(heartbeat_at__isnull=True)
        return self.items(parent).filter(state=RUNNING).filter(quiet)

    def lost(self, parent) -> QuerySet:
        """Queued items whose task the broker lost (still queued well after it would have handed it back)."""
        return self.items(parent).filter(
            state=QUEUED, heartbeat_at__lt=timezone.now() - timedelta(seconds=lost_after_seconds())
        )
