from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import TestCase
from django.utils import timezone

from cohorta.jobs.models import Job, JobState
from cohorta.jobs.registry import _KINDS, job_kind
from focusgroups.models import AutonomousRun, FocusGroup, FocusGroupStatus, RunStatus
from tests.factories import JobFactory
from tests.focusgroups.factories import FocusGroupFactory

pytestmark = pytest.mark.django_db


def recover(*args) -> str:
    """Run the command; what it sends after commit is sent (the test's transaction never commits)."""
    out = StringIO()
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("recover_jobs", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def settled():
    """A job kind that records what its on_abandon gave back."""
    calls = []
    job_kind("refundable", label="Refundable", on_abandon=lambda job: calls.append(job.pk))(lambda job, ctx: None)
    yield calls
    _KINDS.pop("refundable", None)


@pytest.fixture
def sent(monkeypatch):
    """Tasks sent to the broker, instead of running them."""
    calls = []
    monkeypatch.setattr("cohorta.jobs.tasks.run_job.apply_async", lambda args, **kw: calls.append((args, kw)))
    monkeypatch.setattr("focusgroups.tasks.autonomous_turn.apply_async", lambda args, **kw: calls.append((args, kw)))
    return calls


def _running(owner, *, beat_ago: int, kind="refundable") -> Job:
    now = timezone.now()
    return JobFactory(
        owner=owner,
        kind=kind,
        state=JobState.RUNNING,
        started_at=now - timedelta(seconds=beat_ago + 5),
        heartbeat_at=now - timedelta(seconds=beat_ago),
    )


def test_dry_run_lists_and_changes_nothing(owner, settled, sent):
    stale = _running(owner, beat_ago=600)
    out = recover("--dry-run")
    assert f"interrupt  job {stale.pk}" in out and "Dry run" in out
    assert Job.objects.get(pk=stale.pk).state == JobState.RUNNING
    assert settled == [] and sent == []


def test_stale_jobs_are_interrupted_and_settled_once_and_live_ones_kept(owner, settled, sent):
    stale = _running(owner, beat_ago=600)
    alive = _running(owner, beat_ago=5)
    out = recover()
    assert "1 job(s) interrupted" in out
    stale.refresh_from_db()
    assert stale.state == JobState.INTERRUPTED and "stopped responding" in stale.error and stale.can_retry
    assert Job.objects.get(pk=alive.pk).state == JobState.RUNNING
    assert settled == [stale.pk]
    # Idempotent: nothing left to do, nothing settled twice.
    assert "Nothing to recover" in recover()
    assert settled == [stale.pk]


def test_all_running_treats_every_running_job_as_orphaned(owner, settled, sent):
    alive = _running(owner, beat_ago=5)
    recover("--all-running")
    alive.refresh_from_db()
    assert alive.state == JobState.INTERRUPTED and "workers were stopped" in alive.error


def test_stale_after_overrides_the_setting(owner, settled, sent):
    job = _running(owner, beat_ago=40)
    recover()
    assert Job.objects.get(pk=job.pk).state == JobState.RUNNING  # default: 75 s
    recover("--stale-after", "30")
    assert Job.objects.get(pk=job.pk).state == JobState.INTERRUPTED


def test_lost_queued_jobs_are_sent_again_once(owner, sent):
    old = JobFactory(owner=owner, state=JobState.QUEUED, queued_at=timezone.now() - timedelta(minutes=30))
    recent = JobFactory(owner=owner, state=JobState.QUEUED, queued_at=timezone.now())
    out = recover()
    assert f"re-send    job {old.pk}" in out and "1 re-sent" in out
    assert [args for args, _ in sent] == [(str(old.pk),)]
    assert sent[0][1]["queue"] == "llm"
    assert recent.pk not in {args[0] for args, _ in sent}
    recover()  # idempotent: its queued time was renewed
    assert len(sent) == 1


def test_waiting_jobs_start_when_a_slot_is_free(owner, settings, sent):
    settings.JOBS_MAX_RUNNING_PER_USER = 1
    waiting = JobFactory(owner=owner, state=JobState.PENDING)
    recover()
    assert Job.objects.get(pk=waiting.pk).state == JobState.QUEUED
    assert len(sent) == 1
    recover()  # the slot is taken now
    assert len(sent) == 1


def _stale_run(owner) -> AutonomousRun:
    focus_group = FocusGroupFactory(owner=owner, participants=2)
    FocusGroup.objects.filter(pk=focus_group.pk).update(status=FocusGroupStatus.LIVE)
    return AutonomousRun.objects.create(
        focus_group=focus_group,
        status=RunStatus.RUNNING,
        turns_done=3,
        claimed_turn=3,
        heartbeat_at=timezone.now() - timedelta(minutes=10),
    )


def test_stale_autonomous_runs_are_interrupted_and_can_be_resumed(owner, sent):
    run = _stale_run(owner)
    out = recover("--dry-run", "--resume-runs")
    assert f"interrupt  session run {run.pk}" in out
    assert AutonomousRun.objects.get(pk=run.pk).status == RunStatus.RUNNING

    assert "1 session run(s) interrupted" in recover()
    run.refresh_from_db()
    assert run.status == RunStatus.INTERRUPTED
    assert FocusGroup.objects.get(pk=run.focus_group_id).status == FocusGroupStatus.PAUSED

    out = recover("--resume-runs")
    assert f"resume     session run {run.pk}" in out and "1 resumed" in out
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert [args for args, _ in sent] == [(run.pk, 3)]  # its next turn, from where it stopped
    assert "Nothing to recover" in recover("--resume-runs")
