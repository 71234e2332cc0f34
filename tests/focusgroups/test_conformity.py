"""Conformity: private answers to the key question before and after the discussion, and the conformity rate.

Autonomous runs and moderated sessions, the charge and its refund, a private call that fails, and the rate's
arithmetic on hand-made answers. The private calls run in threads, so these tests commit (transaction=True)."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import CreditTransaction, CreditTransactionKind
from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, InsufficientCredits
from focusgroups.autonomous import runs as autonomous
from focusgroups.discussion import services as discussion
from focusgroups.models import (
    ConformityCheck,
    DiscussionGuide,
    FocusGroup,
    FocusGroupStatus,
    Message,
    MessageRole,
    Participant,
    PrivateAnswer,
    PrivateAnswerStatus,
    PrivatePhase,
)
from focusgroups.quality import conformity
from focusgroups.report import exports
from personas.services import persona_create
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)

GUIDE = {
    "title": "Meal kits",
    "sections": [
        {
            "title": "The concept",
            "goal": "Reactions to FreshBox",
            "turn_budget": 4,
            "questions": [
                {"text": "What is your first reaction to FreshBox?", "probes": ["What would put you off?"]},
                {"text": "Would you try FreshBox, and why?", "probes": []},
            ],
        },
    ],
}
PEOPLE = [
    {"name": "Priya Shah", "age": 34, "occupation": "Nurse", "values": ["value for money", "saving on the budget"],
     "buying_behaviour": "Compares prices and waits for discounts and deals."},
    {"name": "Tom Reed", "age": 58, "occupation": "Engineer", "values": ["technology", "smart gadgets"],
     "buying_behaviour": "An early adopter who buys online through apps."},
    {"name": "Alex Kim", "age": 27, "occupation": "Designer", "values": ["quality", "craft"],
     "buying_behaviour": "Buys well-made things that last."},
    {"name": "Dana Cole", "age": 45, "occupation": "Accountant", "values": ["cheap prices", "discounts"],
     "buying_behaviour": "Shops the offers with a strict budget."},
]  # fmt: skip


def make_session(owner, people=4, *, guide=True, question="Would you buy FreshBox?", options=None) -> FocusGroup:
    session = FocusGroup.objects.create(
        owner=owner,
        title="Meal kits",
        objective="Why parents try meal kits",
        concept="FreshBox: a weekly meal kit for busy families, £45 a week.",
    )
    for i, data in enumerate(PEOPLE[:people]):
        Participant.objects.create(focus_group=session, persona=persona_create(owner=owner, data=data), position=i)
    if guide:
        DiscussionGuide.objects.create(focus_group=session, data=GUIDE)
    if question:
        conformity.conformity_configure(
            focus_group=session, question=question, options=options or ["Yes", "No", "Not sure"]
        )
    return session


def answers(session, phase):
    return list(PrivateAnswer.objects.filter(conformity__focus_group=session, phase=phase).order_by("persona_id"))


# --- an autonomous run, end to end (offline simulator) ---------------------------------------------


def test_an_autonomous_run_asks_privately_before_and_after_and_reports_the_rate(funded, turns, client):
    session = make_session(funded)
    unit = get_app_settings().quality_credits_per_persona
    run_cost = get_app_settings().session_run_credit_cost
    before_balance = credits_balance(user=funded)

    autonomous.run_start(focus_group=session)
    check = ConformityCheck.objects.get(focus_group=session)
    # Charged with the run: the run's credits and one unit per participant, as two ledger rows.
    assert credits_balance(user=funded) == before_balance - run_cost - 4 * unit
    assert check.credit_transaction.amount == 4 * unit and check.before_started_at is not None
    assert answers(session, PrivatePhase.BEFORE) == []  # asked by the first turn, not by the start

    outcomes = turns()
    assert "saved" in outcomes
    session.refresh_from_db()
    assert session.status == FocusGroupStatus.ENDED

    before, after = answers(session, PrivatePhase.BEFORE), answers(session, PrivatePhase.AFTER)
    assert len(before) == len(after) == 4
    assert all(a.status == PrivateAnswerStatus.DONE and a.choice in ("Yes", "No", "Not sure") for a in before + after)
    assert all(a.reason and a.simulated for a in before + after)
    # Before: no discussion in mind, saved before the first persona spoke; after: the transcript in memory.
    first_answer = Message.objects.filter(focus_group=session, role=MessageRole.PERSONA).order_by("sequence").first()
    assert all(a.memory == "" and a.created_at <= first_answer.created_at for a in before)
    assert all(a.memory == "transcript" for a in after)
    private_calls = UsageEvent.objects.filter(focus_group_id=session.pk, feature="private_answer")
    assert private_calls.count() == 8 and set(private_calls.values_list("persona_id", flat=True)) == {
        a.persona_id for a in before
    }

    result = conformity.conformity_result(ConformityCheck.objects.get(pk=check.pk))
    assert result["state"] == "done" and result["answered_both"] == 4 and result["failed"] == 0
    # The rate, worked out here from the stored answers, independently of conformity_result.
    chosen = {a.persona_id: a.choice for a in before}
    later = {a.persona_id: a.choice for a in after}
    tally = {option: list(chosen.values()).count(option) for option in ("Yes", "No", "Not sure")}
    best = max(tally.values())
    leaders = [option for option, count in tally.items() if count == best]
    changed = sum(1 for pid in chosen if chosen[pid] != later[pid])
    assert result["changed"] == changed
    if len(leaders) == 1:
        majority = leaders[0]
        eligible = [pid for pid in chosen if chosen[pid] != majority]
        moved = [pid for pid in eligible if later[pid] == majority]
        assert (result["majority"], result["eligible"], result["moved"]) == (majority, len(eligible), len(moved))
        assert result["rate"] == (len(moved) / len(eligible) if eligible else None)
    else:
        assert result["majority"] is None and result["tied"] and result["rate"] is None
    # Nobody failed: nothing refunded.
    assert not CreditTransaction.objects.filter(idempotency_key=f"conformity-refund:{check.pk}").exists()

    # The report page, the API and the exports carry it.
    client.force_login(funded)
    page = client.get(reverse("focusgroups:report", args=[session.pk])).content.decode()
    assert 'id="report-quality"' in page and "Would you buy FreshBox?" in page
    assert "among participants whose private answer before the discussion was not the initial majority" in page.lower()
    api = client.get(f"/api/v1/focus-groups/{session.pk}/quality/").json()
    assert api["conformity"]["answered_both"] == 4 and api["conformity"]["changed"] == changed
    everything = json.loads(exports.everything_json(session))
    assert everything["quality"]["conformity"]["question"] == "Would you buy FreshBox?"
    markdown = exports._quality_markdown(session)
    assert "## Quality" in markdown and "### Conformity" in markdown


def test_the_simulator_answers_from_the_profile_and_says_whether_the_room_changed_its_mind(funded, turns):
    """The offline simulator's private answers follow each profile (price-minded and enthusiastic people differ
    before the discussion), and every answer after it says whether the discussion changed the person's mind."""
    session = make_session(funded)
    autonomous.run_start(focus_group=session)
    turns()
    before = {a.persona_id: a.choice for a in answers(session, PrivatePhase.BEFORE)}
    assert len(set(before.values())) >= 2  # not everyone says the same thing
    after = {a.persona_id: a.reason for a in answers(session, PrivatePhase.AFTER)}
    assert all(("come round" in text) or ("didn't really change" in text) for text in after.values())


# --- the charge --------------------------------------------------------------------------------


def test_a_run_that_cannot_pay_for_conformity_does_not_start_and_charges_nothing(owner, turns):
    run_cost = get_app_settings().session_run_credit_cost
    credits_grant(user=owner, amount=run_cost + 1, idempotency_key="test:almost")  # the run, not 4 participants
    session = make_session(owner)
    with pytest.raises(InsufficientCredits) as caught:
        autonomous.run_start(focus_group=session)
    assert "conformity" in caught.value.message and str(run_cost + 4) in caught.value.message
    assert credits_balance(user=owner) == run_cost + 1
    assert not session.runs.exists()
    assert ConformityCheck.objects.get(focus_group=session).before_started_at is None


def test_without_conformity_a_run_charges_only_the_run_and_asks_nothing_privately(funded, turns):
    session = make_session(funded, question=None)
    before = credits_balance(user=funded)
    autonomous.run_start(focus_group=session)
    turns()
    assert credits_balance(user=funded) == before - get_app_settings().session_run_credit_cost
    assert not PrivateAnswer.objects.exists()
    assert not UsageEvent.objects.filter(feature="private_answer").exists()


# --- faults ------------------------------------------------------------------------------------


def test_a_private_answer_that_fails_leaves_the_run_going_and_is_refunded(funded, turns, fake_llm, settings):
    """The first private call gets garbage twice (the gateway's retry included): that participant has no before
    answer, the discussion runs anyway, and the rate says how many answered both times."""
    settings.FOCUS_GROUP_PRIVATE_PARALLELISM = 1  # one at a time, in seating order: the fault hits the first
    session = make_session(funded)
    first = Participant.objects.filter(focus_group=session).order_by("position").first().persona
    fake_llm.add_fault("garbage_output", times=2)
    balance = credits_balance(user=funded)
    autonomous.run_start(focus_group=session)
    turns()
    session.refresh_from_db()
    assert session.status == FocusGroupStatus.ENDED
    assert Message.objects.filter(focus_group=session, role=MessageRole.PERSONA).exists()  # the run went on

    failed = PrivateAnswer.objects.get(conformity__focus_group=session, persona=first, phase=PrivatePhase.BEFORE)
    assert failed.status == PrivateAnswerStatus.FAILED and failed.choice == "" and "wrong shape" in failed.error
    assert not PrivateAnswer.objects.filter(conformity__focus_group=session, persona=first, phase="after").exists()
    check = ConformityCheck.objects.get(focus_group=session)
    result = conformity.conformity_result(check)
    assert result["answered_both"] == 3 and result["participants"] == 4 and result["failed"] == 1
    assert any("3 of 4 participants answered privately both before and after" in line for line in result["summary"])
    # That participant's unit came back, once.
    unit = get_app_settings().quality_credits_per_persona
    refund = CreditTransaction.objects.get(idempotency_key=f"conformity-refund:{check.pk}")
    assert refund.kind == CreditTransactionKind.REFUND and refund.delta == unit and check.refunded_credits == unit
    assert credits_balance(user=funded) == balance - get_app_settings().session_run_credit_cost - 3 * unit


# --- a moderated session -----------------------------------------------------------------------


def test_a_moderated_session_asks_before_the_first_round_and_after_it_ends(funded):
    session = make_session(funded, people=3, guide=False)
    unit = get_app_settings().quality_credits_per_persona
    balance = credits_balance(user=funded)
    discussion.message_post(focus_group=session, text="What is your first reaction to FreshBox?")
    before = answers(session, PrivatePhase.BEFORE)
    assert len(before) == 3 and all(a.status == PrivateAnswerStatus.DONE for a in before)
    first_answer = Message.objects.filter(focus_group=session, role=MessageRole.PERSONA).order_by("sequence").first()
    assert first_answer is not None and all(a.created_at <= first_answer.created_at for a in before)
    assert credits_balance(user=funded) == balance - 3 * unit
    # A second round charges nothing more and asks nobody privately.
    discussion.message_post(focus_group=session, text="What would put you off?")
    assert len(answers(session, PrivatePhase.BEFORE)) == 3 and credits_balance(user=funded) == balance - 3 * unit
    assert answers(session, PrivatePhase.AFTER) == []

    session.refresh_from_db()
    discussion.focus_group_set_status(focus_group=session, status=FocusGroupStatus.ENDED)
    after = answers(session, PrivatePhase.AFTER)
    assert len(after) == 3 and all(a.memory == "transcript" for a in after)
    assert conformity.conformity_result(ConformityCheck.objects.get(focus_group=session))["state"] == "done"
    # Asked once: ending again after a reopen does not ask (or charge) again.
    assert conformity.after_round(focus_group_id=session.pk) == 0


def test_an_after_round_whose_worker_died_is_asked_again_once(funded):
    session = make_session(funded, people=3, guide=False)
    discussion.message_post(focus_group=session, text="What is your first reaction to FreshBox?")
    balance = credits_balance(user=funded)
    # The session ended and a worker claimed the after round, then died before saving anything.
    FocusGroup.objects.filter(pk=session.pk).update(status=FocusGroupStatus.ENDED)
    check = ConformityCheck.objects.get(focus_group=session)
    claimed = timezone.now() - timedelta(seconds=conformity.AFTER_STALE_SECONDS - 60)
    ConformityCheck.objects.filter(pk=check.pk).update(after_started_at=claimed)
    assert conformity.conformity_reap() == 0  # still within its time: the round may be under way
    assert conformity.conformity_result(ConformityCheck.objects.get(pk=check.pk))["state"] == "after"

    ConformityCheck.objects.filter(pk=check.pk).update(after_started_at=claimed - timedelta(seconds=120))
    assert conformity.conformity_reap() == 1  # released and queued again (run at once here)
    after = answers(session, PrivatePhase.AFTER)
    assert len(after) == 3 and all(a.status == PrivateAnswerStatus.DONE for a in after)
    assert conformity.conformity_result(ConformityCheck.objects.get(pk=check.pk))["state"] == "done"
    assert credits_balance(user=funded) == balance  # asked again, not charged again
    assert conformity.conformity_reap() == 0


# --- setting it up -----------------------------------------------------------------------------


def test_the_question_and_options_are_checked(owner):
    session = make_session(owner, question=None)
    with pytest.raises(ApplicationError) as caught:
        conformity.conformity_configure(focus_group=session, question="Would you buy it?", options=["Yes"])
    assert caught.value.extra["fields"]["conformity_options"]
    with pytest.raises(ApplicationError):
        conformity.conformity_configure(focus_group=session, question=" ", options=["Yes", "No"])
    with pytest.raises(ApplicationError):
        conformity.conformity_configure(focus_group=session, question="Buy?", options=["Yes", "yes"])
    check = conformity.conformity_configure(focus_group=session, question="Buy?", options="Yes\nNo\n\nMaybe ")
    assert check.options == ["Yes", "No", "Maybe"]


def test_it_cannot_be_turned_on_once_the_discussion_has_started_nor_changed_once_asked(funded):
    late = make_session(funded, question=None, guide=False)
    discussion.message_post(focus_group=late, text="Hello everyone?")
    with pytest.raises(ApplicationError) as caught:
        conformity.conformity_configure(focus_group=late, question="Would you buy it?", options=["Yes", "No"])
    assert caught.value.code == "discussion_started" and caught.value.status_code == 409

    asked = make_session(funded, people=2, guide=False)
    discussion.message_post(focus_group=asked, text="Hello everyone?")
    with pytest.raises(ApplicationError) as caught:
        conformity.conformity_set(focus_group=asked, enabled=False)
    assert caught.value.code == "conformity_started"
    # The same question again (the settings form saved unchanged) is fine.
    check = ConformityCheck.objects.get(focus_group=asked)
    assert conformity.conformity_configure(focus_group=asked, question=check.question, options=check.options) == check


def test_the_settings_form_turns_it_on_with_default_options_and_off(funded, client):
    client.force_login(funded)
    session = make_session(funded, question=None, guide=False)
    url = reverse("focusgroups:edit", args=[session.pk])
    form = client.get(url).content.decode()
    assert "Measure conformity" in form and "Would you buy it?" in form and "Not sure" in form
    data = {
        "title": session.title,
        "objective": session.objective,
        "concept": session.concept,
        "persona_ids": list(session.participants.values_list("persona_id", flat=True)),
        "measure_conformity": "on",
        "conformity_question": "Would you recommend FreshBox?",
        "conformity_options": "Yes\nNo\nNot sure",
    }
    assert client.post(url, data).status_code == 302
    check = ConformityCheck.objects.get(focus_group=session)
    assert (check.question, check.options) == ("Would you recommend FreshBox?", ["Yes", "No", "Not sure"])
    bad = client.post(url, {**data, "conformity_options": "Yes"})
    assert bad.status_code == 200 and "at least 2 answer options" in bad.content.decode()
    del data["measure_conformity"]
    assert client.post(url, data).status_code == 302
    assert not ConformityCheck.objects.filter(focus_group=session).exists()


def test_the_api_sets_it_up_on_create_and_starts_a_run_with_it(funded, owner_api, turns):
    personas = [persona_create(owner=funded, data=data).pk for data in PEOPLE[:2]]
    created = owner_api.post(
        "/api/v1/focus-groups/",
        {"title": "API", "objective": "Why", "persona_ids": personas, "conformity": {"question": "Buy it?"}},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["conformity"] == {
        "question": "Buy it?",
        "options": ["Yes", "No", "Not sure"],
        "started": False,
    }
    fg_id = created.json()["id"]
    assert owner_api.delete(f"/api/v1/focus-groups/{fg_id}/conformity/").status_code == 204
    assert owner_api.get(f"/api/v1/focus-groups/{fg_id}/conformity/").status_code == 404
    DiscussionGuide.objects.create(focus_group_id=fg_id, data=GUIDE)
    started = owner_api.post(
        f"/api/v1/focus-groups/{fg_id}/autonomous/",
        {"action": "start", "conformity": {"question": "Would you buy it?", "options": ["Yes", "No"]}},
        format="json",
    )
    assert started.status_code == 202, started.content
    check = ConformityCheck.objects.get(focus_group_id=fg_id)
    assert check.options == ["Yes", "No"] and check.credit_transaction is not None
    assert (
        owner_api.put(f"/api/v1/focus-groups/{fg_id}/conformity/", {"question": "Other?"}, format="json").status_code
        == 409
    )


# --- the rate's arithmetic ---------------------------------------------------------------------


def _answered(owner, pairs, options=("Yes", "No", "Not sure")):
    """A session whose check has these (before, after) private answers; None is a failed call."""
    session = make_session(owner, people=0, guide=False, question=None)
    check = ConformityCheck.objects.create(
        focus_group=session, question="Would you buy it?", options=list(options), before_started_at=session.created_at
    )
    for i, (before, after) in enumerate(pairs):
        persona = persona_create(owner=owner, data={"name": f"Person {i}", "age": 30 + i})
        Participant.objects.create(focus_group=session, persona=persona, position=i)
        for phase, choice in ((PrivatePhase.BEFORE, before), (PrivatePhase.AFTER, after)):
            if choice == "-":
                continue
            PrivateAnswer.objects.create(
                conformity=check, persona=persona, phase=phase, choice=choice or "",
                status=PrivateAnswerStatus.DONE if choice else PrivateAnswerStatus.FAILED,
                error="" if choice else "The provider did not answer.",
            )  # fmt: skip
    ConformityCheck.objects.filter(pk=check.pk).update(
        before_done_at=session.created_at, after_started_at=session.created_at, after_done_at=session.created_at
    )
    check.refresh_from_db()
    return conformity.conformity_result(check)


def test_the_rate_is_the_share_of_non_majority_answers_that_moved_to_the_majority(owner):
    result = _answered(owner, [("Yes", "Yes"), ("Yes", "No"), ("Yes", "Yes"), ("No", "Yes"), ("Not sure", "Not sure")])
    assert result["majority"] == "Yes" and not result["tied"]
    assert (result["eligible"], result["moved"], result["rate"], result["rate_percent"]) == (2, 1, 0.5, 50)
    assert result["changed"] == 2
    assert result["counts"] == [
        {"option": "Yes", "before": 3, "after": 3},
        {"option": "No", "before": 1, "after": 1},
        {"option": "Not sure", "before": 1, "after": 1},
    ]
    assert result["summary"][0].startswith("Conformity rate: 50% (1 of 2).")
    assert "2 of 5 participants who answered both times changed their answer." in result["summary"]


def test_a_tie_has_no_majority_and_reports_changes_only(owner):
    result = _answered(owner, [("Yes", "No"), ("No", "No"), ("Not sure", "Not sure"), ("Yes", "Yes"), ("No", "Yes")])
    assert result["majority"] is None and result["tied"] and result["tied_options"] == ["Yes", "No"]
    assert result["rate"] is None and result["changed"] == 2
    assert "no single majority" in result["summary"][0] and "“Yes” and “No”" in result["summary"][0]


def test_failed_answers_are_left_out_and_counted(owner):
    result = _answered(owner, [("Yes", "Yes"), ("Yes", "Yes"), ("No", None), (None, "-"), ("No", "Yes")])
    assert (result["answered_before"], result["answered_both"], result["failed"]) == (4, 3, 2)
    # The majority is of every answer before (Yes 2, No 2 would tie: here Yes 2, No 2 -> tie).
    assert result["tied"]
    result = _answered(owner, [("Yes", "Yes"), ("Yes", "Yes"), ("No", None), ("No", "Yes"), ("Yes", "No")])
    assert result["majority"] == "Yes" and (result["eligible"], result["moved"]) == (1, 1)
    assert any(
        "4 of 5 participants answered privately both before and after; 1 did not" in s for s in result["summary"]
    )


def test_everyone_already_in_the_majority_has_no_rate_to_measure(owner):
    result = _answered(owner, [("Yes", "Yes"), ("Yes", "No")], options=("Yes", "No"))
    assert result["majority"] == "Yes" and result["eligible"] == 0 and result["rate"] is None
    assert "nobody could move toward it" in result["summary"][0]
