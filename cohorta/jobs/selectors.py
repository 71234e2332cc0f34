import uuid

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


def jobs_recent_for_panel(*, user, limit: int = 6):
    """Active jobs first, then the most recent finished ones."""
    active = list(Job.objects.filter(owner=user, state__in=ACTIVE_STATES).order_by("created_at")[:limit])
    if len(active) < limit:
        active += list(
            Job.objects.filter(owner=user)
            .exclude(state__in=ACTIVE_STATES)
            .order_by("-finished_at")[: limit - len(active)]
        )
    return active
