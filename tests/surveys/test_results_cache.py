"""The results of a run are computed once and kept in the cache under what they are computed from; the
results page costs the same queries for 4 respondents as for 16, and links each respondent right."""

import json
import random

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cohorta.jobs.models import Job, JobState
from surveys import results as survey_results
from surveys.models import Answer, AnswerStatus, Respondent, RespondentState, Run
from surveys.results import compute_results, results_cache_key, run_results
from surveys.services import frozen_questions, survey_create

pytestmark = pytest.mark.django_db

QUESTIONS = [
    {"kind": "likert5", "text": "I would try it.", "labels": ["SD", "D", "N", "A", "SA"]},
    {"kind": "nps", "text": "Would you recommend it?"},
    {"kind": "single", "text": "Which size?", "options": ["Small", "Large"]},
    {"kind": "multiple", "text": "When?", "options": ["Breakfast", "Lunch", "Dinner"]},
    {"kind": "open", "text": "What would make you switch?"},
]


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def _answer(respondent: Respondent, question: dict, position: int, rng: random.Random) -> Answer:
    answer = Answer(respondent=respondent, question_id=question["id"], shown_position=position, text="Fine by me.")
    if question["kind"] in ("likert5", "nps"):
        points = 5 if question["kind"] == "likert5" else 11
        weights = [rng.random() + 0.01 for _ in range(points)]
        answer.pmf = [w / sum(weights) for w in weights]
        values = range(1, 6) if points == 5 else range(11)
        answer.expected = sum(p * v for p, v in zip(answer.pmf, values, strict=True))
    elif question["kind"] in ("single", "multiple"):
        answer.choices = [rng.choice(question["options"])]
    return answer


def _finished_run(owner, respondents: int, seed: int = 1) -> Run:
    """A run as the runner leaves it, written directly: no model needed to read results."""
    rng = random.Random(seed)
    survey = survey_create(owner=owner, title="Oat milk", questions=QUESTIONS)
    now = timezone.now()
    job = Job.objects.create(owner=owner, kind="survey_run", state=JobState.DONE, started_at=now, finished_at=now)
    questions = frozen_questions(survey)
    run = Run.objects.create(
        survey=survey, owner=owner, job=job, questions=questions, title=survey.title, seed=seed, unit_cost=1
    )
    for index in range(respondents):
        profile = {"name": f"Person {index}", "age": 20 + 5 * index, "gender": ("female", "male")[index % 2]}
        respondent = Respondent.objects.create(
            run=run, position=index, profile=profile, state=RespondentState.DONE, finished_at=now
        )
        Answer.objects.bulk_create(_answer(respondent, q, n, rng) for n, q in enumerate(questions, start=1))
    return Run.objects.select_related("job").get(pk=run.pk)


def _same(a: dict, b: dict) -> bool:
    # Through JSON: an interval of one respondent is NaN, which is never == itself.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_a_finished_run_is_computed_once_then_read_from_the_cache(owner, monkeypatch):
    run = _finished_run(owner, 6)
    first = run_results(run)
    assert first["respondents"] == 6 and first["questions"][0]["scale"]["n"] == 6
    monkeypatch.setattr(survey_results, "compute_results", lambda run: pytest.fail("computed again"))
    with CaptureQueriesContext(connection) as queries:
        again = run_results(run)
    assert len(queries) == 1  # only the cache key's state
    assert _same(again, first)


def test_cached_results_are_the_results_computed_afresh(owner):
    run = _finished_run(owner, 8)
    computed = run_results(run)
    cached = run_results(run)
    assert _same(cached, computed) and _same(cached, compute_results(run))


def test_a_new_answer_makes_a_new_key_and_fresh_results(owner):
    run = _finished_run(owner, 5)
    before = run_results(run)
    key = results_cache_key(run)
    respondent = Respondent.objects.create(
        run=run, position=9, profile={"name": "Late", "age": 70}, state=RespondentState.DONE
    )
    Answer.objects.create(
        respondent=respondent,
        question_id=run.questions[0]["id"],
        shown_position=1,
        text="Yes, absolutely.",
        pmf=[0, 0, 0, 0, 1],
        expected=5.0,
    )
    assert results_cache_key(run) != key
    after = run_results(run)
    assert (before["respondents"], after["respondents"]) == (5, 6)
    assert after["questions"][0]["scale"]["n"] == 6
    assert after["questions"][0]["scale"]["mean"]["mean"] > before["questions"][0]["scale"]["mean"]["mean"]
    # A respondent still answering (not done) changes nothing.
    key = results_cache_key(run)
    Respondent.objects.create(run=run, position=10, profile={}, state=RespondentState.RUNNING)
    assert results_cache_key(run) == key
    assert _same(run_results(run), after)


def test_a_replaced_answer_makes_a_new_key_though_the_counts_stay(owner):
    run = _finished_run(owner, 4)
    before = run_results(run)
    old = Answer.objects.filter(respondent__run=run, question_id=run.questions[0]["id"]).first()
    old.delete()
    Answer.objects.create(
        respondent_id=old.respondent_id, question_id=old.question_id, shown_position=1, text="Love it.",
        pmf=[0, 0, 0, 0, 1], expected=5.0,
    )  # fmt: skip
    after = run_results(run)
    assert after["respondents"] == before["respondents"] == 4
    assert after["questions"][0]["scale"]["mean"] != before["questions"][0]["scale"]["mean"]


def test_an_answer_marked_refused_counts_once_the_key_moves(owner):
    run = _finished_run(owner, 4)
    run_results(run)
    respondent = Respondent.objects.create(run=run, position=5, profile={"name": "Quiet"}, state=RespondentState.DONE)
    Answer.objects.create(
        respondent=respondent,
        question_id=run.questions[0]["id"],
        shown_position=1,
        text="I'd rather not say.",
        status=AnswerStatus.REFUSED,
    )
    assert run_results(run)["questions"][0]["refused"] == 1


def _page_queries(client, run) -> tuple[int, int, str]:
    url = reverse("surveys:run", kwargs={"run_id": run.pk})
    with CaptureQueriesContext(connection) as cold:
        response = client.get(url)
    assert response.status_code == 200
    with CaptureQueriesContext(connection) as warm:
        client.get(url)
    return len(cold), len(warm), response.content.decode()


def test_the_results_page_costs_the_same_queries_for_4_respondents_as_for_16(owner, client):
    client.force_login(owner)
    client.get(reverse("surveys:index"))  # the session and settings a first request loads, out of the count
    # One run page first: what a process looks up once and keeps (content types) stays out of the count.
    _page_queries(client, _finished_run(owner, 2, seed=3))
    small = _page_queries(client, _finished_run(owner, 4))
    large = _page_queries(client, _finished_run(owner, 16, seed=2))
    assert small[:2] == large[:2]
    assert large[1] <= large[0]  # warm: the results come from the cache


def test_the_page_links_every_respondent_and_open_answer_to_its_page(owner, client):
    client.force_login(owner)
    run = _finished_run(owner, 3)
    html = _page_queries(client, run)[2]
    for respondent in run.respondents.all():
        url = reverse("surveys:respondent", kwargs={"run_id": run.pk, "respondent_id": respondent.pk})
        # Once in the respondents table, once beside the open answer.
        assert html.count(f'href="{url}"') == 2
