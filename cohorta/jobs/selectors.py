import math
import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from cohorta.jobs.models import ACTIVE_STATES, Job, JobState

# How long the jobs panel keeps a job on screen after it ended: long enough to read the outcome, short
# enough that the panel does not sit over the page. A failure stays longer: it may need a Retry.
PANEL_LINGER_SECONDS: dict[str, int] = {
    JobState.DONE: 6,
    JobState.CANCELLED: 6,
    JobState.FAILED: 15,
    JobState.INTERRUPTED: 15,
}


def job_get_for_user(*, user, job_id) -> Job | None:
    """The user's job, or None: another user's job is indistinguishable from a missing one."""
    try:
        job_uuid = uuid.UUID(str(job_id))
    except ValueError:
        return None
    return Job.objects.filter(owner=user, pk=job_uuid).first()


def jobs_for_user(*, user, state: str | None = None, kind: str | None = None):
    qs = Job.objects.filter(owner=user)
    if state:
        qs = qs.filter(state=state)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("-created_at")


def jobs_recent_for_panel(*, user, limit: int = 6, finished_within_seconds: int = 120):
    """Active jobs first (oldest first), then jobs that finished in the last two minutes."""
    active = list(Job.objects.filter(owner=user, state__in=ACTIVE_STATES).order_by("created_at")[:limit])
    if len(active) < limit:
        since = timezone.now() - timedelta(seconds=finished_within_seconds)
        finished = Job.objects.filter(owner=user, finished_at__gte=since).exclude(state__in=ACTIVE_STATES)
        active += list(finished.order_by("-finished_at")[: limit - len(active)])
    return active


def job_ids_for_user(*, user, job_ids: Iterable) -> list[str]:
    """The ids among ``job_ids`` that are the user's jobs; anything else (another user's, not an id) is dropped."""
    valid = []
    for job_id in job_ids:
        try:
            valid.append(uuid.UUID(str(job_id)))
        except ValueError:
            continue
    return [str(pk) for pk in Job.objects.filter(owner=user, pk__in=valid).values_list("pk", flat=True)]


def jobs_for_panel(*, user, hidden_ids: Iterable[str] = (), limit: int = 5, now=None) -> list[Job]:
    """Active jobs (oldest first), then jobs that ended within their ``PANEL_LINGER_SECONDS``, newest first;
    none of ``hidden_ids`` (jobs the user closed the panel on). Each ended job carries ``hide_in``: the
    seconds it has left on screen, for the page to take it away at the same moment the server stops listing it."""
    now = now or timezone.now()
    hidden = list(hidden_ids)
    jobs = list(
        Job.objects.filter(owner=user, state__in=ACTIVE_STATES).exclude(pk__in=hidden).order_by("created_at")[:limit]
    )
    since = now - timedelta(seconds=max(PANEL_LINGER_SECONDS.values()))
    ended = (
        Job.objects.filter(owner=user, state__in=list(PANEL_LINGER_SECONDS), finished_at__gte=since)
        .exclude(pk__in=hidden)
        .order_by("-finished_at")[:50]
    )
    for job in ended:
        if len(jobs) >= limit:
            break
        left = PANEL_LINGER_SECONDS[job.state] - (now - job.finished_at).total_seconds()
        if left > 0:
            job.hide_in = math.ceil(left)
            jobs.append(job)
    return jobs


def jobs_for_target(*, target, kind: str):
    """Jobs of ``kind`` working on ``target`` (for its owner), any state."""
    return Job.objects.filter(
        owner_id=target.owner_id,
        kind=kind,
        target_type=ContentType.objects.get_for_model(target),
        target_id=str(target.pk),
    )
