from datetime import timedelta

import pytest
from django.utils import timezone

from cohorta.accounts.services import user_set_active
from cohorta.jobs import services
from cohorta.jobs.errors import IllegalJobTransition, JobFailure
from cohorta.jobs.models import Job, JobState
from cohorta.jobs.registry import _KINDS, HANDED_OFF, job_kind
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def temp_kinds():
    """Register throwaway job kinds for one test."""
    added = []

    def register(name, handler):
        job_kind(name, label=name)(handler)
        added.append(name)

    yield register
    for name in added:
        _KINDS.pop(name, None)


def test_create_runs_the_job_to_done(owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.job_create(owner=owner, kind="worker_check", params={"steps": 3, "step_seconds": 0}, total=3)
    job.refresh_from_db()
    assert job.state == JobState.DONE
    assert (job.progress_done, job.progress_total) == (3, 3)
    assert len(job.result["steps"]) == 3
    assert job.attempts == 1


def test_unknown_kind_is_rejected_at_creation(owner):
    with pytest.raises(LookupError):
        services.job_create(owner=owner, kind="no_such_kind")
    assert not Job.objects.exists()


def test_per_user_limit_keeps_the_rest_pending_in_order(owner, other_user, settings):
    settings.JOBS_MAX_RUNNING_PER_USER = 2
    settings.CELERY_TASK_ALWAYS_EAGER = False  # keep queued jobs in the broker
    first, second, third, fourth = (JobFactory(owner=owner) for _ in range(4))
    theirs = JobFactory(owner=other_user)
    queued = services.jobs_dispatch(owner_id=owner.pk)
    assert [j.pk for j in queued] == [first.pk, second.pk]
    assert Job.objects.get(pk=third.pk).state == JobState.PENDING
    # Another user's slots are their own.
    assert [j.pk for j in services.jobs_dispatch(owner_id=other_user.pk)] == [theirs.pk]
    # Nothing more for the owner until a slot frees up.
    assert services.jobs_dispatch(owner_id=owner.pk) == []
    services.job_transition(job=Job.objects.get(pk=first.pk), to=JobState.CANCELLED)
    assert [j.pk for j in services.jobs_dispatch(owner_id=owner.pk)] == [third.pk]
    assert Job.objects.get(pk=fourth.pk).state == JobState.PENDING


def test_run_is_idempotent_for_duplicate_deliveries(owner):
    job = JobFactory(owner=owner, state=JobState.QUEUED)
    services.job_run(job_id=job.pk, worker="w1")
    assert services.job_run(job_id=job.pk, worker="w2") is None
    job.refresh_from_db()
    assert job.state == JobState.DONE and job.attempts == 1 and job.worker == "w1"


def test_handler_crash_fails_with_a_safe_message(owner, temp_kinds):
    def boom(job, ctx):
        raise RuntimeError("db password=hunter2 leaked")

    temp_kinds("boom", boom)
    job = JobFactory(owner=owner, kind="boom", state=JobState.QUEUED)
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "hunter2" not in job.error and "unexpected error" in job.error


def test_a_job_deleted_while_it_runs_ends_quietly(owner, temp_kinds, caplog):
    def delete_myself(job, ctx):
        Job.objects.filter(pk=job.pk).delete()  # as deleting the owner's account does mid-run
        return {"ok": True}

    caplog.set_level("INFO", logger="cohorta.jobs.services")
    temp_kinds("vanishing", delete_myself)
    job = JobFactory(owner=owner, kind="vanishing", state=JobState.QUEUED)
    services.job_run(job_id=job.pk)  # no DoesNotExist from the worker
    assert not Job.objects.filter(pk=job.pk).exists()
    assert "deleted while it ran" in caplog.text


def test_job_failure_message_is_shown(owner, temp_kinds):
    def refuse(job, ctx):
        raise JobFailure("The model returned nothing usable.")

    temp_kinds("refuse", refuse)
    job = JobFactory(owner=owner, kind="refuse", state=JobState.QUEUED)
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.state, job.error) == (JobState.FAILED, "The model returned nothing usable.")


def test_cancel_while_running_stops_at_next_progress(owner, temp_kinds):
    seen = []

    def long_job(job, ctx):
        for step in range(10):
            if step == 2:
                services.job_cancel(job=Job.objects.get(pk=job.pk))
            ctx.progress(step, 10)
            seen.append(step)

    temp_kinds("long_job", long_job)
    job = JobFactory(owner=owner, kind="long_job", state=JobState.QUEUED)
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert seen == [0, 1]


def test_cancel_pending_is_immediate_and_terminal_cancel_is_illegal(owner):
    job = JobFactory(owner=owner)
    job = services.job_cancel(job=job)
    assert job.state == JobState.CANCELLED
    with pytest.raises(IllegalJobTransition):
        services.job_cancel(job=job)


@pytest.mark.parametrize("state", [JobState.PENDING, JobState.QUEUED])
def test_cancelling_a_job_that_never_started_gives_back_what_it_reserved(owner, state):
    """No handler will run for it, so its kind's on_abandon settles what the job reserved when created."""
    settled = []
    job_kind("reserves", label="Reserves", on_abandon=settled.append)(lambda job, ctx: None)
    try:
        job = services.job_cancel(job=JobFactory(owner=owner, kind="reserves", state=state))
        assert job.state == JobState.CANCELLED and settled == [job]
    finally:
        _KINDS.pop("reserves", None)


def test_retry_runs_an_interrupted_job_again(owner, django_capture_on_commit_callbacks):
    job = JobFactory(owner=owner, state=JobState.INTERRUPTED, error="worker died", progress_done=1)
    with django_capture_on_commit_callbacks(execute=True):
        services.job_retry(job=job)
    job.refresh_from_db()
    assert job.state == JobState.DONE and job.error == "" and job.attempts == 1


def test_attempts_are_capped(owner, settings):
    settings.JOBS_MAX_ATTEMPTS = 2
    job = JobFactory(owner=owner, state=JobState.QUEUED, attempts=2)
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == JobState.FAILED and "repeatedly" in job.error


def test_reaper_interrupts_jobs_whose_worker_went_silent(owner, settings):
    now = timezone.now()
    dead = JobFactory(owner=owner, state=JobState.RUNNING, heartbeat_at=now - timedelta(seconds=90))
    alive = JobFactory(owner=owner, state=JobState.RUNNING, heartbeat_at=now - timedelta(seconds=5))
    assert services.jobs_reap(now=now) == 1
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.state == JobState.INTERRUPTED and "stopped responding" in dead.error
    assert alive.state == JobState.RUNNING


def test_reaper_detects_death_within_two_minutes(settings):
    # Stale threshold plus one reaper period must stay under the promised 2 minutes.
    period = settings.CELERY_BEAT_SCHEDULE["reap-dead-jobs"]["schedule"]
    assert settings.JOBS_STALE_AFTER_SECONDS + period <= 120
    assert settings.JOBS_HEARTBEAT_SECONDS * 3 <= settings.JOBS_STALE_AFTER_SECONDS or settings.TESTING


def test_disabling_a_user_cancels_their_jobs(owner, other_user):
    pending = JobFactory(owner=owner)
    running = JobFactory(owner=owner, state=JobState.RUNNING)
    theirs = JobFactory(owner=other_user)
    user_set_active(user=owner, active=False)
    assert Job.objects.get(pk=pending.pk).state == JobState.CANCELLED
    assert Job.objects.get(pk=running.pk).cancel_requested
    assert Job.objects.get(pk=theirs.pk).state == JobState.PENDING


def test_running_job_of_disabled_user_stops(owner, temp_kinds):
    def work(job, ctx):
        owner.is_active = False
        owner.save(update_fields=["is_active"])
        ctx.progress(1, 2)

    temp_kinds("work", work)
    job = JobFactory(owner=owner, kind="work", state=JobState.QUEUED)
    services.job_run(job_id=job.pk)
    assert Job.objects.get(pk=job.pk).state == JobState.CANCELLED


def test_orphans_are_interrupted_at_embedded_startup(owner):
    running = JobFactory(owner=owner, state=JobState.RUNNING)
    pending = JobFactory(owner=owner)
    assert services.jobs_reap_orphans_at_startup() == 1
    assert Job.objects.get(pk=running.pk).state == JobState.INTERRUPTED
    assert Job.objects.get(pk=pending.pk).state == JobState.PENDING


def test_a_handed_off_job_stays_running_until_its_tasks_finish_it(owner):
    job_kind("handoff_test", label="Hand-off test", watch=lambda job: True)(lambda job, ctx: HANDED_OFF)
    try:
        job = JobFactory(owner=owner, kind="handoff_test", state=JobState.QUEUED)
        job = services.job_run(job_id=job.pk)
        assert job.state == JobState.RUNNING  # the handler returned; the worker thread is free
        assert services.job_progress_report(job_id=job.pk, done=5, total=10, message="5 of 10")
        # A count read before another task's arrives late: progress never moves back.
        assert not services.job_progress_report(job_id=job.pk, done=3, total=10, message="3 of 10")
        job.refresh_from_db()
        assert (job.progress_done, job.progress_message) == (5, "5 of 10")
        job = services.job_finish(job=job, state=JobState.DONE, result={"ok": True})
        assert job.state == JobState.DONE and job.result == {"ok": True}
        assert services.job_finish(job=job, state=JobState.DONE).state == JobState.DONE  # a second finisher
    finally:
        _KINDS.pop("handoff_test", None)


def test_a_quiet_handed_off_job_is_left_to_its_watch(owner, settings):
    going = {"answer": True}
    settled = []
    job_kind("handoff_watch", label="Watched", watch=lambda job: going["answer"], on_abandon=settled.append)(
        lambda job, ctx: HANDED_OFF
    )
    try:
        old = timezone.now() - timedelta(seconds=settings.JOBS_STALE_AFTER_SECONDS + 60)
        job = JobFactory(owner=owner, kind="handoff_watch", state=JobState.RUNNING, heartbeat_at=old)
        assert services.jobs_reap() == 0
        job.refresh_from_db()
        assert job.state == JobState.RUNNING and job.heartbeat_at > old  # its watch counts as a beat
        going["answer"] = False
        Job.objects.filter(pk=job.pk).update(heartbeat_at=old)
        assert services.jobs_reap() == 1
        job.refresh_from_db()
        assert job.state == JobState.INTERRUPTED and settled == [job]
    finally:
        _KINDS.pop("handoff_watch", None)


def test_cancelling_a_running_handed_off_job_stops_it_at_once(owner):
    settled = []
    job_kind("handoff_cancel", label="Cancel", watch=lambda job: True, on_abandon=settled.append)(
        lambda job, ctx: HANDED_OFF
    )
    try:
        job = JobFactory(owner=owner, kind="handoff_cancel", state=JobState.RUNNING)
        job = services.job_cancel(job=job)
        assert job.state == JobState.CANCELLED and settled == [job]
    finally:
        _KINDS.pop("handoff_cancel", None)
