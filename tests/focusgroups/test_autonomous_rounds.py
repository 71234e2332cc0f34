"""Autonomous discussions at the speed of a room: the AI moderator puts a question round the table (several
personas answer at once), plans a step ahead (a probe, the others' reactions, the next question) so fewer
answers wait for a decision, and a probe still goes to someone who just spoke, with their words in the prompt."""

import json

import pytest

from focusgroups import replay
from focusgroups.autonomous import runs as autonomous
from focusgroups.models import AutonomousRun, DiscussionGuide, FocusGroup, Message, MessageRole, Participant, RunStatus
from personas.services import persona_create

pytestmark = pytest.mark.django_db(transaction=True)

PEOPLE = [("Priya Shah", 34), ("Tom Reed", 58), ("Alex Kim", 27), ("Maya Ortiz", 45)]
GUIDE = {
    "title": "Meal kits",
    "sections": [
        {
            "title": "Habits",
            "goal": "How they cook now",
            "turn_budget": 8,
            "questions": [{"text": "How do you plan weeknight dinners?", "probes": ["What gets in the way?"]}],
        },
        {
            "title": "The concept",
            "goal": "Reactions to FreshBox",
            "turn_budget": 8,
            "questions": [
                {"text": "What would make you try FreshBox?", "probes": []},
                {"text": "What would make you cancel?", "probes": []},
            ],
        },
    ],
}


def make_session(owner) -> FocusGroup:
    session = FocusGroup.objects.create(owner=owner, title="Meal kits", objective="Why parents try meal kits")
    for i, (name, age) in enumerate(PEOPLE):
        Participant.objects.create(
            focus_group=session,
            persona=persona_create(owner=owner, data={"name": name, "age": age, "occupation": "Nurse"}),
            position=i,
        )
    DiscussionGuide.objects.create(focus_group=session, data=GUIDE)
    return session


def decision(action: str, speaker: str, *, line=None) -> str:
    return json.dumps({"action": action, "next_speaker": speaker, "moderator_message": line, "reason": "Test plan."})


DECISION = "moderator_decision"  # what aims a fault at the moderator's decision calls only


def is_decision(request) -> bool:
    return ((request.body.get("response_format") or {}).get("json_schema") or {}).get("name") == "moderator_decision"


def persona_prompt(request) -> tuple[str, str]:
    """(the system prompt, the turn prompt) of a persona's answer request."""
    messages = request.body["messages"]
    return messages[0]["content"], messages[-1]["content"]


def transcript(session) -> list[tuple[str, str, str]]:
    return list(
        Message.objects.filter(focus_group=session).order_by("sequence").values_list("role", "speaker_name", "content")
    )


def steps(session) -> list[tuple[str, list[str]]]:
    """Each moderator line with the names of who answered it, in order (someone answering twice in a row is
    answering a line of the moderator's without words: a step of its own, with an empty line)."""
    found: list[tuple[str, list[str]]] = []
    for role, name, content in transcript(session):
        if role == MessageRole.MODERATOR:
            found.append((content, []))
        elif role == MessageRole.PERSONA and found:
            if name in found[-1][1]:
                found.append(("", []))
            found[-1][1].append(name)
    return found


def test_a_round_probe_and_reactions_follow_one_plan(funded, turns, fake_llm):
    # Long enough that a round's answer calls overlap on the server's clock even on a loaded CI machine (0.2 s did not).
    fake_llm.ttft = 1.0
    session = make_session(funded)
    # 1. The guide's question round the table, without a decision. 2. After reading the answers: probe Tom,
    # then the others react, then the next question goes round the table: three steps, one decision.
    run = autonomous.run_start(focus_group=session)
    turns(limit=1)
    assert not any(is_decision(r) for r in fake_llm.requests)
    fake_llm.add_fault(
        "invalid_output",
        content=decision("probe", "Tom Reed", line="Tom, what gets in the way for you?"),
        match=DECISION,
    )
    turns(limit=1)
    requests = fake_llm.requests
    responses = {r.request_id: r for r in fake_llm.responses}
    names = [name for name, _ in PEOPLE]

    said = steps(session)
    # The round: the guide's question, answered by everyone.
    assert "How do you plan weeknight dinners?" in said[0][0] and sorted(said[0][1]) == sorted(names)
    # Started in parallel: every answer call of the round reached the provider before the first one ended.
    round_calls = [r for r in requests if not is_decision(r)][: len(names)]
    assert all("How do you plan weeknight dinners?" in persona_prompt(r)[1] for r in round_calls)
    first_end = min(responses[r.request_id].completed_at for r in round_calls)
    assert all(r.received_monotonic < first_end for r in round_calls)

    # The probe goes to Tom, who just spoke, with his own answer in his prompt; addressed to him alone.
    probe_line, probed = said[1]
    assert probe_line == "Tom, what gets in the way for you?" and probed == ["Tom Reed"]
    tom_round_answer = Message.objects.get(focus_group=session, speaker_name="Tom Reed", sequence__lt=6).content
    probe_call = next(r for r in requests if 'now says: "Tom, what gets in the way for you?"' in persona_prompt(r)[1])
    assert f"Tom Reed: {tom_round_answer}" in persona_prompt(probe_call)[1]
    assert "addressed to you" in persona_prompt(probe_call)[1]

    # Then the others react to what Tom said, at once, with his probe answer in their prompts, and the next
    # question goes round the table: no decision call in between.
    react_line, reacting = said[2]
    assert "Tom just said" in react_line and sorted(reacting) == sorted(n for n in names if n != "Tom Reed")
    lines = transcript(session)
    probe_at = lines.index((MessageRole.MODERATOR, "AI moderator", probe_line))
    tom_probe_answer = lines[probe_at + 1][2]
    react_calls = [r for r in requests if f'now says: "{react_line}"' in persona_prompt(r)[1]]
    assert len(react_calls) == 3 and all(f"Tom Reed: {tom_probe_answer}" in persona_prompt(r)[1] for r in react_calls)
    assert "What would make you try FreshBox?" in said[3][0] and len(said[3][1]) == 4
    # One decision for four steps and twelve answers: the round, the probe, the reactions, the next round.
    assert sum(is_decision(r) for r in requests) == 1

    run.refresh_from_db()
    assert run.turns_done == 4 + 1 + 3 + 4  # every answer is a turn of the budget
    assert run.section_index == 1  # the first section's eight turns were spent, no more


def test_an_autonomous_run_with_rounds_keeps_budgets_and_the_guide(funded, turns, fake_llm):
    session = make_session(funded)
    # Every decision asks to go round the table: the budgets, not the model, say when the guide moves on.
    fake_llm.add_fault("invalid_output", times=40, content=decision("next_question", "Alex Kim"), match=DECISION)
    run = autonomous.run_start(focus_group=session)
    turns()
    run.refresh_from_db()
    assert run.status == RunStatus.ENDED and run.turns_done <= run.turn_budget == 16
    assert set(run.speaking_counts.values()) != {0} and min(run.speaking_counts.values()) >= 1  # everyone spoke
    lines = [content for role, _, content in transcript(session) if role == MessageRole.MODERATOR]
    asked = [q["text"] for s in GUIDE["sections"] for q in s["questions"]]
    firsts = [next(i for i, line in enumerate(lines) if question in line) for question in asked]
    assert firsts == sorted(firsts)  # the guide's questions, in its order
    # No round is larger than the room, and none spends more than its section's turns.
    assert all(len(answered) <= len(PEOPLE) for _, answered in steps(session))
    habits = steps(session)[0]
    assert "How do you plan weeknight dinners?" in habits[0] and len(habits[1]) == 4
    # Moving on right after the round is too soon while the question's share leaves room: a probe to the one
    # the model named (who had just answered), then the others react to what they said.
    probe, reactions = steps(session)[1:3]
    assert probe == ("", ["Alex Kim"])
    assert "Alex just said" in reactions[0] and sorted(reactions[1]) == ["Maya Ortiz", "Priya Shah", "Tom Reed"]


def test_the_simulator_goes_round_the_table_and_probes_who_just_spoke(funded, turns):
    session = make_session(funded)
    run = autonomous.run_start(focus_group=session)
    turns()
    run.refresh_from_db()
    assert run.status == RunStatus.ENDED
    said = steps(session)
    assert len(said[0][1]) == len(PEOPLE)  # the opening question goes round the table
    assert all(count >= 1 for count in run.speaking_counts.values())
    # A line addressed to one person by name is answered by that person alone; a probe goes to someone who
    # answered the line before it (the simulator probes the quietest of them).
    firsts = {name.split()[0]: name for name, _ in PEOPLE}
    addressed = [
        (i, firsts[line.split(",")[0]], who) for i, (line, who) in enumerate(said) if line.split(",")[0] in firsts
    ]
    assert addressed
    assert all(who == [name] for _, name, who in addressed)
    assert any(name in said[i - 1][1] for i, name, _ in addressed)


def test_a_replay_of_a_run_with_rounds_is_byte_identical(funded, turns, fake_llm):
    session = make_session(funded)
    autonomous.run_start(focus_group=session)
    turns(limit=1)
    fake_llm.add_fault("invalid_output", content=decision("probe", "Maya Ortiz"), match=DECISION)
    turns()
    session.refresh_from_db()
    assert session.status == "ended" and any(len(who) > 1 for _, who in steps(session))
    requests = len(fake_llm.requests)
    copy = replay.session_replay(focus_group=session)
    turns()
    copy.refresh_from_db()
    assert copy.status == "ended"
    assert transcript(copy) == transcript(session)
    assert len(fake_llm.requests) == requests  # the provider received nothing
    assert (
        AutonomousRun.objects.get(focus_group=copy).turns_done
        == AutonomousRun.objects.get(focus_group=session).turns_done
    )


def test_the_live_view_names_the_table_when_several_answer_next(funded):
    session = make_session(funded)
    run = autonomous.run_start(focus_group=session)
    first = session.participants.select_related("persona").first()
    assert autonomous.run_payload(run)["next_speaker"] == ""  # nothing decided yet
    round_reason = "The guide's question, round the table."
    AutonomousRun.objects.filter(pk=run.pk).update(next_speaker=None, next_reason=round_reason)
    run.refresh_from_db()
    assert autonomous.run_payload(run)["next_speaker"] == "The table"
    AutonomousRun.objects.filter(pk=run.pk).update(next_speaker=first.persona, next_reason="Probing what they said.")
    run.refresh_from_db()
    assert autonomous.run_payload(run)["next_speaker"] == first.persona.name
