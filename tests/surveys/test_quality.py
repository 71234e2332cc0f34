"""The quality check of a survey run, end to end: asked for with the run or on a finished run, offline (the
simulator) and against the fake OpenAI server; test-retest κ, the leading-question pass, the judge, diversity;
credits reserved up front and refunded for what was not delivered; faults; cancel; owner-only."""

import csv
import io
import json
from collections import Counter

import numpy as np
import pytest
from django.urls import reverse

from billing.models import CreditTransaction
from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, InsufficientCredits
from cohorta.jobs.models import Job, JobState
from cohorta.jobs.services import job_cancel
from personas.models import PersonaCheck
from surveys import jobs as survey_jobs
from surveys import services
from surveys.models import Answer, LeadingAnswer, QualityCheck, Respondent, RespondentState, Run
from surveys.quality import kappa, measures
from surveys.quality import services as quality
from surveys.questionnaire import scale_values
from tests.personas.factories import FolderFactory, PersonaFactory
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)

QUESTIONS = [
    {"kind": "likert5", "text": "I would buy this oat milk.", "labels": ["SD", "D", "N", "A", "SA"]},
    {"kind": "single", "text": "Which size would you buy?", "options": ["Small", "Large", "Neither"]},
    {"kind": "open", "text": "What would put you off?"},
]
LEADING_SPEND = "Quality check of"


@pytest.fixture
def funded(owner):
    credits_grant(user=owner, amount=500, idempotency_key="test:fund")
    return owner


def _panel(owner, size: int):
    folder = FolderFactory(owner=owner, name=f"Panel of {size}")
    for _ in range(size):
        PersonaFactory(owner=owner, folder=folder)
    return folder


def _survey(owner, questions=QUESTIONS, **kwargs):
    return services.survey_create(owner=owner, title="Oat milk", intro="A new oat milk.", questions=questions, **kwargs)


def _check(run) -> QualityCheck:
    return QualityCheck.objects.select_related("job", "retest_run").get(run=run)


# --- κ from its definition -------------------------------------------------------------------------


def test_weighted_kappa_matches_a_hand_worked_example():
    # Six respondents, a 3-point scale. Table (rows: first run, columns: retest):
    #   [[2,0,0],[0,1,1],[1,0,1]]; row totals 2,2,2; column totals 3,1,2.
    # Unweighted: p_o = 4/6, p_e = (2·3 + 2·1 + 2·2)/36 = 1/3, κ = (2/3 − 1/3)/(2/3) = 0.5.
    # Quadratic weights w = (i−j)²/4: observed disagreement Σ w·O = 1/4 + 1 = 1.25; expected
    # Σ w·E = 9/12 + 5/12 + 13/12 = 2.25; κ_w = 1 − 1.25/2.25 = 4/9.
    first, second = [1, 1, 2, 2, 3, 3], [1, 1, 2, 3, 3, 1]
    weighted = kappa.cohen_kappa(first, second, [1, 2, 3], weighted=True)
    plain = kappa.cohen_kappa(first, second, [1, 2, 3], weighted=False)
    assert weighted.kappa == pytest.approx(4 / 9)
    assert plain.kappa == pytest.approx(0.5)
    assert weighted.agreement == pytest.approx(4 / 6) and weighted.n == 6
    assert weighted.low < weighted.kappa < weighted.high


def test_kappa_is_undefined_when_everyone_gives_one_answer_both_times():
    result = kappa.cohen_kappa([3] * 6, [3] * 6, [1, 2, 3, 4, 5], weighted=True)
    assert result.kappa is None and result.agreement == 1.0
    assert result.as_dict()["reading"] is None


@pytest.mark.parametrize(
    ("value", "word"),
    [(-0.1, "poor"), (0.1, "slight"), (0.3, "fair"), (0.5, "moderate"), (0.7, "substantial"), (0.9, "almost perfect")],
)
def test_landis_koch_readings(value, word):
    assert kappa.reading(value) == word


def test_ssr_ratings_become_the_nearest_scale_point():
    assert [measures.scale_point(v, "likert5") for v in (0.2, 1.49, 1.5, 4.7, 5.9)] == [1, 1, 2, 5, 5]
    assert measures.scale_point(10.4, "nps") == 10 and measures.scale_point(-0.3, "nps") == 0


# --- the check, offline ----------------------------------------------------------------------------


def test_a_check_asked_for_with_the_run_reserves_up_front_and_keeps_only_what_was_delivered(funded):
    app = get_app_settings()
    app.quality_credits_per_persona = 2
    app.save()
    survey = _survey(funded, randomize_questions=True)
    before = credits_balance(user=funded)
    run = quality.run_start_with_check(survey=survey, folder=_panel(funded, 6))
    run.refresh_from_db()
    assert run.job.state == JobState.DONE
    check = _check(run)
    assert check.job.state == JobState.DONE, check.job.error
    # Reserved: 6 × (retest 1 + leading 2 + judge 2); every part delivered for all six.
    reserve = CreditTransaction.objects.get(idempotency_key=f"survey-quality:{check.pk}:reserve")
    assert -reserve.delta == check.reserved == 6 * (1 + 2 + 2)
    assert check.delivered_leading == 6 and check.delivered_judge == 6
    assert credits_balance(user=funded) == before - 6 * 1 - 6 * 5
    # The retest is a normal, fresh run of the same frozen questions on the same six respondents.
    retest = check.retest_run
    assert retest.questions == run.questions and retest.seed != run.seed
    assert retest.job.state == JobState.DONE
    assert sorted(Respondent.objects.filter(run=retest).values_list("position", flat=True)) == list(range(6))
    assert retest.themes == {}  # a retest is not read for themes
    results = check.results
    likert, single, open_item = results["retest"]["items"]
    assert likert["weights"] == "quadratic" and single["weights"] == "none"
    assert open_item["kappa"] is None and "open answers" in open_item["note"]
    for item in (likert, single):
        assert item["n"] == 6
        assert item["reading_text"]
    # Sycophancy: the simulator leans toward what a leading question suggests.
    twin = check.twins[str(run.questions[0]["id"])]
    assert twin["text"].startswith("Most people") and not twin["error"]
    shift = results["leading"]["items"][0]
    assert shift["n"] == 6 and shift["shift"] is not None
    assert shift["share"] == pytest.approx(shift["shift"] / 4)
    assert LeadingAnswer.objects.filter(quality_check=check).count() == 6
    # The judge scored everyone, through the personas' judge.
    judge = results["judge"]
    assert judge["scored"] == 6 and 0 <= judge["mean_adherence"] <= 9
    assert PersonaCheck.objects.filter(source_kind="survey", source_id=run.pk).count() == 6
    # Diversity: the spread of the ratings and the distance between open answers.
    spread = results["diversity"]["scale"][0]
    ratings = [a.expected for a in Answer.objects.filter(respondent__run=run, question_id=run.questions[0]["id"])]
    assert spread["ssr"]["variance"] == pytest.approx(np.var(ratings, ddof=1))
    assert results["diversity"]["open"][0]["distance"] is not None
    assert UsageEvent.objects.filter(feature="quality_diversity", user=funded).exists()
    assert UsageEvent.objects.filter(feature="survey_leading_twin", user=funded).count() == 1


def test_kappa_per_item_is_computed_from_the_two_runs_answers(funded):
    run = services.run_start(survey=_survey(funded, randomize_questions=True), folder=_panel(funded, 8))
    check = quality.quality_start(run=run)
    check.refresh_from_db()
    item = check.results["retest"]["items"][0]
    qid = run.questions[0]["id"]
    first = {a.respondent.position: a.expected for a in Answer.objects.filter(respondent__run=run, question_id=qid)}
    second = {
        a.respondent.position: a.expected
        for a in Answer.objects.filter(respondent__run=check.retest_run, question_id=qid)
    }
    both = sorted(set(first) & set(second))
    # statsmodels' κ on our own table equals scikit-style κ from the definition, over every scale point.
    a = [measures.scale_point(first[k], "likert5") for k in both]
    b = [measures.scale_point(second[k], "likert5") for k in both]
    expected = kappa.cohen_kappa(a, b, scale_values("likert5"), weighted=True)
    assert item["n"] == len(both) == 8
    assert item["kappa"] == (pytest.approx(expected.kappa) if expected.kappa is not None else None)


def test_too_few_respondents_for_kappa_says_so_and_runs_no_retest(funded):
    run = services.run_start(survey=_survey(funded), folder=_panel(funded, 3))
    before = credits_balance(user=funded)
    check = quality.quality_start(run=run)
    check.refresh_from_db()
    assert check.job.state == JobState.DONE
    assert check.retest_run is None and "retest" not in check.parts
    assert "Too few respondents for κ: 3 answered" in check.results["skipped"]["retest"]
    # Reserved 3 × (1 + 1 + 1) with the retest, kept only the leading pass and the judge.
    assert credits_balance(user=funded) == before - 3 * 2
    assert Run.objects.filter(survey=run.survey).count() == 1


def test_a_check_on_a_run_still_going_or_where_nobody_answered_is_refused(funded):
    run = services.run_start(survey=_survey(funded), folder=_panel(funded, 2))
    Job.objects.filter(pk=run.job_id).update(state=JobState.RUNNING)
    with pytest.raises(ApplicationError) as exc:
        quality.quality_start(run=run)
    assert exc.value.code == "run_active" and exc.value.status_code == 409
    Job.objects.filter(pk=run.job_id).update(state=JobState.DONE)
    Respondent.objects.filter(run=run).update(state=RespondentState.FAILED)
    with pytest.raises(ApplicationError) as exc:
        quality.quality_start(run=run)
    assert exc.value.code == "nobody_answered"


def test_short_credits_are_a_402_and_nothing_starts(owner):
    credits_grant(user=owner, amount=6, idempotency_key="test:fund-small")
    survey = _survey(owner)
    folder = _panel(owner, 5)
    with pytest.raises(InsufficientCredits) as exc:
        quality.run_start_with_check(survey=survey, folder=folder)  # the run costs 5, the check 15 more
    assert "Checking quality needs 15 credits" in exc.value.message
    assert credits_balance(user=owner) == 6
    assert not Run.objects.exists() and not QualityCheck.objects.exists()


# --- against the fake OpenAI server ---------------------------------------------------------------------


def test_end_to_end_against_the_fake_server_with_exports_and_api(funded, fake_llm, client):
    survey = _survey(funded, randomize_questions=True)
    likert_id = survey.questions.order_by("position").first().pk
    # A reference variance for the scale item (from a human survey); junk keys are dropped.
    references = {str(likert_id): 1.5, "not-an-id": 2, "999": -1}
    run = quality.run_start_with_check(survey=survey, folder=_panel(funded, 6), reference_variances=references)
    check = _check(run)
    assert check.job.state == JobState.DONE, check.job.error
    assert check.reference_variances == {str(likert_id): 1.5}
    spread = check.results["diversity"]["scale"][0]
    compared = spread["direct"] or spread["ssr"]
    assert spread["reference"]["ratio"] == pytest.approx(compared["variance"] / 1.5)
    assert "against the reference" in spread["reading_text"]
    # Two full runs of six respondents, one twin, six leading passes, six judgements: each a call to the provider.
    calls = Counter(UsageEvent.objects.filter(user=funded, status="ok").values_list("feature", flat=True))
    assert calls["survey_answer"] == 12
    assert calls["survey_leading_twin"] == 1 and calls["survey_leading_answer"] == 6 and calls["persona_judge"] == 6
    client.force_login(funded)
    page = client.get(reverse("surveys:run", args=[run.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="quality"' in body and "Test-retest" in body
    rows = list(
        csv.DictReader(io.StringIO(client.get(reverse("surveys:export", args=[run.pk, "csv"])).content.decode()))
    )
    assert rows[0]["retest_expected_value"] != "" or rows[0]["question_type"] != "likert5"
    assert {"retest_answer", "leading_question", "leading_expected_value", "judge_adherence"} <= set(rows[0])
    data = json.loads(client.get(reverse("surveys:export", args=[run.pk, "json"])).content)
    assert data["quality"]["results"]["retest"]["items"][0]["id"] == run.questions[0]["id"]
    api = client.get(reverse("api:survey-run-quality", args=[run.pk]))
    assert api.status_code == 200 and api.json()["check"]["state"] == "done"


def test_a_judge_that_returns_garbage_leaves_a_failed_check_with_its_reason_and_no_score(funded, fake_llm):
    survey = _survey(funded)
    run = services.run_start(survey=survey, folder=_panel(funded, 3))
    before = credits_balance(user=funded)
    # The twin and three leading passes answer normally; every judge call (and its retry) gets garbage.
    original = survey_jobs.quality_runner.judge_persona

    def judge_with_garbage(**kwargs):
        fake_llm.add_fault("garbage_output", times=2)
        return original(**kwargs)

    survey_jobs.quality_runner.judge_persona = judge_with_garbage
    try:
        check = quality.quality_start(run=run)
    finally:
        survey_jobs.quality_runner.judge_persona = original
    check.refresh_from_db()
    judge = check.results["judge"]
    assert judge["scored"] == 0 and "mean_adherence" not in judge
    assert judge["error"].startswith("The quality judge gave no usable scores")
    for row in judge["respondents"]:
        assert row["adherence"] is None and row["consistency"] is None and row["error"]
    failed = PersonaCheck.objects.filter(source_kind="survey", source_id=run.pk)
    assert failed.count() == 3 and all(c.failed and not c.flagged for c in failed)
    # The other parts stand; the judge's credits (1 per respondent) came back.
    assert check.job.state == JobState.DONE
    assert check.delivered_judge == 0 and check.delivered_leading == 3
    assert credits_balance(user=funded) == before - 3


def test_a_provider_down_fails_the_check_and_refunds_every_credit(funded, fake_llm, settings):
    settings.LLM_MAX_RETRIES = 0
    run = services.run_start(survey=_survey(funded), folder=_panel(funded, 5))
    before = credits_balance(user=funded)
    fake_llm.add_fault("server_error", times=10_000)
    check = quality.quality_start(run=run)
    check.refresh_from_db()
    assert check.job.state == JobState.FAILED
    assert "Its credits were refunded" in check.job.error
    assert check.retest_run.job.state == JobState.DONE  # it ran, and everyone in it failed
    assert credits_balance(user=funded) == before


def test_cancelling_a_check_stops_its_retest_and_refunds_what_was_not_delivered(funded, monkeypatch):
    run = services.run_start(survey=_survey(funded), folder=_panel(funded, 5))
    before = credits_balance(user=funded)
    waiting: list[int] = []
    monkeypatch.setattr(survey_jobs, "dispatch_respondent", waiting.append)  # the retest's respondents wait
    check = quality.quality_start(run=run)
    check.refresh_from_db()
    assert check.job.state == JobState.RUNNING  # its own parts are done; it waits on the retest
    assert check.results["own_done"] and waiting
    job = job_cancel(job=check.job)
    assert job.state == JobState.CANCELLED
    check.refresh_from_db()
    assert check.settled
    assert check.retest_run.job.state == JobState.CANCELLED
    assert not Respondent.objects.filter(run=check.retest_run, state__in=("pending", "queued", "running")).exists()
    # Kept: the leading pass and the judge for five; the retest (nobody answered) refunded.
    assert credits_balance(user=funded) == before - 5 * 2


def test_a_check_waiting_for_a_run_that_is_cancelled_is_refunded(funded, monkeypatch):
    monkeypatch.setattr(survey_jobs, "dispatch_respondent", lambda respondent_id: None)
    before = credits_balance(user=funded)
    run = quality.run_start_with_check(survey=_survey(funded), folder=_panel(funded, 5))
    check = _check(run)
    assert check.waiting
    job_cancel(job=Job.objects.get(pk=run.job_id))
    check.refresh_from_db()
    assert check.not_started and check.settled and check.job is None
    assert credits_balance(user=funded) == before


# --- owner only -------------------------------------------------------------------------------------------


def test_another_user_gets_404_on_every_quality_page_and_endpoint(funded, other_user, client):
    run = quality.run_start_with_check(survey=_survey(funded), folder=_panel(funded, 2))
    client.force_login(other_user)
    for name, method in (
        ("surveys:run_quality", "post"),
        ("surveys:run_quality_status", "get"),
        ("api:survey-run-quality", "get"),
        ("api:survey-run-quality", "post"),
    ):
        response = getattr(client, method)(reverse(name, args=[run.pk]))
        assert response.status_code == 404, name
    assert QualityCheck.objects.filter(run=run).count() == 1
    for fmt in ("csv", "json"):
        assert client.get(reverse("surveys:export", args=[run.pk, fmt])).status_code == 404
