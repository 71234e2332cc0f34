"""Exact replay of a finished survey run against the fake OpenAI server: identical answers, ratings,
distributions and statistics, with no request reaching the provider, free of credits."""

import json

import pytest
from django.test import Client

from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.errors import ApplicationError
from cohorta.jobs.models import JobState
from llm.models import CachedResponse, RunRecord
from surveys import replay, services
from surveys.models import Answer, RespondentState
from surveys.results import run_results
from tests.personas.factories import FolderFactory, PersonaFactory
from tests.surveys.test_runs import QUESTIONS
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def funded(owner):
    credits_grant(user=owner, amount=200, idempotency_key="test:fund")
    return owner


@pytest.fixture
def finished(funded, fake_llm):
    folder = FolderFactory(owner=funded, name="Panel")
    for _ in range(5):
        PersonaFactory(owner=funded, folder=folder)
    survey = services.survey_create(
        owner=funded, title="Oat milk", intro="A new oat milk.", questions=QUESTIONS, randomize_questions=True
    )
    run = services.run_start(survey=survey, folder=folder)
    run.refresh_from_db()
    assert run.job.state == JobState.DONE
    return run


def _answers(run) -> list[tuple]:
    return list(
        Answer.objects.filter(respondent__run=run)
        .order_by("respondent__position", "question_id")
        .values_list("respondent__position", "question_id", "text", "choices", "pmf", "expected", "option_order")
    )


RUN_OWN = {"respondent_id", "generated_at", "run_id", "computed_at"}


def _comparable(value):
    """The results as JSON text (so NaN equals NaN), without what names the run's own rows or when it was
    computed: the respondents are new rows, the themes were found at another time."""

    def strip(item):
        if isinstance(item, dict):
            return {key: strip(inner) for key, inner in item.items() if key not in RUN_OWN}
        if isinstance(item, list):
            return [strip(inner) for inner in item]
        return item

    return json.dumps(strip(value), sort_keys=True, default=str)


def test_a_replay_gives_identical_answers_and_statistics_with_no_provider_request(finished, funded, fake_llm):
    requests = len(fake_llm.requests)
    balance = credits_balance(user=funded)
    copy = replay.run_replay(run=finished)
    copy.refresh_from_db()
    assert copy.job.state == JobState.DONE, copy.job.error
    assert len(fake_llm.requests) == requests  # the provider received nothing
    assert _answers(copy) == _answers(finished)
    assert _comparable(run_results(copy)) == _comparable(run_results(finished))
    assert credits_balance(user=funded) == balance
    events = UsageEvent.objects.filter(job_id=copy.job_id)
    assert events.exists() and not events.filter(cached=False).exists()
    assert replay.replay_source(copy).replay_of.scope == f"surveyrun:{finished.pk}"
    methods = RunRecord.objects.get(scope=f"surveyrun:{finished.pk}").methods
    assert methods["seeds"] == {"question order": finished.seed}
    assert methods["anchor_set"] and methods["embedding"]["model"]
    assert "surveys:respondent" in methods["prompts"]


def test_a_replay_with_answers_missing_says_how_many_and_never_calls_the_provider(finished, fake_llm):
    CachedResponse.objects.filter(feature="survey_answer").order_by("pk").first().delete()
    requests = len(fake_llm.requests)
    with pytest.raises(ApplicationError) as info:
        replay.run_replay(run=finished)
    assert info.value.code == "replay_incomplete" and info.value.extra["missing"] == 1
    copy = replay.run_replay(run=finished, allow_live=True)
    assert copy.respondents.filter(state=RespondentState.DONE).count() == 5
    assert len([r for r in fake_llm.requests[requests:] if r.path == "/v1/chat/completions"]) == 1


def test_another_user_cannot_replay_a_run(finished, other_user):
    page = Client()
    page.force_login(other_user)
    assert page.post(f"/surveys/runs/{finished.pk}/replay/").status_code == 404
    assert finished.survey.runs.count() == 1


def test_the_results_page_offers_the_replay_and_shows_methods(finished, funded, client):
    client.force_login(funded)
    page = client.get(f"/surveys/runs/{finished.pk}/").content.decode()
    assert "Replay exactly" in page and "Methods" in page
    response = client.post(f"/surveys/runs/{finished.pk}/replay/")
    copy = finished.survey.runs.exclude(pk=finished.pk).get()
    assert response.status_code == 302 and response["Location"] == f"/surveys/runs/{copy.pk}/"
    assert "Exact replay" in client.get(f"/surveys/runs/{copy.pk}/").content.decode()
