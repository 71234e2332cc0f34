"""The quality judge on a finished session: each participant judged on their answers there, charged per
participant, a judge that answers garbage leaves a failed check (refunded, no score), and nobody else sees any of it."""

import pytest
from django.urls import reverse

from billing.models import CreditTransaction
from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError
from cohorta.jobs.models import Job, JobState
from focusgroups.discussion import services as discussion
from focusgroups.models import FocusGroupStatus, MessageRole
from focusgroups.quality import judge
from focusgroups.quality.results import session_quality
from focusgroups.report import exports
from personas.models import CheckSource, PersonaCheck
from tests.focusgroups.factories import FocusGroupFactory, add_message
from tests.personas.factories import PersonaFactory

pytestmark = pytest.mark.django_db(transaction=True)


def ended_session(owner, *, silent=0):
    """An ended session: a moderated round (answers reply to the question) and an autonomous-style turn (the
    answer follows the moderator's line); ``silent`` participants who never spoke."""
    priya = PersonaFactory(owner=owner, name="Priya Shah", occupation="Nurse")
    tom = PersonaFactory(owner=owner, name="Tom Reed", occupation="Engineer")
    quiet = [PersonaFactory(owner=owner, name=f"Quiet {i}") for i in range(silent)]
    session = FocusGroupFactory(owner=owner, participants=[priya, tom, *quiet], title="Oat milk")
    question = add_message(session, content="What do you think of oat milk?")
    for persona, text in ((priya, "As a nurse on shifts I buy what's quick."), (tom, "I check the price per litre.")):
        message = add_message(session, persona=persona, content=text)
        message.reply_to = question
        message.save(update_fields=["reply_to"])
    add_message(session, content="Tom, would you switch brands?", role=MessageRole.MODERATOR)
    add_message(session, persona=tom, content="Only if it's cheaper.")
    session.status = FocusGroupStatus.ENDED
    session.save(update_fields=["status"])
    return session, priya, tom


def test_evidence_pairs_each_answer_with_the_question_it_answered(owner):
    session, priya, tom = ended_session(owner)
    evidence = judge.session_evidence(focus_group=session)
    assert evidence[priya.pk] == [("What do you think of oat milk?", "As a nurse on shifts I buy what's quick.")]
    assert evidence[tom.pk] == [
        ("What do you think of oat milk?", "I check the price per litre."),
        ("Tom, would you switch brands?", "Only if it's cheaper."),
    ]


def test_check_quality_judges_who_spoke_charges_them_and_shows_scores(owner, client):
    credits_grant(user=owner, amount=20, idempotency_key="test:judge")
    session, priya, tom = ended_session(owner, silent=1)
    unit = get_app_settings().quality_credits_per_persona
    client.force_login(owner)
    response = client.post(reverse("focusgroups:quality_check", args=[session.pk]))
    assert response.status_code == 302 and response["Location"].endswith("#report-quality")
    job = Job.objects.get(kind=judge.JOB_KIND)
    assert job.state == JobState.DONE and job.result["judged"] == 2
    assert credits_balance(user=owner) == 20 - 2 * unit  # the silent participant is not charged
    checks = PersonaCheck.objects.filter(source_kind=CheckSource.SESSION, source_id=session.pk)
    assert {c.persona_id for c in checks} == {priya.pk, tom.pk}
    assert all(0 <= c.adherence <= 9 and 0 <= c.consistency <= 9 and c.evidence_count >= 1 for c in checks)
    assert checks.get(persona=tom).evidence_count == 2

    page = client.get(reverse("focusgroups:report", args=[session.pk])).content.decode()
    assert 'id="judge-scores"' in page
    for check in checks:
        assert f"{check.adherence}/9" in page
        assert reverse("personas:detail", args=[check.persona_id]) in page
    quality = session_quality(focus_group=session)
    assert quality["judge"]["checked"] == 2
    markdown = "\n".join(exports._quality_markdown(session))
    assert "In character and self-consistent" in markdown and "Priya Shah" in markdown


def test_a_flag_links_to_the_persona_page(owner, client, settings):
    credits_grant(user=owner, amount=20, idempotency_key="test:judge")
    session, *_ = ended_session(owner)
    core = get_app_settings()
    core.quality_judge_bar = 9  # every score below 9 is flagged
    core.save()
    judge.session_check_start(focus_group=session)
    flagged = [c for c in PersonaCheck.objects.filter(source_id=session.pk) if c.flagged]
    assert flagged
    client.force_login(owner)
    page = client.get(reverse("focusgroups:report", args=[session.pk])).content.decode()
    assert "Below 9" in page and 'id="judge-flagged"' in page


def test_a_judge_returning_garbage_leaves_a_failed_check_with_no_score_and_refunds_it(
    owner, client, fake_llm, settings
):
    settings.FOCUS_GROUP_PRIVATE_PARALLELISM = 1  # one at a time, in seating order: the garbage goes to Priya
    credits_grant(user=owner, amount=20, idempotency_key="test:judge")
    session, priya, tom = ended_session(owner)
    unit = get_app_settings().quality_credits_per_persona
    fake_llm.add_fault("garbage_output", times=2)  # the call and the gateway's one retry
    job = judge.session_check_start(focus_group=session)
    job.refresh_from_db()
    assert job.state == JobState.DONE and job.result["judged"] == 1 and len(job.result["failed"]) == 1
    failed = PersonaCheck.objects.get(source_id=session.pk, persona=priya)
    assert failed.failed and failed.adherence is None and failed.consistency is None and not failed.flagged
    assert "no usable scores" in failed.error
    scored = PersonaCheck.objects.get(source_id=session.pk, persona=tom)
    assert not scored.failed
    assert CreditTransaction.objects.get(idempotency_key=f"job:{job.pk}:refund").delta == unit
    assert credits_balance(user=owner) == 20 - unit
    client.force_login(owner)
    page = client.get(reverse("focusgroups:report", args=[session.pk])).content.decode()
    assert "Not scored: The quality judge gave no usable scores" in page and 'id="judge-failures"' in page


def test_only_a_finished_session_with_answers_can_be_checked(owner):
    credits_grant(user=owner, amount=20, idempotency_key="test:judge")
    live = FocusGroupFactory(owner=owner, participants=2)
    with pytest.raises(ApplicationError) as caught:
        judge.session_check_start(focus_group=live)
    assert caught.value.code == "not_ended" and caught.value.status_code == 409
    discussion.focus_group_set_status(focus_group=live, status=FocusGroupStatus.ENDED)
    with pytest.raises(ApplicationError) as caught:
        judge.session_check_start(focus_group=live)
    assert caught.value.code == "nothing_to_check"
    assert credits_balance(user=owner) == 20


def test_the_api_starts_a_check_and_reads_the_results(owner, owner_api):
    credits_grant(user=owner, amount=20, idempotency_key="test:judge")
    session, *_ = ended_session(owner)
    started = owner_api.post(f"/api/v1/focus-groups/{session.pk}/quality/check/")
    assert started.status_code == 202 and started.json()["kind"] == judge.JOB_KIND
    body = owner_api.get(f"/api/v1/focus-groups/{session.pk}/quality/").json()
    assert body["conformity"] is None
    scored = {row["name"]: row for row in body["judge"]["participants"]}
    assert scored["Tom Reed"]["adherence"] in range(10) and scored["Priya Shah"]["checked"]


def test_the_empty_state_says_how_to_turn_quality_checks_on(owner, client):
    session = FocusGroupFactory(owner=owner, participants=2)
    client.force_login(owner)
    page = client.get(reverse("focusgroups:report", args=[session.pk])).content.decode()
    assert 'id="conformity-empty"' in page and "Measure conformity" in page
    assert 'id="judge-empty"' in page and "Available once the session has ended." in page


def test_another_user_gets_404_on_everything_quality(owner, other_user, client):
    credits_grant(user=owner, amount=20, idempotency_key="test:judge")
    credits_grant(user=other_user, amount=20, idempotency_key="test:judge-other")
    session, *_ = ended_session(owner)
    client.force_login(other_user)
    assert client.get(reverse("focusgroups:quality", args=[session.pk])).status_code == 404
    assert client.post(reverse("focusgroups:quality_check", args=[session.pk])).status_code == 404
    for method, path in (
        ("get", "quality/"),
        ("post", "quality/check/"),
        ("get", "conformity/"),
        ("put", "conformity/"),
        ("delete", "conformity/"),
    ):
        response = getattr(client, method)(
            f"/api/v1/focus-groups/{session.pk}/{path}", data={"question": "X?"}, content_type="application/json"
        )
        assert response.status_code == 404, (method, path)
    assert not Job.objects.filter(kind=judge.JOB_KIND).exists()
    assert credits_balance(user=other_user) == 20 and credits_balance(user=owner) == 20
