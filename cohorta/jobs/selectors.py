import uuid
from datetime import timedelta

from django.utils import timezone

from cohorta.jobs.models import ACTIVE_STATES, Job


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


def jobs_for_target(*, target, kind: str):
    """Jobs of ``kind`` working on ``target`` (for its owner), any state."""
    from django.contrib.contenttypes.models import ContentType

    return Job.objects.filter(
        owner_id=target.owner_id,
        kind=kind,
        target_type=ContentType.objects.get_for_model(target),
        target_id=str(target.pk),
    )
