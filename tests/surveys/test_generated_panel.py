"""A survey run on a generated panel: the personas are generated first (as persona generation does, and
charged as it is), then the run starts on them by itself; bad input, a failed or cancelled generation, a
dead worker and another user's requests leave nothing started and nothing reserved for the run."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import CreditTransaction
from billing.selectors import credits_balance, ledger_is_consistent
from billing.services import credits_grant
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, InsufficientCredits
from cohorta.jobs.models import Job, JobState
from cohorta.jobs.services import job_cancel, job_progress, job_run, job_transition, jobs_reap
from personas.models import Folder, GenerationBrief, Persona
from surveys import services
from surveys.models import Respondent, RespondentState, Run
from surveys.panel import PanelProgress, panel_status

pytestmark = pytest.mark.django_db(transaction=True)

AUDIENCE = "UK parents of young children who buy plant milk for the family every week."
QUESTIONS = [
    {"kind": "likert5", "text": "The price of £2.40 a litre is fair.", "labels": ["SD", "D", "N", "A", "SA"]},
    {"kind": "single", "text": "Which would you buy?", "options": ["Basic", "Premium", "Neither"]},
]
FUNDS = 300


@pytest.fixture
def funded(owner):
    credits_grant(user=owner, amount=FUNDS, idempotency_key="test:fund")
    return owner


@pytest.fixture
def deferred_jobs(monkeypatch):
    """Queue jobs instead of running them inline, so a test can look at a run before its panel is ready."""
    queued = []
    monkeypatch.setattr("cohorta.jobs.tasks.run_job.apply_async", lambda args, **kw: queued.append(args[0]))
    return queued


def _survey(owner, questions=QUESTIONS):
    return services.survey_create(owner=owner, title="Oat milk", intro="A new oat milk.", questions=questions)


def _spent(owner) -> int:
    return FUNDS - credits_balance(user=owner)


def _run_reservations() -> int:
    return CreditTransaction.objects.filter(idempotency_key__startswith="survey-run:").count()


def _nothing_made(owner) -> None:
    assert not Run.objects.exists() and not Job.objects.exists()
    assert not GenerationBrief.objects.exists() and not Folder.objects.exists()
    assert _spent(owner) == 0


def test_a_run_on_a_generated_panel_goes_end_to_end_offline(funded):
    """No AI configured: the simulator generates the six personas, then they answer."""
    survey = _survey(funded)
    run = services.run_start(survey=survey, generate={"description": AUDIENCE, "size": 6})
    run.refresh_from_db()
    assert run.job is not None and run.job.state == JobState.DONE, run.not_started or run.job.error
    assert not run.not_started
    folder = run.panel_folder
    assert folder.name == "Oat milk panel" and run.panel_label == "Oat milk panel"
    personas = list(Persona.objects.filter(folder=folder))
    assert len(personas) == 6 and all(p.simulated for p in personas)
    assert [b.count for b in run.panel_briefs.all()] == [6]
    assert {b.description for b in run.panel_briefs.all()} == {AUDIENCE}
    respondents = list(Respondent.objects.filter(run=run))
    assert {r.persona_id for r in respondents} == {p.pk for p in personas}
    assert {r.state for r in respondents} == {RespondentState.DONE}
    assert all(r.answers.count() == 2 for r in respondents)
    # Six personas at the persona price, then six respondents at one block each; nothing refunded.
    app = get_app_settings()
    assert _spent(funded) == 6 * app.persona_credit_cost + 6 * run.unit_cost
    assert CreditTransaction.objects.get(idempotency_key=f"survey-run:{run.pk}:reserve").delta == -6 * run.unit_cost
    assert ledger_is_consistent(user=funded)
    status = panel_status(run)
    assert (status["state"], status["generated"], status["done"]) == ("done", 6, 6)
    panel_job = run.panel_job
    assert panel_job.kind == "survey_panel" and panel_job.state == JobState.DONE
    assert panel_job.result["run_started"] is True


def test_a_large_panel_is_generated_in_briefs_one_after_another_without_repeating_names(funded):
    survey = _survey(funded, questions=QUESTIONS[:1])
    run = services.run_start(survey=survey, generate={"description": AUDIENCE, "size": 25})
    run.refresh_from_db()
    assert run.job.state == JobState.DONE, run.not_started
    briefs = list(GenerationBrief.objects.filter(pk__in=run.panel_briefs.values("pk")).order_by("pk"))
    assert [b.count for b in briefs] == [13, 12]
    # Each brief had its own job, the second created by the first as it finished.
    jobs = [b.job for b in briefs]
    assert all(job.kind == "survey_panel" and job.state == JobState.DONE for job in jobs)
    assert jobs[0].result["next"] == 1 and jobs[1].result["run_started"] is True
    assert (jobs[0].progress_done, jobs[0].progress_total) == (13, 25)
    assert jobs[1].progress_done == jobs[1].progress_total == 25
    names = list(Persona.objects.filter(folder=run.panel_folder).values_list("name", flat=True))
    assert len(names) == 25 and len(set(names)) == 25
    assert Respondent.objects.filter(run=run, state=RespondentState.DONE).count() == 25


def test_a_brief_reports_its_progress_as_the_panel_s():
    reported = []

    class Ctx:
        def progress(self, done=None, total=None, message=None):
            reported.append((done, total, message))

    progress = PanelProgress(Ctx(), offset=13, size=25)
    progress.progress(0, 12, "Sketching 12 people…")
    progress.progress(5, 12, "5 of 12 ready")
    assert reported == [
        (13, 25, "Generating 25 personas… 13 done · Sketching 12 people…"),
        (18, 25, "Generating 25 personas… 18 done"),
    ]
    assert services.brief_chunks(50) == [17, 17, 16] and services.brief_chunks(20) == [20]
    assert services.brief_chunks(5) == [5] and sum(services.brief_chunks(500)) == 500


def test_a_second_generated_panel_gets_its_own_folder(funded):
    survey = _survey(funded)
    first = services.run_start(survey=survey, generate={"description": AUDIENCE, "size": 5})
    second = services.run_start(survey=survey, generate={"description": AUDIENCE, "size": 5})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.panel_folder.name, second.panel_folder.name) == ("Oat milk panel", "Oat milk panel (2)")
    assert Persona.objects.filter(folder=second.panel_folder).count() == 5


@pytest.mark.parametrize(
    ("generate", "field"),
    [
        ({"description": AUDIENCE, "size": 0}, "panel_size"),
        ({"description": AUDIENCE, "size": 4}, "panel_size"),
        ({"description": AUDIENCE, "size": 41}, "panel_size"),
        ({"description": AUDIENCE, "size": "many"}, "panel_size"),
        ({"description": "", "size": 6}, "panel_description"),
        ({"description": "   people ", "size": 6}, "panel_description"),
    ],
)
def test_bad_generated_panel_input_is_refused_clearly_and_charges_nothing(funded, generate, field):
    app = get_app_settings()
    app.survey_max_panel = 40
    app.save()
    with pytest.raises(ApplicationError) as info:
        services.run_start(survey=_survey(funded), generate=generate)
    assert info.value.status_code == 400 and field in info.value.extra["fields"]
    assert "personas" in info.value.message or "Describe" in info.value.message
    if field == "panel_size":
        assert "5 to 40" in info.value.message
    _nothing_made(funded)


def test_an_empty_questionnaire_is_refused_before_anything_is_generated(funded):
    survey = services.survey_create(owner=funded, title="Empty")
    with pytest.raises(ApplicationError) as info:
        services.run_start(survey=survey, generate={"description": AUDIENCE, "size": 6})
    assert info.value.code == "empty_questionnaire"
    _nothing_made(funded)


def test_too_few_credits_for_the_panel_and_its_run_is_a_402_before_anything(owner):
    app = get_app_settings()
    need_generation = 6 * app.persona_credit_cost
    # Enough to generate the panel, not to run the survey on it as well.
    credits_grant(user=owner, amount=need_generation, idempotency_key="test:some")
    survey = _survey(owner)
    with pytest.raises(InsufficientCredits) as info:
        services.run_start(survey=survey, generate={"description": AUDIENCE, "size": 6})
    assert info.value.status_code == 402
    assert info.value.extra == {"required": need_generation + 6, "balance": need_generation}
    assert "to generate 6 personas" in info.value.message
    assert not Run.objects.exists() and not GenerationBrief.objects.exists() and not Job.objects.exists()
    assert credits_balance(user=owner) == need_generation


def test_a_failed_generation_leaves_the_run_not_started_saying_why_with_nothing_reserved(funded, fake_llm):
    fake_llm.add_fault("server_error", times=3)  # the sketch call and its retries
    run = services.run_start(survey=_survey(funded), generate={"description": AUDIENCE, "size": 6})
    run.refresh_from_db()
    assert run.job is None and not run.generating
    assert run.panel_job.state == JobState.FAILED
    assert run.not_started.startswith("The panel could not be generated:")
    assert "Nothing was charged for the survey run" in run.not_started
    assert not Respondent.objects.filter(run=run).exists()
    assert _run_reservations() == 0
    assert _spent(funded) == 0 and ledger_is_consistent(user=funded)  # the generation was refunded in full
    status = panel_status(run)
    assert status["state"] == "failed" and status["reason"] == run.not_started


def test_a_generation_failing_in_its_second_brief_keeps_the_first_and_refunds_the_rest(funded, fake_llm, deferred_jobs):
    run = services.run_start(survey=_survey(funded), generate={"description": AUDIENCE, "size": 25})
    job_run(job_id=deferred_jobs.pop(0))  # the first brief: 13 personas, then it queues the second
    run.refresh_from_db()
    assert run.generating and Persona.objects.filter(folder=run.panel_folder).count() == 13
    fake_llm.add_fault("server_error", times=3)  # the second brief's sketch and its retries
    job_run(job_id=deferred_jobs.pop(0))
    run.refresh_from_db()
    assert run.panel_job.state == JobState.FAILED and run.job is None
    assert "The 13 personas generated before it stopped are in the folder “Oat milk panel”" in run.not_started
    # The 13 delivered are paid for; the 12 never generated are refunded; nothing is reserved for the run.
    assert _spent(funded) == 13 * get_app_settings().persona_credit_cost
    assert _run_reservations() == 0 and ledger_is_consistent(user=funded)


def test_cancelling_the_generation_before_it_starts_refunds_it_and_the_run_never_starts(funded, deferred_jobs):
    run = services.run_start(survey=_survey(funded), generate={"description": AUDIENCE, "size": 6})
    run.refresh_from_db()
    assert run.generating and run.panel_job.state == JobState.QUEUED
    assert _spent(funded) == 6 * get_app_settings().persona_credit_cost  # the generation is reserved now
    job_cancel(job=run.panel_job)
    run.refresh_from_db()
    assert not run.generating and run.job is None
    assert run.not_started.startswith("You cancelled the panel's generation.")
    assert "No persona was generated" in run.not_started
    assert _spent(funded) == 0 and _run_reservations() == 0 and ledger_is_consistent(user=funded)


def test_a_panel_whose_worker_died_is_refunded_and_its_run_never_starts(funded, deferred_jobs, settings):
    run = services.run_start(survey=_survey(funded), generate={"description": AUDIENCE, "size": 6})
    run.refresh_from_db()
    job = job_transition(job=run.panel_job, to=JobState.RUNNING)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert jobs_reap() == 1
    run.refresh_from_db()
    assert run.panel_job.state == JobState.INTERRUPTED and run.job is None
    assert run.not_started.startswith("The worker generating the panel stopped responding.")
    assert _spent(funded) == 0 and _run_reservations() == 0


def test_the_run_page_shows_the_generation_first(funded, client, deferred_jobs):
    client.force_login(funded)
    survey = _survey(funded)
    response = client.post(
        reverse("surveys:run_start", args=[survey.pk]),
        {"panel": "generate", "panel_description": AUDIENCE, "panel_size": "6"},
    )
    run = Run.objects.get()
    assert response.status_code == 302 and response.url == reverse("surveys:run", args=[run.pk])
    job = job_transition(job=run.panel_job, to=JobState.RUNNING)
    job_progress(job_id=job.pk, done=2, total=6, message="Generating 6 personas… 2 done")
    html = client.get(reverse("surveys:run", args=[run.pk])).content.decode()
    assert "Generating 6 personas… 2 done" in html and "Generating the panel" in html
    assert "Step 1 of 2" in html and "Oat milk panel" in html
    assert reverse("jobs_cancel", args=[job.pk]) in html
    partial = client.get(reverse("surveys:run_progress", args=[run.pk])).content.decode()
    assert "Generating 6 personas… 2 done" in partial and "hx-get" in partial
    # The builder lists the run as generating.
    assert "Generating the panel" in client.get(reverse("surveys:detail", args=[survey.pk])).content.decode()


def test_a_run_that_did_not_start_says_why_on_its_page(funded, client, fake_llm):
    client.force_login(funded)
    fake_llm.add_fault("server_error", times=3)
    run = services.run_start(survey=_survey(funded), generate={"description": AUDIENCE, "size": 6})
    html = client.get(reverse("surveys:run", args=[run.pk])).content.decode()
    assert "The survey did not run." in html and "The panel could not be generated" in html
    assert "Not started" in html and "Export CSV" not in html


def test_bad_input_on_the_page_is_shown_in_the_run_panel_and_keeps_what_was_typed(funded, client):
    client.force_login(funded)
    survey = _survey(funded)
    response = client.post(
        reverse("surveys:run_start", args=[survey.pk]),
        {"panel": "generate", "panel_description": AUDIENCE, "panel_size": "0"},
    )
    html = response.content.decode()
    assert response.status_code == 400
    high = get_app_settings().survey_max_panel
    assert f"A generated panel has 5 to {high} personas; you asked for 0." in html
    assert 'id="panel-size" name="panel_size" value="0"' in html and "is-invalid" in html
    assert AUDIENCE in html and 'value="generate" id="panel-generate" checked' in html
    _nothing_made(funded)


def test_the_api_runs_on_a_generated_panel(funded, owner_api):
    survey = _survey(funded)
    url = reverse("api:survey-runs", args=[survey.pk])
    response = owner_api.post(url, {"panel": {"generate": {"description": AUDIENCE, "size": 5}}}, format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    # Eager in tests: by the time it answers, the panel is generated and the run has started.
    run = Run.objects.get(pk=data["id"])
    assert data["generated_panel"]["size"] == 5 and data["generated_panel"]["folder"] == "Oat milk panel"
    detail = owner_api.get(reverse("api:survey-run-detail", args=[run.pk])).json()
    assert detail["state"] == JobState.DONE and detail["generated_panel"]["state"] == "done"
    assert detail["progress"]["done"] == 5


def test_the_api_refuses_bad_generated_panels_with_nothing_charged(funded, owner_api):
    survey = _survey(funded)
    url = reverse("api:survey-runs", args=[survey.pk])
    response = owner_api.post(url, {"panel": {"generate": {"description": "", "size": 6}}}, format="json")
    assert response.status_code == 400 and "panel_description" in response.content.decode()
    response = owner_api.post(url, {"panel": {"generate": {"description": AUDIENCE, "size": 0}}}, format="json")
    assert response.status_code == 400 and "panel_size" in response.content.decode()
    _nothing_made(funded)


def test_the_schema_documents_the_generated_panel(owner_api):
    schema = owner_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = schema["components"]["schemas"]
    assert set(components["GeneratePanelRequest"]["properties"]) == {"description", "size"}
    assert "generate" in components["PanelRequest"]["properties"]
    assert "panel" in components["RunStartRequest"]["properties"]
    assert "generated_panel" in components["Run"]["properties"]
    assert {"state", "done", "size", "reason"} <= set(components["GeneratedPanelStatus"]["properties"])


def test_another_user_cannot_see_or_start_or_cancel_it(funded, other_user, client, deferred_jobs):
    survey = _survey(funded)
    run = services.run_start(survey=survey, generate={"description": AUDIENCE, "size": 6})
    client.force_login(other_user)
    assert client.get(reverse("surveys:run", args=[run.pk])).status_code == 404
    assert client.get(reverse("surveys:run_progress", args=[run.pk])).status_code == 404
    started = client.post(
        reverse("surveys:run_start", args=[survey.pk]),
        {"panel": "generate", "panel_description": AUDIENCE, "panel_size": "6"},
    )
    assert started.status_code == 404
    assert client.post(reverse("jobs_cancel", args=[run.panel_job_id])).status_code == 404
    api = client  # the session works for the API too
    assert api.get(reverse("api:survey-run-detail", args=[run.pk])).status_code == 404
    response = api.post(
        reverse("api:survey-runs", args=[survey.pk]),
        {"panel": {"generate": {"description": AUDIENCE, "size": 6}}},
        content_type="application/json",
    )
    assert response.status_code == 404
    assert Run.objects.count() == 1 and GenerationBrief.objects.count() == 1
    assert Job.objects.get(pk=run.panel_job_id).state == JobState.QUEUED
