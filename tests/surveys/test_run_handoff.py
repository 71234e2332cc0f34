"""A survey run keeps no worker thread waiting: its job hands the first respondents out and returns,
each respondent's task moves the run on as it ends, the last one finishes the job, and the reaper
looks after respondents whose worker died. Credits stay exact throughout."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.core.models import get_app_settings
from cohorta.jobs.fanout import lost_after_seconds
from cohorta.jobs.models import Job, JobState
from cohorta.jobs.services import job_cancel, jobs_reap
from surveys import jobs as survey_jobs
from surveys import runner, services
from surveys.models import Answer, Respondent, RespondentState
from tests.personas.factories import FolderFactory, PersonaFactory

pytestmark = pytest.mark.django_db(transaction=True)

QUESTIONS = [
    {"kind": "likert5", "text": "I would try it.", "labels": ["SD", "D", "N", "A", "SA"]},
    {"kind": "open", "text": "Why?"},
]


@pytest.fixture
def funded(owner):
    credits_grant(user=owner, amount=200, idempotency_key="test:fund")
    return owner


@pytest.fixture
def parallel_3():
    app = get_app_settings()
    app.survey_parallelism = 3
    app.save()


@pytest.fixture
def sent(monkeypatch):
    """Respondent tasks sent to the broker wait here instead of running, as if every worker were busy."""
    queue: list[int] = []
    monkeypatch.setattr(survey_jobs, "dispatch_respondent", queue.append)
    return queue


def _panel(owner, size: int):
    folder = FolderFactory(owner=owner, name=f"Panel of {size}")
    for _ in range(size):
        PersonaFactory(owner=owner, folder=folder)
    return folder


def _start(owner, size: int):
    survey = services.survey_create(owner=owner, title="Oat milk", questions=QUESTIONS)
    run = services.run_start(survey=survey, folder=_panel(owner, size))
    run.refresh_from_db()
    return run


def _states(run) -> dict[str, int]:
    counts = runner.run_counts(run)
    return {state: counts[state] for state in RespondentState.values if counts[state]}


def _answer_next(sent: list[int]) -> str:
    return runner.respondent_answer(respondent_id=sent.pop(0), dispatch=sent.append)


def _go_quiet(run, *, respondents=(), seconds: int = 600) -> None:
    """As if nothing had been heard from the run (and these respondents) for ``seconds``."""
    past = timezone.now() - timedelta(seconds=seconds)
    Job.objects.filter(pk=run.job_id).update(heartbeat_at=past)
    Respondent.objects.filter(pk__in=[r.pk for r in respondents]).update(heartbeat_at=past)


def test_the_run_job_hands_respondents_out_and_returns_without_waiting_for_them(funded, parallel_3, sent, fake_llm):
    before = credits_balance(user=funded)
    run = _start(funded, 10)
    # The job's handler has returned (we are here) with none of its respondents answered yet: no
    # worker thread is held while they wait for one.
    assert run.job.state == JobState.RUNNING
    assert _states(run) == {"queued": 3, "pending": 7}
    assert len(sent) == 3 and not fake_llm.requests
    assert credits_balance(user=funded) == before - 10  # reserved up front
    while sent:
        assert _answer_next(sent) == "done"
        counts = runner.run_counts(run)
        assert counts["queued"] + counts["running"] <= 3  # each one ending hands out the next
    run.job.refresh_from_db()
    assert run.job.state == JobState.DONE
    assert run.job.progress_done == run.job.progress_total == 10
    assert run.job.result["done"] == 10 and run.job.progress_message == "10 of 10 respondents answered"
    assert _states(run) == {"done": 10}
    assert Answer.objects.filter(respondent__run=run).count() == 20
    assert credits_balance(user=funded) == before - 10


def test_progress_is_reported_as_each_respondent_ends(funded, parallel_3, sent, fake_llm):
    run = _start(funded, 4)
    _answer_next(sent)
    run.job.refresh_from_db()
    assert run.job.state == JobState.RUNNING
    assert run.job.progress_done == 1 and run.job.progress_total == 4
    assert run.job.progress_message.startswith("1 of 4 respondents answered")
    assert "left" in run.job.progress_message  # time left, from the pace so far


def test_the_run_is_finished_once_however_many_see_the_last_answer(funded, parallel_3, sent):
    run = _start(funded, 2)
    # Both respondents saved their answers before either moved the run on.
    Respondent.objects.filter(run=run).update(state=RespondentState.DONE, finished_at=timezone.now())
    assert runner.run_advance(run, dispatch=sent.append) is False
    run.job.refresh_from_db()
    finished_at = run.job.finished_at
    assert run.job.state == JobState.DONE and run.job.result["done"] == 2
    assert runner.run_advance(run, dispatch=sent.append) is False
    run.job.refresh_from_db()
    assert run.job.finished_at == finished_at  # the second one found it finished and left it


def test_a_failed_respondent_is_refunded_and_the_rest_carry_on(funded, parallel_3, sent, fake_llm):
    before = credits_balance(user=funded)
    run = _start(funded, 4)
    fake_llm.add_fault("server_error", times=3)  # the first respondent's call and both retries
    assert _answer_next(sent) == "failed"
    while sent:
        assert _answer_next(sent) == "done"
    run.job.refresh_from_db()
    assert run.job.state == JobState.DONE and run.job.result["failed"] == 1
    assert _states(run) == {"done": 3, "failed": 1}
    assert credits_balance(user=funded) == before - 3


def test_cancelling_a_running_survey_stops_it_at_once_and_refunds_everyone_not_asked(
    funded, parallel_3, sent, fake_llm
):
    before = credits_balance(user=funded)
    run = _start(funded, 10)
    _answer_next(sent)  # one answered and paid for
    job = job_cancel(job=Job.objects.get(pk=run.job_id))
    assert job.state == JobState.CANCELLED  # not "cancelling…" until a respondent happens to end
    assert _states(run) == {"done": 1, "cancelled": 9}
    assert credits_balance(user=funded) == before - 1
    requests = len(fake_llm.requests)
    while sent:  # tasks already in the broker find nothing to do
        assert _answer_next(sent) == "not-claimed"
    assert len(fake_llm.requests) == requests and credits_balance(user=funded) == before - 1


def test_the_reaper_fails_a_respondent_whose_worker_died_and_finishes_the_run(funded, parallel_3, sent, fake_llm):
    before = credits_balance(user=funded)
    run = _start(funded, 2)
    dead = Respondent.objects.get(pk=sent.pop(0))
    Respondent.objects.filter(pk=dead.pk).update(state=RespondentState.RUNNING)  # claimed, then kill -9
    assert _answer_next(sent) == "done"
    run.job.refresh_from_db()
    assert run.job.state == JobState.RUNNING  # still waiting for the dead one
    _go_quiet(run, respondents=[dead])
    assert jobs_reap() == 0  # not interrupted: the run goes on without the dead respondent
    dead.refresh_from_db()
    run.job.refresh_from_db()
    assert dead.state == RespondentState.FAILED and "stopped responding" in dead.error
    assert run.job.state == JobState.DONE and run.job.result["done"] == 1
    assert credits_balance(user=funded) == before - 1


def test_the_reaper_leaves_a_run_whose_respondents_wait_for_a_busy_worker(funded, parallel_3, sent):
    run = _start(funded, 5)
    _go_quiet(run)  # nothing reported for 10 minutes: every worker thread is busy elsewhere
    assert jobs_reap() == 0
    run.job.refresh_from_db()
    assert run.job.state == JobState.RUNNING
    assert run.job.heartbeat_at > timezone.now() - timedelta(seconds=5)  # the reaper's look counts as a beat
    assert _states(run) == {"queued": 3, "pending": 2}


def test_the_reaper_hands_out_respondents_a_dead_run_job_never_did(funded, parallel_3, sent):
    run = _start(funded, 5)
    # Its worker died right after claiming the job, before handing anyone out.
    Respondent.objects.filter(run=run).update(state=RespondentState.PENDING)
    sent.clear()
    _go_quiet(run)
    assert jobs_reap() == 0
    assert len(sent) == 3 and _states(run) == {"queued": 3, "pending": 2}


def test_a_respondent_whose_task_the_broker_lost_is_failed_and_refunded(funded, parallel_3, sent, fake_llm):
    before = credits_balance(user=funded)
    run = _start(funded, 3)
    lost = Respondent.objects.get(pk=sent.pop(0))
    while sent:
        _answer_next(sent)
    _go_quiet(run, respondents=[lost], seconds=int(lost_after_seconds()) + 60)
    assert jobs_reap() == 0
    lost.refresh_from_db()
    run.job.refresh_from_db()
    assert lost.state == RespondentState.FAILED and "lost" in lost.error
    assert run.job.state == JobState.DONE
    assert credits_balance(user=funded) == before - 2
