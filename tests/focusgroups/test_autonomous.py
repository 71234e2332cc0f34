"""Autonomous mode: the AI moderator runs the guide in short, idempotent per-turn tasks."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import CreditTransaction
from billing.selectors import credits_balance
from cohorta.errors import ApplicationError, InsufficientCredits
from focusgroups import conversation
from focusgroups.autonomous import runs as autonomous
from focusgroups.autonomous import turns as autonomous_turns
from focusgroups.discussion import services as discussion
from focusgroups.models import (
    AutonomousRun,
    DiscussionGuide,
    FocusGroup,
    LiveThemes,
    Message,
    MessageRole,
    Participant,
    RunEndReason,
    RunStatus,
)
from personas.services import persona_create

pytestmark = pytest.mark.django_db(transaction=True)

GUIDE = {
    "title": "Meal kits",
    "sections": [
        {
            "title": "Habits",
            "goal": "How they cook now",
            "turn_budget": 3,
            "questions": [{"text": "How do you plan weeknight dinners?", "probes": ["What gets in the way?"]}],
        },
        {
            "title": "The concept",
            "goal": "Reactions to FreshBox",
            "turn_budget": 3,
            "questions": [
                {"text": "What would make you try FreshBox?", "probes": []},
                {"text": "What would make you cancel?", "probes": []},
            ],
        },
    ],
}


def make_session(owner, people=3, guide=True) -> FocusGroup:
    session = FocusGroup.objects.create(owner=owner, title="Meal kits", objective="Why parents try meal kits")
    for i, (name, age) in enumerate([("Priya Shah", 34), ("Tom Reed", 58), ("Alex Kim", 27)][:people]):
        Participant.objects.create(
            focus_group=session,
            persona=persona_create(owner=owner, data={"name": name, "age": age, "occupation": "Nurse"}),
            position=i,
        )
    if guide:
        DiscussionGuide.objects.create(focus_group=session, data=GUIDE)
    return session


def sequences(session):
    return list(Message.objects.filter(focus_group=session).order_by("sequence").values_list("sequence", flat=True))


def test_a_run_works_through_the_guide_and_charges_once(funded, turns):
    session = make_session(funded)
    run = autonomous.run_start(focus_group=session)
    outcomes = turns()
    run.refresh_from_db()
    assert run.status == RunStatus.ENDED and run.end_reason in (RunEndReason.GUIDE_DONE, RunEndReason.TURN_BUDGET)
    assert "saved" in outcomes and run.turns_done <= run.turn_budget == 6
    seqs = sequences(session)
    assert seqs == list(range(1, len(seqs) + 1))  # contiguous, no duplicates
    roles = set(Message.objects.filter(focus_group=session).values_list("role", flat=True))
    assert {MessageRole.MODERATOR, MessageRole.PERSONA} <= roles
    counts = sorted(run.speaking_counts.values())
    assert counts[-1] - counts[0] <= 2  # nobody dominates
    assert credits_balance(user=funded) == 60
    assert CreditTransaction.objects.filter(kind="spend", user=funded).count() == 1
    session.refresh_from_db()
    assert session.status == "ended"


def test_each_section_gets_its_own_turn_budget(funded, turns, monkeypatch, fake_llm):
    """Sections with more questions than turns: the first must not take the turns of the second."""
    many = [{"text": f"Question {n}?", "probes": []} for n in range(4)]
    session = make_session(funded, guide=False)
    DiscussionGuide.objects.create(
        focus_group=session,
        data={
            "title": "Budgets",
            "sections": [
                {"title": "One", "goal": "", "turn_budget": 2, "questions": many},
                {"title": "Two", "goal": "", "turn_budget": 2, "questions": many},
            ],
        },
    )
    seen = []
    answer = autonomous_turns._answer_step

    def spy(run, *args, **kwargs):
        seen.append(run.section_index)
        return answer(run, *args, **kwargs)

    monkeypatch.setattr(autonomous_turns, "_answer_step", spy)
    # Every decision probes (no early wrap-up near the budget's end): the budgets alone move the guide on.
    fake_llm.add_fault("invalid_output", times=10, content=decision_json("Tom Reed"), match=DECISION)
    run = autonomous.run_start(focus_group=session)
    turns()
    run.refresh_from_db()
    assert run.turn_budget == 4 and run.status == RunStatus.ENDED
    assert run.end_reason in (RunEndReason.GUIDE_DONE, RunEndReason.TURN_BUDGET)
    # Each section's two turns go to its own questions (a round of the table is capped at the question's
    # share of its section): the first section never takes the second one's turns.
    assert seen == [0, 0, 1, 1]
    assert autonomous.run_payload(run)["section"] == 2


def test_starting_twice_is_one_run_and_one_charge(funded, turns):
    session = make_session(funded)
    first = autonomous.run_start(focus_group=session)
    second = autonomous.run_start(focus_group=session)
    assert first.pk == second.pk and AutonomousRun.objects.count() == 1
    assert credits_balance(user=funded) == 60


@pytest.mark.parametrize(("people", "guide", "code"), [(1, True, "not_enough_participants"), (3, False, "no_guide")])
def test_cannot_start_without_participants_or_a_guide(funded, people, guide, code):
    session = make_session(funded, people=people, guide=guide)
    with pytest.raises(ApplicationError) as info:
        autonomous.run_start(focus_group=session)
    assert info.value.code == code and not AutonomousRun.objects.exists()
    assert credits_balance(user=funded) == 100


def test_insufficient_credits_starts_nothing(owner):
    session = make_session(owner)
    with pytest.raises(InsufficientCredits):
        autonomous.run_start(focus_group=session)
    assert not AutonomousRun.objects.exists() and sequences(session) == []


def decision_json(speaker: str, *, action: str = "probe") -> str:
    return json.dumps({"action": action, "next_speaker": speaker, "moderator_message": None, "reason": "Spoke least."})


def _schema_name(request) -> str:
    return ((request.body.get("response_format") or {}).get("json_schema") or {}).get("name", "")


# Faults aimed at the moderator's decision calls only (a round's answer calls are in flight beside them).
DECISION = "moderator_decision"


def answers_of(name: str) -> str:
    """What aims a fault at one persona's answer calls: their system prompt."""
    return f"You are {name}, taking part"


def test_the_decision_schema_only_admits_people_in_the_room(funded, turns, fake_llm):
    session = longer(make_session(funded))
    autonomous.run_start(focus_group=session)
    turns(limit=3)
    decisions = [r.body for r in fake_llm.requests if _schema_name(r) == "moderator_decision"]
    run = AutonomousRun.objects.get(focus_group=session)
    # At most one decision call per step (the fake names a participant each time, so none is retried), and
    # no more decisions than answers: rounds and planned steps answer without one.
    assert 0 < len(decisions) <= run.turns_done
    for decision in decisions:
        schema = decision["response_format"]["json_schema"]["schema"]
        assert schema["properties"]["next_speaker"]["enum"] == ["Priya Shah", "Tom Reed", "Alex Kim"]
        assert set(schema["properties"]) == {"action", "next_speaker", "moderator_message", "reason"}
    assert "Round-robin" not in run.next_reason


def test_two_personas_with_one_name_get_distinct_labels(funded):
    session = make_session(funded, people=2)
    Participant.objects.create(
        focus_group=session, position=2, persona=persona_create(owner=funded, data={"name": "Priya Shah", "age": 41})
    )
    participants = list(session.participants.select_related("persona").order_by("position"))
    labels = autonomous_turns.speaker_labels(participants)
    assert list(labels) == ["Priya Shah", "Tom Reed", "Priya Shah (2)"]
    assert [p.pk for p in labels.values()] == [p.persona_id for p in participants]


def test_unknown_speakers_and_invalid_decisions_fall_back_to_round_robin(funded, turns, fake_llm):
    session = longer(make_session(funded))
    run = autonomous.run_start(focus_group=session)
    assert turns(limit=1) == ["saved"]  # the opening question round the table: no decision needed
    # The first decision: a speaker who is not in the room, twice (the gateway's retry); the second: text that
    # is not JSON, twice; the third: JSON of the wrong shape, twice. Each step falls back to round-robin.
    fake_llm.add_fault("invalid_output", times=2, content=decision_json("Nobody Here"), match=DECISION)
    fake_llm.add_fault("garbage_output", times=2, match=DECISION)
    fake_llm.add_fault("invalid_output", times=2, match=DECISION)
    outcomes = turns(limit=3)
    assert outcomes == ["saved"] * 3 and fake_llm.pending_faults == []
    run.refresh_from_db()
    assert run.turns_done == 6 and sorted(run.speaking_counts.values()) == [2, 2, 2]
    # Round-robin by fewest turns, in seating order.
    answers = Message.objects.filter(focus_group=session, role=MessageRole.PERSONA).order_by("sequence")
    assert [m.speaker_name for m in answers][3:] == ["Priya Shah", "Tom Reed", "Alex Kim"]
    assert run.next_reason.startswith("Round-robin")


def test_an_early_wrap_up_does_not_skip_the_rest_of_the_guide(funded, turns, fake_llm):
    session = make_session(funded)
    wrap_up = (
        '{"action": "wrap_up", "next_speaker": "Tom Reed", "reason": "Done.",'
        ' "moderator_message": "Thank you all, goodbye!"}'
    )
    session = longer(session)
    run = autonomous.run_start(focus_group=session)
    assert turns(limit=1) == ["saved"]  # the opening round: no decision
    # The very first decision: valid, but early.
    fake_llm.add_fault("invalid_output", times=1, content=wrap_up, match=DECISION)
    assert turns(limit=1) == ["saved"] and fake_llm.pending_faults == []
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.turns_done > 3
    lines = Message.objects.filter(focus_group=session, role=MessageRole.MODERATOR).values_list("content", flat=True)
    assert not any("goodbye" in line for line in lines)
    assert "How do you plan weeknight dinners?" in lines[0]
    turns()
    run.refresh_from_db()
    assert run.status == RunStatus.ENDED and run.turns_done >= 5  # the guide's turns, not one


def test_a_failed_turn_is_tried_again_later_for_someone_else(funded, turns, fake_llm):
    """The persona's call fails: nothing of the turn is saved, the same turn is tried again after a delay,
    and the decision that names the same persona again is overruled: the rotation has moved on."""
    session = make_session(funded)
    priya = session.participants.get(position=0).persona
    # The moderator names Priya (a valid decision), her answer fails with the gateway's two retries; on
    # the second attempt the moderator names her again.
    session = longer(session)
    run = autonomous.run_start(focus_group=session)
    assert turns(limit=1) == ["saved"]  # the opening round
    fake_llm.add_fault("invalid_output", times=1, content=decision_json("Priya Shah"), match=DECISION)
    fake_llm.add_fault("server_error", times=3, match=answers_of("Priya Shah"))
    fake_llm.add_fault("invalid_output", times=1, content=decision_json("Priya Shah"), match=DECISION)
    outcomes = turns(limit=2)
    assert outcomes == ["retrying", "saved"] and fake_llm.pending_faults == []
    assert turns.countdowns == [autonomous_turns.retry_delay(1)] == [10]
    run.refresh_from_db()
    assert run.failed_turns == 0 and run.missed_turns == {str(priya.pk): 1}
    # The second attempt's probe went to someone else (the first message after the round: no line of its own).
    answer = Message.objects.get(focus_group=session, sequence=5)
    assert answer.role == MessageRole.PERSONA and answer.speaker_name != "Priya Shah"
    assert not Message.objects.filter(focus_group=session, role=MessageRole.SYSTEM).exists()
    # The failed attempt left nothing: the messages are numbered without a gap, one answer per turn.
    answers = Message.objects.filter(focus_group=session, role=MessageRole.PERSONA).count()
    assert sequences(session) == list(range(1, len(sequences(session)) + 1)) and answers == run.turns_done


def test_stop_finishes_the_turn_then_pauses_and_resume_continues(funded, turns):
    session = make_session(funded)
    run = autonomous.run_start(focus_group=session)
    turns(limit=1)
    run.refresh_from_db()
    done = run.turns_done
    autonomous.run_stop(run=run)
    turns()
    run.refresh_from_db()
    assert run.status == RunStatus.PAUSED and run.turns_done == done
    session.refresh_from_db()
    assert session.status == "paused"
    autonomous.run_resume(run=run)
    turns()
    run.refresh_from_db()
    assert run.status == RunStatus.ENDED and credits_balance(user=funded) == 60
    seqs = sequences(session)
    assert seqs == list(range(1, len(seqs) + 1))


def test_an_interjection_reaches_the_moderator(funded, turns, fake_llm):
    session = make_session(funded)
    autonomous.run_start(focus_group=session)
    turns(limit=1)
    message, answers = discussion.message_post(focus_group=session, text="Ask them about price, please.")
    assert answers == [] and message.role == MessageRole.RESEARCHER
    already = len(fake_llm.requests)  # a snapshot list: index past what the first turn sent
    turns(limit=1)
    decision_prompt = fake_llm.requests[already].body["messages"][0]["content"]
    assert 'THE RESEARCHER JUST SAID: "Ask them about price, please."' in decision_prompt


def longer(session, budget: int = 12) -> FocusGroup:
    """The session's guide with more turns to each section (rounds of the table spend them quickly)."""
    guide = session.guide
    guide.data = {**GUIDE, "sections": [{**section, "turn_budget": budget} for section in GUIDE["sections"]]}
    guide.save()
    return session


def test_a_worker_killed_mid_turn_is_interrupted_then_resumed_without_duplicates(funded, turns):
    session = longer(make_session(funded))
    run = autonomous.run_start(focus_group=session)
    turns(limit=2)
    # A worker claims the next turn and dies (kill -9): nothing of that turn is saved.
    turns.queue.clear()
    run.refresh_from_db()
    assert autonomous_turns._claim(run.pk, run.turns_done) is not None
    before, before_turn = sequences(session), run.turns_done
    AutonomousRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=2))
    assert autonomous.runs_reap() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.INTERRUPTED
    autonomous.run_resume(run=run)
    turns(limit=1)
    # The dead worker's task is redelivered late: it finds nothing to claim.
    assert autonomous_turns.turn_run(run_id=run.pk, turn=before_turn) == "not-claimed"
    after = sequences(session)
    assert after[: len(before)] == before and after == list(range(1, len(after) + 1))
    assert credits_balance(user=funded) == 60


def test_quota_running_out_ends_the_run_with_that_reason(funded, turns):
    from decimal import Decimal

    session = make_session(funded)
    run = autonomous.run_start(focus_group=session)
    turns(limit=1)
    funded.monthly_quota_usd = Decimal("0")
    funded.save()
    turns()
    run.refresh_from_db()
    assert run.status == RunStatus.ENDED and run.end_reason == RunEndReason.QUOTA


def test_ending_the_session_stops_the_run(funded, turns):
    session = make_session(funded)
    run = autonomous.run_start(focus_group=session)
    turns(limit=1)
    discussion.focus_group_set_status(focus_group=session, status="ended")
    run.refresh_from_db()
    assert run.status == RunStatus.ENDED and run.end_reason == RunEndReason.STOPPED
    assert turns() == ["not-claimed"]


def test_pages_and_api_control_autonomous_mode(funded, client, turns):
    from rest_framework.test import APIClient

    session = make_session(funded)
    client.force_login(funded)
    page = client.get(f"/focus-groups/{session.pk}/").content.decode()
    assert "Start autonomous mode" in page and "40 credits" in page
    response = client.post(f"/focus-groups/{session.pk}/autonomous/start/", HTTP_ACCEPT="application/json")
    assert response.status_code == 202 and response.json()["run"]["status"] == "running"
    api = APIClient()
    api.force_authenticate(funded)
    state = api.get(f"/api/v1/focus-groups/{session.pk}/autonomous/").json()
    assert state["turn_budget"] == 6 and state["sections"] == 2
    assert (
        api.post(f"/api/v1/focus-groups/{session.pk}/autonomous/", {"action": "stop"}, format="json").status_code == 202
    )


def test_another_users_run_is_404(funded, other_user, turns):
    from rest_framework.test import APIClient

    session = make_session(funded)
    autonomous.run_start(focus_group=session)
    api = APIClient()
    api.force_authenticate(other_user)
    assert api.get(f"/api/v1/focus-groups/{session.pk}/autonomous/").status_code == 404
    assert (
        api.post(f"/api/v1/focus-groups/{session.pk}/autonomous/", {"action": "stop"}, format="json").status_code == 404
    )
    from django.test import Client

    page = Client()
    page.force_login(other_user)
    assert page.post(f"/focus-groups/{session.pk}/autonomous/stop/").status_code == 404
    assert AutonomousRun.objects.get().status == RunStatus.RUNNING


def test_with_the_simulator_the_moderator_names_real_participants(funded, turns):
    session = make_session(funded)
    run = autonomous.run_start(focus_group=session)
    turns(limit=3)
    run.refresh_from_db()
    assert "Round-robin" not in run.next_reason  # a real decision, not the fallback
    counts = sorted(run.speaking_counts.values())
    assert counts[0] >= 1 and counts[-1] - counts[0] <= 1  # everyone spoke, nobody ran ahead


def test_long_runs_keep_their_context_bounded_with_the_summary(funded, turns, settings):
    session = make_session(funded)
    guide = session.guide
    questions = [{"text": f"Question {i}: what matters most to you here?", "probes": []} for i in range(8)]
    guide.data = {
        "title": "Long",
        "sections": [
            {"title": f"Part {n}", "goal": "Explore", "turn_budget": 30, "questions": questions} for n in (1, 2)
        ],
    }
    guide.save()
    run = autonomous.run_start(focus_group=session)
    turns(limit=40)
    session.refresh_from_db()
    run.refresh_from_db()
    assert run.turns_done >= 20 and session.last_sequence > conversation.WINDOW_MESSAGES + conversation.SUMMARY_EVERY
    assert session.summary and session.summary_through > 0


def test_nobody_gets_two_turns_more_than_the_quietest(funded):
    session = make_session(funded)
    run = autonomous.run_start(focus_group=session)
    participants = list(session.participants.select_related("persona").order_by("position"))
    priya, tom, alex = (p.persona for p in participants)
    wants_tom = {"action": "probe", "speaker": tom, "reason": "Follow up.", "moderator_message": None}
    # One follow-up to the same person is fine.
    run.speaking_counts = {str(priya.pk): 1, str(tom.pk): 2, str(alex.pk): 1}
    assert autonomous_turns._balance(wants_tom, run, participants)["speaker"] == tom
    # Two turns ahead of the quietest: the quietest gets the floor instead (the first of them in seating order).
    run.speaking_counts = {str(priya.pk): 1, str(tom.pk): 3, str(alex.pk): 1}
    balanced = autonomous_turns._balance(wants_tom, run, participants)
    assert balanced["speaker"] == priya and balanced["action"] == "invite_quiet"
    assert balanced["reason"] == "Balance: Priya Shah has spoken least."


def test_an_interjection_made_during_a_turn_reaches_the_next_decision_once(funded, turns, fake_llm, monkeypatch):
    session = longer(make_session(funded))
    autonomous.run_start(focus_group=session)
    turns(limit=1)
    build = conversation.build_persona_messages
    once = threading.Lock()  # a round's answers are built in threads of their own

    def researcher_speaks_mid_turn(**kwargs):
        # The researcher posts while the next step is in flight: their message is numbered before the step's own.
        with once:
            if not Message.objects.filter(focus_group=session, role=MessageRole.RESEARCHER).exists():
                discussion.message_post(focus_group=session, text="Ask them about price, please.")
        return build(**kwargs)

    prompts_before = len(fake_llm.requests)
    monkeypatch.setattr(conversation, "build_persona_messages", researcher_speaks_mid_turn)
    turns(limit=1)
    monkeypatch.setattr(conversation, "build_persona_messages", build)
    said = Message.objects.get(focus_group=session, role=MessageRole.RESEARCHER)
    assert said.sequence < Message.objects.filter(focus_group=session).order_by("-sequence")[0].sequence
    turns(limit=2)
    decisions = [
        r.body["messages"][0]["content"] for r in fake_llm.requests[prompts_before:] if r.body.get("response_format")
    ]
    heard = ['THE RESEARCHER JUST SAID: "Ask them about price, please."' in prompt for prompt in decisions]
    # The decision before it did not hear it (not said yet); the next decision takes it into account (a plan
    # made before it is dropped), and none after repeats it.
    assert heard[:2] == [False, True] and not any(heard[2:])


def test_the_guide_is_asked_in_order_and_a_question_is_not_rushed(funded, turns, fake_llm):
    session = make_session(funded)
    # Every decision says "next question" with a line of its own: too soon, each question is held.
    rush = decision_json("Alex Kim", action="next_question")
    fake_llm.add_fault("invalid_output", times=50, content=rush)
    autonomous.run_start(focus_group=session)
    for _ in range(30):
        if not turns(limit=1):
            break
    moderator = list(
        Message.objects.filter(focus_group=session, role=MessageRole.MODERATOR)
        .order_by("sequence")
        .values_list("content", flat=True)
    )
    asked = [q["text"] for s in GUIDE["sections"] for q in s["questions"]]
    # Each guide question is put to the group, in the guide's order, each exactly once.
    firsts = [next(i for i, line in enumerate(moderator) if question in line) for question in asked]
    assert firsts == sorted(firsts)
    assert all(sum(question in line for line in moderator) == 1 for question in asked), moderator
    run = AutonomousRun.objects.get(focus_group=session)
    # Held on each question for half its share at least: the first question round the table (its section's
    # three turns), the second round the table for its share (two), then the rush moves on to the third.
    assert run.status == RunStatus.ENDED and run.end_reason == RunEndReason.GUIDE_DONE and run.turns_done == 6


def test_announcing_the_next_step_returns_the_run_as_saved(funded):
    session = make_session(funded)
    run = autonomous.run_start(focus_group=session)
    run.refresh_from_db()
    AutonomousRun.objects.filter(pk=run.pk).update(speaking_counts={"7": 2}, heartbeat_at=timezone.now())
    speaker = session.participants.order_by("position").first().persona

    announced = autonomous.next_step_announce(run=run, speaker=speaker, reason="Tom said something worth a probe.")

    fresh = AutonomousRun.objects.get(pk=run.pk)
    assert (fresh.next_speaker_id, fresh.next_reason) == (speaker.pk, "Tom said something worth a probe.")
    for field in AutonomousRun._meta.concrete_fields:  # JSON as dicts, times as aware datetimes: as the ORM reads
        assert getattr(announced, field.attname) == getattr(fresh, field.attname), field.name
    assert autonomous.run_payload(announced) == autonomous.run_payload(fresh)
    several = autonomous.next_step_announce(run=run, speaker=None, reason="Round the table.")
    assert several.next_speaker_id is None
    AutonomousRun.objects.filter(pk=run.pk).delete()
    assert autonomous.next_step_announce(run=run, speaker=None, reason="Gone.") is None


def test_a_step_shows_who_answers_next_without_reading_the_run_back(funded, turns, monkeypatch):
    session = make_session(funded)
    sent = []
    monkeypatch.setattr("focusgroups.events.send_event", lambda focus_group_id, event: sent.append(event))
    autonomous.run_start(focus_group=session)

    with CaptureQueriesContext(connection) as queries:
        turns(limit=1)

    announced = [e["run"] for e in sent if e["type"] == "fg.run" and e["run"]["next_reason"]]
    assert announced, "the live view heard who answers next"
    assert announced[0]["next_speaker"] == "The table"  # the opening question goes round the table
    assert announced[0]["turns_done"] == 0
    table = AutonomousRun._meta.db_table
    reads = [q["sql"] for q in queries if q["sql"].startswith("SELECT") and f'FROM "{table}"' in q["sql"]]
    # The claim's read of the run with its session, and the save's lock; the announcement came back with its UPDATE.
    assert len(reads) == 2, reads
    assert reads[1].endswith("FOR UPDATE") or not connection.features.has_select_for_update  # SQLite locks the file


def test_the_page_polls_the_run_and_the_emerging_themes_when_its_socket_is_down(funded, other_user, turns, client):
    session = make_session(funded)
    url = f"/focus-groups/{session.pk}/live/"
    client.force_login(funded)
    before = client.get(url)
    assert before.status_code == 200
    assert before.json() == {"status": "draft", "run": None, "live_themes": None}

    autonomous.run_start(focus_group=session)
    turns(limit=1)
    LiveThemes.objects.update_or_create(
        focus_group=session,
        defaults={
            "answers": 3,
            "through_sequence": 4,
            "themes": [{"title": "Time", "note": "Weeknights are short", "sentiment": "negative", "sequences": [2]}],
            "updated_at": timezone.now(),
        },
    )
    state = client.get(url).json()
    run = AutonomousRun.objects.get()
    assert state["status"] == "live"
    assert state["run"] == autonomous.run_payload(run)
    assert state["run"]["turns_done"] == run.turns_done > 0
    assert [t["title"] for t in state["live_themes"]["themes"]] == ["Time"]
    # The page names where to poll it, and nobody else reads it.
    assert f'data-live-url="{url}"' in client.get(f"/focus-groups/{session.pk}/").content.decode()
    client.force_login(other_user)
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302
