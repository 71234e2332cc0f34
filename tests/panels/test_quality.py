"""A panel's quality check end to end (panels/quality.py): the probe and the judge per persona against the fake
LLM or the simulator, credits reserved and refunded, the diversity measured, the page, the API and the export."""

import json

import pytest
from django.urls import reverse

from billing.models import CreditTransaction
from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, InsufficientCredits
from cohorta.jobs.models import Job, JobState
from cohorta.jobs.services import job_cancel
from panels import exports, quality
from panels import jobs as panel_jobs
from panels.diversity import reference_items
from panels.models import MemberState, Panel, PanelMember, QualityCheck, QualityCheckMember
from panels.population import bundled_population
from panels.services import panel_delete
from personas.models import PersonaCheck
from tests.personas.factories import PersonaFactory
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)

UNIT = 2
US = bundled_population("us_adults")


@pytest.fixture(autouse=True)
def priced():
    app = get_app_settings()
    app.quality_credits_per_persona = UNIT
    app.save()


@pytest.fixture
def funded(owner):
    credits_grant(user=owner, amount=500, idempotency_key="test:fund")
    return owner


def make_panel(owner, people: int = 4, name: str = "Ohio voters") -> Panel:
    """A written panel: every member has a persona (built as the panel builder leaves it)."""
    panel = Panel.objects.create(
        owner=owner, name=name, size=people, seed=1, target_kind="bundled", target_key="us_adults", target=US.to_json()
    )
    for position in range(people):
        persona = PersonaFactory(owner=owner, name=f"Person {position + 1}")
        PanelMember.objects.create(panel=panel, position=position, core={}, persona=persona, state=MemberState.DONE)
    return panel


def probe_json(**answers) -> str:
    keys = [q["key"] for q in quality.PROBE_QUESTIONS]
    return json.dumps(
        {
            "answers": {key: answers.get(key, f"My answer about {key}.") for key in keys},
            "items": {item["key"]: 3 for item in reference_items()},
        }
    )


def test_a_check_probes_and_judges_every_persona_and_measures_diversity(funded, fake_llm):
    panel = make_panel(funded, 4)
    before = credits_balance(user=funded)

    check = quality.quality_check_start(panel=panel)

    check.refresh_from_db()
    job = Job.objects.get(pk=check.job_id)
    assert job.state == JobState.DONE, job.error
    assert job.result["done"] == 4 and job.progress_done == job.progress_total == 4
    members = list(check.members.select_related("persona_check"))
    assert {m.state for m in members} == {MemberState.DONE}
    for member in members:
        assert set(member.answers) == {q["key"] for q in quality.PROBE_QUESTIONS}
        assert set(member.items) == {item["key"] for item in reference_items()}
        assert all(1 <= value <= 6 for value in member.items.values())
        judged = member.persona_check
        assert judged.persona_id == member.persona_id and not judged.failed
        assert (judged.source_kind, judged.source_id, judged.source_label) == ("panel", panel.pk, "Panel: Ohio voters")
    # One probe and one judgement per persona, one embedding request per question; all on this job.
    assert UsageEvent.objects.filter(feature="quality_probe", status="ok", job_id=job.pk).count() == 4
    assert UsageEvent.objects.filter(feature="persona_judge", status="ok", job_id=job.pk).count() == 4
    assert UsageEvent.objects.filter(feature="quality_diversity", status="ok").count() == len(quality.PROBE_QUESTIONS)
    assert credits_balance(user=funded) == before - 4 * UNIT
    # The judge read the probe: each question with its answer, the twin question, and the statements.
    judge_prompts = [
        r.body["messages"][0]["content"]
        for r in fake_llm.requests
        if r.path.endswith("/chat/completions") and "IN-CHARACTER ADHERENCE" in r.body["messages"][0]["content"]
    ]
    assert len(judge_prompts) == 4
    assert all(q["text"].split(":")[0] in judge_prompts[0] for q in quality.PROBE_QUESTIONS)
    assert "Am full of ideas." in judge_prompts[0]

    diversity = check.diversity
    assert diversity["personas"] == 4 and len(diversity["items"]) == 10
    assert all(row["n"] == 4 and row["ratio"] is not None for row in diversity["items"])
    assert 0 <= diversity["distance"] <= 2 and set(diversity["distance_per_question"]) == {
        q["key"] for q in quality.PROBE_QUESTIONS
    }


def test_failed_personas_are_refunded_and_a_garbage_judge_never_scores(funded, fake_llm):
    """Persona 1's probe answers garbage twice; persona 2's judge does. Both are refunded, nobody gets a
    made-up score, and the other two are checked."""
    panel = make_panel(funded, 4)
    before = credits_balance(user=funded)
    fake_llm.add_fault("garbage_output", times=2)  # persona 1: the probe and its one retry
    fake_llm.add_fault("invalid_output", content=probe_json())  # persona 2: its probe answers...
    fake_llm.add_fault("invalid_output", times=2, content='{"adherence": {"score": 12}}')  # ...its judge does not

    check = quality.quality_check_start(panel=panel)

    members = list(check.members.order_by("position"))
    assert [m.state for m in members] == ["failed", "failed", "done", "done"]
    assert "wrong shape" in members[0].error and "refunded" in members[0].error
    assert members[1].error.startswith("The quality judge gave no usable scores")
    assert members[1].answers  # the probe's answers are kept for the record
    failed_check = PersonaCheck.objects.get(persona=members[1].persona)
    assert failed_check.failed and failed_check.adherence is None and failed_check.consistency is None
    assert not PersonaCheck.objects.filter(persona=members[0].persona).exists()
    assert credits_balance(user=funded) == before - 2 * UNIT
    refunds = CreditTransaction.objects.filter(idempotency_key__startswith=f"panel-quality:{check.pk}:refund:")
    assert sorted(r.delta for r in refunds) == [UNIT, UNIT]
    check.refresh_from_db()
    assert check.diversity["personas"] == 2  # only the personas checked count


def test_short_of_credits_is_a_402_before_any_work(owner):
    panel = make_panel(owner, 3)
    with pytest.raises(InsufficientCredits):
        quality.quality_check_start(panel=panel)
    assert not QualityCheck.objects.exists() and not Job.objects.exists()


def test_a_panel_being_written_or_already_checked_is_a_409_and_cancelling_refunds(funded, monkeypatch):
    queue: list[int] = []
    monkeypatch.setattr(panel_jobs, "dispatch_check_member", queue.append)  # every worker busy
    panel = make_panel(funded, 3)
    before = credits_balance(user=funded)
    check = quality.quality_check_start(panel=panel)
    assert credits_balance(user=funded) == before - 3 * UNIT
    assert len(queue) == 3

    with pytest.raises(ApplicationError) as caught:
        quality.quality_check_start(panel=panel)
    assert caught.value.status_code == 409 and "already running" in caught.value.message

    job_cancel(job=Job.objects.get(pk=check.job_id))
    assert credits_balance(user=funded) == before  # nobody was checked: everything back
    assert set(check.members.values_list("state", flat=True)) == {"cancelled"}
    for member_id in queue:  # a task that arrives late does nothing
        assert quality.member_check(member_id=member_id, dispatch=queue.append) == "not-claimed"


def test_nobody_written_is_refused(funded):
    panel = Panel.objects.create(
        owner=funded, name="Empty", size=2, seed=1, target_kind="bundled", target_key="us_adults", target=US.to_json()
    )
    with pytest.raises(ApplicationError, match="Nobody in this panel"):
        quality.quality_check_start(panel=panel)


def test_the_simulator_answers_the_probe_and_the_judge(funded, settings):
    settings.LLM_SIMULATED = True
    settings.LLM_SIMULATOR_TOKEN_DELAY = 0
    settings.OPENAI_API_KEY = ""
    settings.LLM_EMBEDDING_OFFLINE_BACKEND = "hashing"
    panel = make_panel(funded, 5)

    check = quality.quality_check_start(panel=panel)

    check.refresh_from_db()
    assert set(check.members.values_list("state", flat=True)) == {"done"}
    for member in check.members.select_related("persona", "persona_check"):
        assert member.simulated and member.persona_check.simulated
        persona = member.persona
        # The simulated persona answers from its own profile: its job, and its Big Five on the items.
        assert persona.occupation.split(",")[0].lower() in member.answers["weekday"].lower()
        expected = 1 + round(persona.openness / 100 * 5)
        assert abs(member.items["O1"] - expected) <= 1
    assert check.diversity["distance"] > 0
    assert any(row["ratio"] > 0 for row in check.diversity["items"])


def test_page_api_and_export_show_the_results(funded, fake_llm, client):
    panel = make_panel(funded, 3)
    client.force_login(funded)
    page = client.get(reverse("panels:detail", args=[panel.pk])).content.decode()
    assert 'id="quality-empty"' in page and f"{3 * UNIT} credits ({UNIT} per persona)" in page

    response = client.post(reverse("panels:quality_start", args=[panel.pk]))
    assert response.status_code == 302 and response["Location"].endswith("#quality")
    check = QualityCheck.objects.get(panel=panel)
    # The fake judge's scores are random: set them, so exactly one persona is under the bar.
    PersonaCheck.objects.filter(persona__panel_member__panel=panel).update(adherence=8, consistency=7)
    PersonaCheck.objects.filter(persona=check.members.get(position=0).persona).update(
        adherence=2, consistency=8, adherence_reason="She talks like a chatbot, not a nurse."
    )

    page = client.get(reverse("panels:detail", args=[panel.pk])).content.decode()
    assert "3 of 3 personas checked" in page
    assert 'id="quality-flagged"' in page and "She talks like a chatbot, not a nurse." in page
    assert reverse("personas:detail", args=[check.members.get(position=0).persona_id]) in page
    assert 'id="quality-items"' in page and "Am full of ideas." in page
    assert "Answer distance:" in page

    api = client.get(f"/api/v1/panels/{panel.pk}/quality/").json()["latest"]
    assert api["checked"] == 3 and len(api["flagged"]) == 1 and api["flagged"][0]["adherence"] == 2
    assert len(api["diversity"]["items"]) == 10

    document = json.loads(exports.json_bytes(exports.panel_document(panel)))
    assert document["quality"]["checked"] == 3
    assert len(document["quality"]["members"]) == 3
    assert document["quality"]["members"][0]["answers"]["values_again"]
    download = client.get(reverse("panels:export", args=[panel.pk]))
    assert json.loads(download.content)["quality"]["id"] == check.pk


def test_api_starts_a_check_with_202_and_402_when_short(owner, owner_api, fake_llm):
    panel = make_panel(owner, 2)
    short = owner_api.post(f"/api/v1/panels/{panel.pk}/quality/")
    assert short.status_code == 402 and not QualityCheck.objects.exists()
    credits_grant(user=owner, amount=50, idempotency_key="test:fund")
    started = owner_api.post(f"/api/v1/panels/{panel.pk}/quality/")
    assert started.status_code == 202
    assert started.json()["latest"]["job_id"] == str(QualityCheck.objects.get().job_id)


def test_another_users_panel_is_a_404_everywhere(funded, other_user, client, api_client):
    panel = make_panel(funded, 2)
    client.force_login(other_user)
    api_client.force_authenticate(other_user)
    assert client.get(reverse("panels:quality", args=[panel.pk])).status_code == 404
    assert client.post(reverse("panels:quality_start", args=[panel.pk])).status_code == 404
    assert api_client.get(f"/api/v1/panels/{panel.pk}/quality/").status_code == 404
    assert api_client.post(f"/api/v1/panels/{panel.pk}/quality/").status_code == 404
    assert not QualityCheck.objects.exists() and credits_balance(user=other_user) == 0


def test_deleting_a_panel_mid_check_refunds_it(funded, monkeypatch):
    monkeypatch.setattr(panel_jobs, "dispatch_check_member", lambda member_id: None)
    panel = make_panel(funded, 3)
    before = credits_balance(user=funded)
    check = quality.quality_check_start(panel=panel)
    job_id = check.job_id
    panel_delete(panel=panel)
    assert credits_balance(user=funded) == before
    assert Job.objects.get(pk=job_id).state == JobState.CANCELLED
    assert not QualityCheckMember.objects.exists()
