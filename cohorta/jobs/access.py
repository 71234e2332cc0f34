"""Getting a job for a user: not theirs → 404 (see ``cohorta/access.py``)."""

from cohorta.access import owned_or_404
from cohorta.jobs.models import Job


def get_job_for_user(user, pk, *, for_write: bool = False) -> Job:
    return owned_or_404(Job.objects.all(), user=user, pk=pk, what="job")
