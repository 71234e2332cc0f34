"""Survey runs against the fake LLM: build → run → results → export, with credits, limits and failures."""

import csv
import io
import json
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import CreditTransaction
from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, InsufficientCredits
from cohorta.jobs.models import JobState
from surveys import runner, services
from surveys.models import Answer, AnswerStatus, Respondent, RespondentState
from surveys.results import run_results
from tests.personas.factories import FolderFactory, PersonaFactory
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)

QUESTIONS = [
    {"kind": "likert5", "text": "The price of £2.40 a litre is fair.", "labels": ["SD", "D", "N", "A", "SA"]},
    {
        "kind": "single",
        "text": "Which would you buy?",
        "options": ["Basic", "Premium", "Neither"],
        "randomize_options": True,
    },
    {"kind": "nps", "text": "How likely are you to recommend it?"},
    {"kind": "open", "text": "What would change your mind?"},
]


@pytest.fixture
def funded(owner):
    credits_grant(user=owner, amount=200, idempotency_key="test:fund")
    return owner


@pytest.fixture
def panel(funded):
    folder = FolderFactory(owner=funded, name="Panel")
    for _ in range(5):
        PersonaFactory(owner=funded, folder=folder)
    return folder


def _survey(owner, questions=QUESTIONS, **kwargs):
    return services.survey_create(owner=owner, title="Oat milk", intro="A new oat milk.", questions=questions, **kwargs)


def test_a_run_asks_every_persona_every_question_and_charges_per_respondent(funded, panel, fake_llm):
    survey = _survey(funded, randomize_questions=True)
    before = credits_balance(user=funded)
    run = services.run_start(survey=survey, folder=panel)
    run.refresh_from_db()
    assert run.job.state == JobState.DONE, run.job.error
    assert run.job.progress_done == run.job.progress_total == 5
    respondents = list(Respondent.objects.filter(run=run))
    assert {r.state for r in respondents} == {RespondentState.DONE}
    question_ids = sorted(q["id"] for q in run.questions)
    for respondent in respondents:
        assert sorted(respondent.question_order) == question_ids  # every question, in a recorded order
        answers = {a.question_id: a for a in respondent.answers.all()}
        assert sorted(answers) == question_ids
        assert [answers[qid].shown_position for qid in respondent.question_order] == [1, 2, 3, 4]
    likert = Answer.objects.filter(respondent__run=run, question_id=run.questions[0]["id"], status=AnswerStatus.OK)
    for answer in likert:
        assert len(answer.pmf) == 5 and abs(sum(answer.pmf) - 1) < 1e-6
        assert 1 <= answer.expected <= 5
    choice = Answer.objects.filter(respondent__run=run, question_id=run.questions[1]["id"]).first()
    assert sorted(choice.option_order) == ["Basic", "Neither", "Premium"]
    # 4 questions = one block of 10: 1 credit per respondent, nothing refunded.
    assert run.unit_cost == 1
    assert credits_balance(user=funded) == before - 5
    results = run_results(run)
    scale = results["questions"][0]["scale"]
    assert scale["mean"]["low"] <= scale["mean"]["mean"] <= scale["mean"]["high"]
    assert results["resamples"] >= 1000
    assert len(results["questions"][0]["segments"]) >= 1


def test_each_respondent_sends_its_scale_answers_in_one_embedding_request(funded, panel, fake_llm):
    questions = [*QUESTIONS, {"kind": "likert7", "text": "It tastes like milk.", "labels": list("1234567")}]
    run = services.run_start(survey=_survey(funded, questions=questions), folder=panel)
    assert run.respondents.filter(state=RespondentState.DONE).count() == 5
    # 3 scale questions each, 5 respondents: 5 requests (not 15), each carrying that respondent's 3 answers.
    sent = [r.body["input"] for r in fake_llm.requests if r.path == "/v1/embeddings"]
    assert len(sent) == 5
    scale_ids = [q["id"] for q in run.questions if q["kind"] in ("likert5", "likert7", "nps")]
    for respondent in run.respondents.all():
        answers = respondent.answers.filter(question_id__in=scale_ids, status=AnswerStatus.OK)
        texts = set(answers.values_list("text", flat=True))
        assert len(texts) == 3 and any(texts <= set(request) for request in sent)
    events = UsageEvent.objects.filter(feature="survey_rating", user=funded)
    assert events.count() == 5 and {e.job_id for e in events} == {run.job_id}


def test_the_export_has_a_row_per_respondent_and_question(funded, panel, fake_llm, client):
    run = services.run_start(survey=_survey(funded), folder=panel)
    client.force_login(funded)
    response = client.get(reverse("surveys:export", kwargs={"run_id": run.pk, "fmt": "csv"}))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 5 * 4
    assert {"answer", "distribution", "expected_value", "position_shown", "options_order_shown"} <= set(rows[0])
    data = json.loads(client.get(reverse("surveys:export", kwargs={"run_id": run.pk, "fmt": "json"})).content)
    assert len(data["respondents"]) == 5 and data["results"]["questions"]


def test_an_empty_questionnaire_cannot_run(funded, panel):
    survey = services.survey_create(owner=funded, title="Empty")
    with pytest.raises(ApplicationError) as exc:
        services.run_start(survey=survey, folder=panel)
    assert exc.value.code == "empty_questionnaire"


def test_a_panel_of_none_or_over_the_limit_is_refused_and_costs_nothing(funded, panel):
    survey = _survey(funded)
    empty = FolderFactory(owner=funded, name="Empty")
    with pytest.raises(ApplicationError) as exc:
        services.run_start(survey=survey, folder=empty)
    assert exc.value.code == "empty_panel"
    with pytest.raises(ApplicationError) as exc:
        services.run_start(survey=survey, persona_ids=[])
    assert exc.value.code == "empty_panel"
    app = get_app_settings()
    app.survey_max_panel = 4
    app.save()
    with pytest.raises(ApplicationError) as exc:
        services.run_start(survey=survey, folder=panel)
    assert exc.value.code == "panel_too_large" and "at most 4" in exc.value.message
    assert not CreditTransaction.objects.filter(idempotency_key__startswith="survey-run:").exists()


def test_too_few_credits_is_a_402_before_any_work(owner, panel, fake_llm):
    survey = _survey(owner)
    owner_balance = credits_balance(user=owner)
    app = get_app_settings()
    app.survey_credits_per_block = owner_balance  # 5 respondents × the whole balance
    app.save()
    with pytest.raises(InsufficientCredits):
        services.run_start(survey=survey, folder=panel)
    assert not fake_llm.requests and survey.runs.count() == 0


def test_the_budget_running_out_mid_run_fails_the_rest_cleanly_and_refunds_them(funded, panel, fake_llm):
    funded.monthly_quota_usd = Decimal("0.01")  # the first call passes (nothing spent yet)…
    funded.save()
    fake_llm.reasoning_tokens = 400  # …and each answer costs about half a cent (gpt-5.4 at $15 per 1M out)
    app = get_app_settings()
    app.survey_parallelism = 1
    app.save()
    before = credits_balance(user=funded)
    run = services.run_start(survey=_survey(funded), folder=panel)
    run.refresh_from_db()
    states = sorted(Respondent.objects.filter(run=run).values_list("state", flat=True))
    done = states.count(RespondentState.DONE)
    assert 1 <= done < 5
    assert states.count(RespondentState.FAILED) == 5 - done
    assert run.stop_reason == "quota"
    assert all(
        "budget ran out" in e
        for e in Respondent.objects.filter(run=run, state="failed").values_list("error", flat=True)
    )
    assert credits_balance(user=funded) == before - done  # only those who answered are paid for
    assert run.job.state == JobState.DONE


def test_a_respondent_with_only_empty_or_refused_answers_fails_and_is_refunded(funded, fake_llm):
    persona = PersonaFactory(owner=funded)
    survey = _survey(funded, questions=QUESTIONS[:1] + QUESTIONS[3:])
    ids = [q.pk for q in survey.questions.all()]
    content = {f"q{ids[0]}": {"answer": "  ", "rating": 3}, f"q{ids[1]}": {"answer": "As an AI, I can't answer that."}}
    fake_llm.add_fault("invalid_output", content=json.dumps(content))
    before = credits_balance(user=funded)
    run = services.run_start(survey=survey, persona_ids=[persona.pk])
    respondent = Respondent.objects.get(run=run)
    assert respondent.state == RespondentState.FAILED and "no usable answer" in respondent.error
    assert credits_balance(user=funded) == before
    assert not Answer.objects.filter(respondent=respondent).exists()


def test_a_refused_answer_is_kept_but_not_rated(funded, fake_llm):
    persona = PersonaFactory(owner=funded)
    survey = _survey(funded, questions=QUESTIONS[:1] + QUESTIONS[3:])
    ids = [q.pk for q in survey.questions.all()]
    content = {f"q{ids[0]}": {"answer": "I'd rather not say.", "rating": 3}, f"q{ids[1]}": {"answer": "A lower price."}}
    fake_llm.add_fault("invalid_output", content=json.dumps(content))
    run = services.run_start(survey=survey, persona_ids=[persona.pk])
    answers = {a.question_id: a for a in Answer.objects.filter(respondent__run=run)}
    assert answers[ids[0]].status == AnswerStatus.REFUSED and answers[ids[0]].pmf is None
    assert answers[ids[1]].status == AnswerStatus.OK
    assert run_results(run)["questions"][0]["refused"] == 1


def test_a_run_whose_worker_died_refunds_every_respondent_not_delivered(funded, panel):
    before = credits_balance(user=funded)
    run = services.run_start(survey=_survey(funded), folder=panel)
    assert credits_balance(user=funded) == before - 5
    # As if its worker died early: one respondent mid-answer, the others never handed out.
    Respondent.objects.filter(run=run).update(state=RespondentState.PENDING)
    Respondent.objects.filter(run=run, position=0).update(state=RespondentState.RUNNING)
    assert runner.run_settle(run) == 5
    assert runner.run_settle(run) == 0  # idempotent
    assert credits_balance(user=funded) == before
    assert set(Respondent.objects.filter(run=run).values_list("state", flat=True)) == {RespondentState.CANCELLED}
    # A late answer from the respondent that was running is discarded, not saved.
    late = Respondent.objects.get(run=run, position=0).pk
    assert runner.respondent_answer(respondent_id=late, dispatch=lambda _: None) == "not-claimed"


def test_the_embedding_provider_failing_fails_the_respondent_with_a_typed_error_and_refunds_it(funded, fake_llm):
    """The answer call succeeds, then every rating request fails: the gateway retries, gives up with a typed
    error, and the respondent fails with that reason and its credit back; nothing half-rated is saved."""
    persona = PersonaFactory(owner=funded)
    survey = _survey(funded, questions=QUESTIONS[:1] + QUESTIONS[3:])
    fake_llm.add_fault("no_usage")  # the answer call: a normal answer
    fake_llm.add_fault("server_error", times=20)  # every embeddings request after it
    before = credits_balance(user=funded)
    run = services.run_start(survey=survey, persona_ids=[persona.pk])
    respondent = Respondent.objects.get(run=run)
    assert respondent.state == RespondentState.FAILED, respondent.error
    assert respondent.error
    assert fake_llm.embedding_requests >= 2  # retried before giving up
    assert credits_balance(user=funded) == before
    assert not Answer.objects.filter(respondent=respondent).exists()
    failed = UsageEvent.objects.filter(feature="survey_rating", status="error")
    assert failed.exists()
