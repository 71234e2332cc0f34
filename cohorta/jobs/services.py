"""Writes for jobs: creation, dispatch within per-user limits, transitions,
progress, cancellation, retry, reaping and running a job inside a worker."""

import logging
import threading
from datetime import timedelta
from functools import partial
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models, transaction
from django.utils import timezone

from cohorta.jobs import events, tasks
from cohorta.jobs.errors import IllegalJobTransition, JobCancelled, JobFailure
from cohorta.jobs.models import ACTIVE_STATES, SLOT_STATES, TERMINAL_STATES, Job, JobState, sources_of
from cohorta.jobs.registry import HANDED_OFF, get_kind
from cohorta.jobs.signals import job_ended
from cohorta.secrets import scrub

logger = logging.getLogger(__name__)


def _publish_on_commit(job_id) -> None:
    transaction.on_commit(lambda: events.publish_job_update(job_id))


def _announce_end(job_id, kind: str, state: str) -> None:
    for receiver, outcome in job_ended.send_robust(sender=Job, job_id=job_id, kind=kind, state=state):
        if isinstance(outcome, Exception):
            logger.error("A receiver of job_ended (%s) failed for job %s", receiver, job_id, exc_info=outcome)


def job_transition(*, job: Job, to: str, **fields: Any) -> Job:
    """Move a job to ``to`` with one conditional UPDATE, or raise.

    The UPDATE only matches rows still in a state that may lead to ``to``,
    so two workers racing on one job cannot both win, and an illegal move
    leaves the row untouched.
    """
    now = timezone.now()
    stamps: dict[str, Any] = {}
    if to == JobState.QUEUED:
        stamps["queued_at"] = now
    elif to == JobState.RUNNING:
        stamps.update(started_at=now, heartbeat_at=now)
    elif to in (JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED):
        stamps["finished_at"] = now
    values = {**stamps, **fields, "state": to, "updated_at": now}
    with transaction.atomic():
        updated = Job.objects.filter(pk=job.pk, state__in=sources_of(to)).update(**values)
        if updated != 1:
            current = Job.objects.filter(pk=job.pk).values_list("state", flat=True).first()
            raise IllegalJobTransition(job.pk, current or "missing", to)
        _publish_on_commit(job.pk)
        if to in TERMINAL_STATES:
            transaction.on_commit(partial(_announce_end, job.pk, job.kind, to))
    job.refresh_from_db()
    return job


@transaction.atomic
def job_create(
    *,
    owner,
    kind: str,
    params: dict | None = None,
    target: models.Model | None = None,
    total: int = 0,
    message: str = "Waiting to start",
) -> Job:
    """Create a job and, once the transaction commits, start it if a slot is free."""
    get_kind(kind)  # unknown kinds fail here, not later in a worker
    job = Job.objects.create(
        owner=owner,
        kind=kind,
        params=params or {},
        target_type=ContentType.objects.get_for_model(target) if target is not None else None,
        target_id=str(target.pk) if target is not None else "",
        progress_total=total,
        progress_message=message,
    )
    owner_id = owner.pk
    _publish_on_commit(job.pk)
    transaction.on_commit(lambda: jobs_dispatch(owner_id=owner_id))
    return job


def jobs_dispatch(*, owner_id) -> list[Job]:
    """Queue the owner's oldest pending jobs while they have free slots."""
    queued: list[Job] = []
    with transaction.atomic():
        # Locking the owner's row serialises dispatch per user across processes
        # (SQLite serialises every write transaction anyway).
        get_user_model().objects.select_for_update().filter(pk=owner_id).first()
        busy = Job.objects.filter(owner_id=owner_id, state__in=SLOT_STATES).count()
        free = max(0, settings.JOBS_MAX_RUNNING_PER_USER - busy)
        if free:
            pending = Job.objects.filter(owner_id=owner_id, state=JobState.PENDING).order_by("created_at")[:free]
            for job in pending:
                queued.append(job_transition(job=job, to=JobState.QUEUED, progress_message="Queued"))
        for job in queued:
            queue = get_kind(job.kind).queue
            job_id = str(job.pk)
            transaction.on_commit(partial(tasks.run_job.apply_async, (job_id,), queue=queue))
    return queued


def job_progress(*, job_id, done: int | None = None, total: int | None = None, message: str | None = None) -> None:
    """Record progress of a running job; raises JobCancelled if it should stop."""
    fields: dict[str, Any] = {"heartbeat_at": timezone.now(), "updated_at": timezone.now()}
    if done is not None:
        fields["progress_done"] = max(0, done)
    if total is not None:
        fields["progress_total"] = max(0, total)
    if message is not None:
        fields["progress_message"] = message[:255]
    with transaction.atomic():
        Job.objects.filter(pk=job_id, state=JobState.RUNNING).update(**fields)
        _publish_on_commit(job_id)
    job_raise_if_cancelled(job_id=job_id)


def job_progress_report(*, job_id, done: int, total: int | None = None, message: str | None = None) -> bool:
    """Progress of a handed-off job, reported by whichever of its tasks just finished: one conditional
    UPDATE that never moves progress back (a count read before another task's arrives late and is
    dropped). It is a heartbeat too. Returns whether it was recorded."""
    now = timezone.now()
    fields: dict[str, Any] = {"heartbeat_at": now, "updated_at": now, "progress_done": max(0, done)}
    if total is not None:
        fields["progress_total"] = max(0, total)
    if message is not None:
        fields["progress_message"] = message[:255]
    with transaction.atomic():
        updated = Job.objects.filter(pk=job_id, state=JobState.RUNNING, progress_done__lte=done).update(**fields)
        if updated:
            _publish_on_commit(job_id)
    return bool(updated)


def job_raise_if_cancelled(*, job_id) -> None:
    row = Job.objects.filter(pk=job_id).values_list("state", "cancel_requested", "owner__is_active").first()
    if row is None:
        raise JobCancelled("The job no longer exists.")
    state, cancel_requested, owner_active = row
    if cancel_requested or not owner_active or state != JobState.RUNNING:
        raise JobCancelled("The job was cancelled.")


def job_heartbeat(*, job_id) -> None:
    Job.objects.filter(pk=job_id, state=JobState.RUNNING).update(heartbeat_at=timezone.now())


def job_cancel(*, job: Job, reason: str = "Cancelled by the user.") -> Job:
    """Cancel at once if not started; a running job is asked to stop and does so at its next step."""
    if job.state in (JobState.PENDING, JobState.QUEUED):
        try:
            job = job_transition(job=job, to=JobState.CANCELLED, cancel_requested=True, progress_message=reason)
        except IllegalJobTransition:
            job.refresh_from_db()  # it started meanwhile: fall through to the running case
        else:
            # No handler will ever run to give back what the job reserved when it was created (credits…).
            _abandon(job)
            return job
    if job.state == JobState.RUNNING and get_kind(job.kind).watch is not None:
        return _cancel_handed_off(job, reason)
    if job.state == JobState.RUNNING:
        with transaction.atomic():
            Job.objects.filter(pk=job.pk).update(
                cancel_requested=True, progress_message="Cancelling…", updated_at=timezone.now()
            )
            _publish_on_commit(job.pk)
        job.refresh_from_db()
        return job
    raise IllegalJobTransition(job.pk, job.state, JobState.CANCELLED)


def _cancel_handed_off(job: Job, reason: str) -> Job:
    """A handed-off job has no handler to notice a cancel request: it stops now, and its kind gives back
    what it reserved; its tasks still in flight find it stopped and save nothing."""
    try:
        job = job_transition(job=job, to=JobState.CANCELLED, cancel_requested=True, progress_message=reason)
    except IllegalJobTransition:
        job.refresh_from_db()  # it finished meanwhile
        return job
    _abandon(job)
    jobs_dispatch(owner_id=job.owner_id)
    return job


def jobs_cancel_for_user(*, user, reason: str) -> int:
    count = 0
    for job in Job.objects.filter(owner=user, state__in=ACTIVE_STATES):
        try:
            job_cancel(job=job, reason=reason)
            count += 1
        except IllegalJobTransition:
            pass  # it finished meanwhile
    return count


def job_retry(*, job: Job) -> Job:
    """Run a failed or interrupted job again from the start (a new pending turn)."""
    job = job_transition(
        job=job,
        to=JobState.PENDING,
        progress_done=0,
        progress_message="Waiting to start",
        error="",
        result=None,
        cancel_requested=False,
        started_at=None,
        finished_at=None,
        heartbeat_at=None,
    )
    owner_id = job.owner_id
    transaction.on_commit(lambda: jobs_dispatch(owner_id=owner_id))
    return job


def jobs_reap(*, now=None) -> int:
    """Mark running jobs whose worker stopped heartbeating as interrupted."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.JOBS_STALE_AFTER_SECONDS)
    reaped = 0
    owners: set = set()
    stale = Job.objects.filter(state=JobState.RUNNING, heartbeat_at__lt=cutoff)
    for job in stale:
        if job_watch(job=job):
            continue
        try:
            job_transition(
                job=job,
                to=JobState.INTERRUPTED,
                error="The worker running this job stopped responding. You can retry it.",
                progress_message="Interrupted",
            )
        except IllegalJobTransition:
            continue  # it finished or moved on since we looked
        reaped += 1
        owners.add(job.owner_id)
        _abandon(job)
    for owner_id in owners:
        jobs_dispatch(owner_id=owner_id)
    if reaped:
        logger.warning("Reaper marked %s job(s) interrupted", reaped)
    return reaped


def job_watch(*, job: Job) -> bool:
    """A handed-off job gone quiet: its kind looks at its tasks (see ``JobKind.watch``). True when the
    job goes on (counted as a heartbeat) or was finished meanwhile; False when it should be interrupted."""
    kind = get_kind(job.kind)
    if kind.watch is None:
        return False
    try:
        going = bool(kind.watch(job))
    except Exception:  # it cannot tell: treated as dead, so what it reserved is given back
        logger.exception("Could not watch job %s", job.pk)
        return False
    if going:
        Job.objects.filter(pk=job.pk, state=JobState.RUNNING).update(heartbeat_at=timezone.now())
    return going


class JobContext:
    """What a handler uses to report progress and notice cancellation."""

    def __init__(self, job: Job, worker: str = "") -> None:
        self.job = job
        self.worker = worker

    def progress(self, done: int | None = None, total: int | None = None, message: str | None = None) -> None:
        job_progress(job_id=self.job.pk, done=done, total=total, message=message)

    def check_cancelled(self) -> None:
        job_raise_if_cancelled(job_id=self.job.pk)


class _Heartbeat:
    """Beats for a running job from a side thread, so a long LLM call does not look dead."""

    def __init__(self, job_id, interval: float) -> None:
        self.job_id = job_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"job-heartbeat-{job_id}", daemon=True)

    def __enter__(self):
        if self.interval > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    job_heartbeat(job_id=self.job_id)
                except Exception:  # a missed beat is not worth killing the job
                    logger.exception("Heartbeat for job %s failed", self.job_id)
        finally:
            connection.close()


def job_run(*, job_id, worker: str = "") -> Job | None:
    """Claim and run a queued job. Safe to call twice for the same job: only one claim wins."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        logger.warning("Job %s vanished before it ran", job_id)
        return None
    try:
        job = job_transition(
            job=job,
            to=JobState.RUNNING,
            worker=worker[:255],
            attempts=models.F("attempts") + 1,
            progress_message="Starting",
        )
    except IllegalJobTransition as exc:
        # A duplicate delivery, or cancelled while it waited: nothing to do.
        logger.info("Job %s not claimed: %s", job_id, exc)
        return None

    if job.attempts > settings.JOBS_MAX_ATTEMPTS:
        # A task that keeps killing its worker comes back forever with
        # reject_on_worker_lost; the database caps it.
        return _finish(job, JobState.FAILED, error="This job failed repeatedly and was stopped.")

    kind = get_kind(job.kind)
    try:
        with _Heartbeat(job.pk, settings.JOBS_HEARTBEAT_SECONDS):
            result = kind.handler(job, JobContext(job, worker))
    except JobCancelled as exc:
        return _finish(job, JobState.CANCELLED, progress_message="Cancelled", result=exc.result)
    except JobFailure as exc:
        return _finish(job, JobState.FAILED, error=scrub(str(exc)))
    except SoftTimeLimitExceeded:
        return _finish(job, JobState.FAILED, error="The job took too long and was stopped.")
    except Exception:
        logger.exception("Job %s (%s) crashed", job.pk, job.kind)
        return _finish(job, JobState.FAILED, error="An unexpected error stopped this job. It has been logged.")
    if result is HANDED_OFF:
        job.refresh_from_db()
        return job  # its own tasks finish it (job_finish); the worker thread is free now
    return _finish(job, JobState.DONE, result=result, progress_message="Done")


def job_finish(*, job: Job, state: str, **fields: Any) -> Job:
    """Finish a handed-off job from the task that found nothing left to do. Several may try at once:
    the transition is one conditional UPDATE, so one wins and the others find the job finished."""
    return _finish(job, state, **fields)


def _finish(job: Job, state: str, **fields: Any) -> Job:
    try:
        job = job_transition(job=job, to=state, **fields)
    except IllegalJobTransition as exc:
        if exc.current == "missing":
            # Deleted while it ran (its owner deleted their account): nothing is left to record.
            logger.info("Job %s was deleted while it ran", job.pk)
            return job
        job.refresh_from_db()  # reaped or cancelled meanwhile: keep what is there
    jobs_dispatch(owner_id=job.owner_id)
    return job


def _abandon(job: Job) -> None:
    kind = get_kind(job.kind)
    if kind.on_abandon is None:
        return
    try:
        kind.on_abandon(job)
    except Exception:  # the job is already marked; an operator can settle by hand
        logger.exception("Could not settle abandoned job %s", job.pk)


def jobs_reap_orphans_at_startup() -> int:
    """Embedded mode only: jobs still queued or running belonged to a process that is gone."""
    count = 0
    for job in Job.objects.filter(state__in=SLOT_STATES):
        try:
            job_transition(
                job=job,
                to=JobState.INTERRUPTED,
                error="Cohorta restarted while this job was in progress. You can retry it.",
                progress_message="Interrupted",
            )
            count += 1
            _abandon(job)
        except IllegalJobTransition:
            pass
    return count
