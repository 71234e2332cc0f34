"""Building a panel end to end against the fake LLM: sample, reserve, write each person in its own task,
check the sampled core survived, refund what was not delivered; then a survey on the panel."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, InsufficientCredits
from cohorta.jobs.models import Job, JobState
from cohorta.jobs.services import job_cancel, jobs_reap
from panels import jobs as panel_jobs
from panels import runner, services
from panels.cores import persona_fields
from panels.models import MemberState, Panel, PanelMember
from panels.population import Population
from personas.generation import persona_modify_start
from personas.models import SAMPLED_FIELDS, Folder, Persona
from surveys import services as survey_services
from surveys.models import Respondent, RespondentState, Survey
from surveys.results import run_results
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)

US = "bundled:us_adults"


@pytest.fixture
def funded(owner):
    credits_grant(user=owner, amount=500, idempotency_key="test:fund")
    return owner


@pytest.fixture
def sent(monkeypatch):
    """Member tasks sent to the broker wait here instead of running, as if every worker were busy."""
    queue: list[int] = []
    monkeypatch.setattr(panel_jobs, "dispatch_member", queue.append)
    return queue


def _expected_fields(panel: Panel, member: PanelMember) -> dict:
    population = Population.from_json(panel.target)
    return persona_fields(member.core, population, rng=random.Random(f"{panel.seed}:{member.position}"))


def test_a_light_panel_is_written_with_every_sampled_field_untouched(funded, fake_llm):
    before = credits_balance(user=funded)
    panel = services.panel_build_start(owner=funded, target=US, size=24, seed=7)
    panel.refresh_from_db()
    assert panel.job.state == JobState.DONE, panel.job.error
    assert panel.job.progress_done == panel.job.progress_total == 24
    members = list(panel.members.select_related("persona"))
    assert {m.state for m in members} == {MemberState.DONE}
    changed = 0
    for member in members:
        persona = member.persona
        expected = _expected_fields(panel, member)
        changed += sum(getattr(persona, field) != expected[field] for field in SAMPLED_FIELDS if field in expected)
        assert {item["key"]: item["value"] for item in persona.core} == member.core
        assert persona.folder_id == panel.folder_id
        assert persona.name and persona.occupation and persona.backstory
    assert changed == 0  # 0% of core fields changed by the model
    names = [m.persona.name for m in members]
    assert len(set(names)) == len(names)
    # One quick mini-model call per person, priced per light persona.
    assert UsageEvent.objects.filter(feature="persona_light", user=funded, status="ok").count() == 24
    assert credits_balance(user=funded) == before - 24 * get_app_settings().panel_light_credit_cost


def test_a_full_panel_uses_the_two_stage_profile(funded, fake_llm):
    panel = services.panel_build_start(owner=funded, target=US, size=3, depth="full", seed=3)
    panel.refresh_from_db()
    assert panel.job.state == JobState.DONE, panel.job.error
    assert UsageEvent.objects.filter(feature="persona_basic", user=funded).count() == 3
    assert UsageEvent.objects.filter(feature="persona_detail", user=funded).count() == 3
    for member in panel.members.select_related("persona"):
        expected = _expected_fields(panel, member)
        assert all(getattr(member.persona, f) == expected[f] for f in SAMPLED_FIELDS if f in expected)
        assert member.persona.goals  # the detailed profile's own fields
    assert panel.unit_cost == get_app_settings().persona_credit_cost


def test_the_same_target_and_seed_give_the_same_panel(funded, sent):
    quotas = [{"where": {"region": "Northeast"}, "at_least": 20}]
    one = services.panel_build_start(owner=funded, target=US, size=60, seed=42, quotas=quotas)
    two = services.panel_build_start(owner=funded, target=US, size=60, seed=42, quotas=quotas)
    other = services.panel_build_start(owner=funded, target=US, size=60, seed=43, quotas=quotas)
    cores = [list(p.members.order_by("position").values_list("core", flat=True)) for p in (one, two, other)]
    assert cores[0] == cores[1]
    assert cores[0] != cores[2]
    assert sum(core["region"] == "Northeast" for core in cores[0]) >= 20


def test_short_of_credits_is_a_402_before_any_work(owner):
    with pytest.raises(InsufficientCredits):
        services.panel_build_start(owner=owner, target=US, size=300)
    assert not Panel.objects.exists() and not Folder.objects.exists() and not Job.objects.exists()


@pytest.mark.parametrize("size", [0, -3, 1001, "many"])
def test_a_panel_of_none_or_over_the_limit_is_refused(funded, size):
    with pytest.raises(ApplicationError) as caught:
        services.panel_build_start(owner=funded, target=US, size=size)
    assert "1,000" in caught.value.message
    assert not Panel.objects.exists()


def test_the_admin_limit_applies(funded):
    app = get_app_settings()
    app.panel_max_size = 50
    app.save()
    with pytest.raises(ApplicationError, match="between 1 and 50"):
        services.panel_build_start(owner=funded, target=US, size=51)


def test_someone_elses_upload_is_not_a_target(funded, other_user):
    with pytest.raises(ApplicationError, match="Choose who the panel should represent"):
        services.panel_build_start(owner=other_user, target="marginals:1", size=5)


def test_a_person_the_provider_fails_is_refunded_and_the_rest_are_written(funded, fake_llm):
    fake_llm.add_fault("server_error", times=3)  # the first call and its two retries
    app = get_app_settings()
    app.panel_parallelism = 1
    app.save()
    before = credits_balance(user=funded)
    panel = services.panel_build_start(owner=funded, target=US, size=4, seed=1)
    panel.refresh_from_db()
    assert panel.job.state == JobState.DONE
    states = sorted(panel.members.values_list("state", flat=True))
    assert states == [MemberState.DONE] * 3 + [MemberState.FAILED]
    failed = panel.members.get(state=MemberState.FAILED)
    assert "refunded" in failed.error and failed.persona is None
    assert credits_balance(user=funded) == before - 3 * panel.unit_cost
    assert "3 of 4 personas written, 1 failed" in panel.job.progress_message


def test_cancelling_refunds_everyone_not_written(funded, sent, fake_llm):
    before = credits_balance(user=funded)
    panel = services.panel_build_start(owner=funded, target=US, size=20, seed=5)
    assert len(sent) == get_app_settings().panel_parallelism  # handed out, not waited for
    runner.member_write(member_id=sent.pop(0), dispatch=sent.append)
    job_cancel(job=Job.objects.get(pk=panel.job_id))
    for member_id in list(sent):
        assert runner.member_write(member_id=member_id, dispatch=sent.append) in ("not-claimed", "stopped")
    assert panel.members.filter(state=MemberState.DONE).count() == 1
    assert Persona.objects.filter(folder=panel.folder).count() == 1
    assert credits_balance(user=funded) == before - panel.unit_cost


def test_the_reaper_fails_a_member_whose_worker_died_and_finishes_the_panel(funded, sent, fake_llm):
    app = get_app_settings()
    app.panel_parallelism = 2
    app.save()
    before = credits_balance(user=funded)
    panel = services.panel_build_start(owner=funded, target=US, size=2, seed=9)
    dead = PanelMember.objects.get(pk=sent.pop(0))
    PanelMember.objects.filter(pk=dead.pk).update(state=MemberState.RUNNING)  # claimed, then its worker died
    runner.member_write(member_id=sent.pop(0), dispatch=sent.append)
    past = timezone.now() - timedelta(hours=2)
    PanelMember.objects.filter(pk=dead.pk).update(heartbeat_at=past)
    Job.objects.filter(pk=panel.job_id).update(heartbeat_at=past)
    jobs_reap()
    dead.refresh_from_db()
    assert dead.state == MemberState.FAILED and "stopped responding" in dead.error
    assert Job.objects.get(pk=panel.job_id).state == JobState.DONE
    assert credits_balance(user=funded) == before - panel.unit_cost


def test_an_ai_change_never_changes_a_sampled_field(funded, fake_llm):
    panel = services.panel_build_start(owner=funded, target=US, size=1, seed=11)
    persona = panel.members.get().persona
    sampled = {field: getattr(persona, field) for field in SAMPLED_FIELDS}
    persona_modify_start(persona=persona, instruction="Make them ten years older and move them to Paris")
    persona.refresh_from_db()
    assert persona.version == 2
    assert {field: getattr(persona, field) for field in SAMPLED_FIELDS} == sampled


def test_a_survey_runs_on_a_panel_and_segments_by_its_sampled_dimensions(funded, fake_llm):
    panel = services.panel_build_start(owner=funded, target=US, size=12, seed=21)
    survey = survey_services.survey_create(
        owner=funded,
        title="Oat milk",
        questions=[{"kind": "likert5", "text": "I would try it.", "labels": ["SD", "D", "N", "A", "SA"]}],
    )
    run = survey_services.run_start(survey=survey, panel=panel)
    run.refresh_from_db()
    assert run.panel_label == f"Panel: {panel.name}"
    respondents = list(Respondent.objects.filter(run=run))
    assert len(respondents) == 12 and {r.state for r in respondents} == {RespondentState.DONE}
    assert all(r.profile["sampled"] for r in respondents)
    labels = {segment["label"] for segment in run_results(run)["questions"][0]["segments"]}
    assert "Race/ethnicity" in labels


def test_a_panel_still_being_written_cannot_be_surveyed_yet(funded, sent):
    panel = services.panel_build_start(owner=funded, target=US, size=5, seed=2)
    survey = survey_services.survey_create(owner=funded, title="T", questions=[{"kind": "open", "text": "Why?"}])
    with pytest.raises(ApplicationError, match="still being written"):
        survey_services.run_start(survey=survey, panel=panel)


def test_from_a_panel_a_new_survey_opens_with_the_panel_picked(funded, fake_llm, client):
    panel = services.panel_build_start(owner=funded, target=US, size=3, seed=4)
    client.force_login(funded)
    listing = client.get(f"/surveys/?panel={panel.pk}").content.decode()
    assert f"Pick a survey to run on the panel <strong>{panel.name}</strong>" in listing
    created = client.post("/surveys/", {"title": "Oat milk", "panel": str(panel.pk)})
    assert created.status_code == 302 and created["Location"].endswith(f"?panel={panel.pk}")
    survey = Survey.objects.get(owner=funded)
    survey_services.question_create(survey=survey, data={"kind": "open", "text": "Why?"})
    page = client.get(created["Location"]).content.decode()
    assert 'value="sampled" id="panel-sampled" checked' in page
    assert f'<option value="{panel.pk}" data-count="3" selected>' in page


def test_someone_elses_panel_cannot_be_picked_for_a_survey(funded, other_user, client):
    panel = services.panel_build_start(owner=funded, target=US, size=2, seed=4)
    client.force_login(other_user)
    assert client.get(f"/surveys/?panel={panel.pk}").status_code == 404
