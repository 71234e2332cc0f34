"""Job events pushed to the owner's websocket group ``user.<id>``."""

from cohorta.jobs.models import Job
from cohorta.jobs.serializers import JobSerializer
from cohorta.publisher import publish


def user_group(user_id) -> str:
    return f"user.{user_id}"


def job_payload(job) -> dict:
    return dict(JobSerializer(job).data)


def publish_job_update(job_id) -> None:
    """Send the job's current state to its owner. Best effort: the row is the truth."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return
    # Queued for the process's publisher thread: a full or unreachable layer never slows or fails the job.
    publish(user_group(job.owner_id), {"type": "job.update", "owner_id": job.owner_id, "job": job_payload(job)})
