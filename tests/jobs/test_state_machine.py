import pytest

from cohorta.jobs import services
from cohorta.jobs.errors import IllegalJobTransition
from cohorta.jobs.models import ALLOWED_TRANSITIONS, Job, JobState
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("start", "target"),
    [(s, t) for s in JobState.values for t in JobState.values if t not in ALLOWED_TRANSITIONS[s]],
)
def test_illegal_transition_raises_and_leaves_state_unchanged(start, target):
    job = JobFactory(state=start)
    with pytest.raises(IllegalJobTransition):
        services.job_transition(job=job, to=target)
    assert Job.objects.get(pk=job.pk).state == start


def test_legal_path_stamps_times():
    job = JobFactory(state=JobState.PENDING)
    job = services.job_transition(job=job, to=JobState.QUEUED)
    assert job.queued_at is not None
    job = services.job_transition(job=job, to=JobState.RUNNING)
    assert job.started_at is not None and job.heartbeat_at is not None
    job = services.job_transition(job=job, to=JobState.DONE, result={"ok": True})
    assert job.finished_at is not None and job.result == {"ok": True}


def test_transition_from_a_stale_copy_cannot_overwrite_a_newer_state():
    job = JobFactory(state=JobState.RUNNING)
    stale = Job.objects.get(pk=job.pk)
    services.job_transition(job=job, to=JobState.DONE)
    # A second worker with its own, older view of the row tries to fail it.
    with pytest.raises(IllegalJobTransition):
        services.job_transition(job=stale, to=JobState.FAILED)
    assert Job.objects.get(pk=job.pk).state == JobState.DONE
