"""Job events pushed to the owner's websocket group ``user.<id>``."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def user_group(user_id) -> str:
    return f"user.{user_id}"


def job_payload(job) -> dict:
    from cohorta.jobs.serializers import JobSerializer

    return dict(JobSerializer(job).data)


def publish_job_update(job_id) -> None:
    """Send the job's current state to its owner. Best effort: the row is the truth."""
    from cohorta.jobs.models import Job

    job = Job.objects.filter(pk=job_id).first()
    layer = get_channel_layer()
    if job is None or layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            user_group(job.owner_id), {"type": "job.update", "owner_id": job.owner_id, "job": job_payload(job)}
        )
    except Exception:
        # A full or unreachable layer must never fail the job; clients poll.
        logger.warning("Could not publish job %s update", job_id, exc_info=True)
