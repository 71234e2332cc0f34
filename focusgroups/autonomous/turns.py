"""Autonomous mode's turns: an AI moderator works through the discussion guide, one short task a turn.

Each turn is a short task: claim turn N of the run (a conditional UPDATE: a
duplicate or late task finds nothing to claim), decide (mini model,
structured output; an unknown speaker or invalid output falls back to
round-robin), let the chosen persona answer (streamed), and save the
moderator's line and the answer together with ``turns_done = N + 1`` in one
transaction. A worker killed mid-turn loses only that turn; the reaper marks
the run interrupted and the researcher resumes it. One charge per run.

When the provider fails, a turn fails as a whole (a decision the provider did not answer is not
followed by an answer call that would fail the same way): nothing is saved, the persona it was for
moves down the rotation, and the same turn is tried again after a growing delay. After a few failed
turns in a row (App settings) the run pauses as ``provider_unavailable`` and can be resumed. A run that
stops with fewer answers than App settings' minimum is refunded in full, once."""

import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from cohorta.core.models import get_app_settings
from cohorta.errors import InsufficientCredits, QuotaExceeded
from focusgroups import conversation, events, round_helpers
from focusgroups.autonomous import runs
from focusgroups.autonomous.position import advance, position, question_floor, question_target, section_budget
from focusgroups.guide.services import guide_sections
from focusgroups.models import (
    AutonomousRun,
    FocusGroup,
    Message,
    MessageRole,
    MessageStatus,
    RunEndReason,
    RunStatus,
)
from focusgroups.quality import conformity
from focusgroups.report import live_themes
from llm.errors import LLMConfigurationError, LLMError, LLMRateLimited, LLMTimeout, LLMUnavailable
from llm.gateway import complete
from llm.prompts import render_prompt
from llm.replay import focus_group_scope, llm_run
from personas.models import Persona

logger = logging.getLogger(__name__)

ACTIONS = ["ask_question", "probe", "next_question", "invite_quiet", "wrap_up"]
# A claimed turn beats this often while it waits on the provider: one call may take minutes (retries of a
# hanging provider up to the gateway's deadline), longer than a dead worker's run is given.
BEAT_SECONDS = 20
RETRY_MAX_SECONDS = 300  # the longest wait between attempts at a failing turn
# The provider is not answering (as opposed to one bad answer): the turn's other calls would fail the same way.
PROVIDER_DOWN = (LLMUnavailable, LLMRateLimited, LLMTimeout, LLMConfigurationError)


def turn_run(*, run_id: int, turn: int) -> str:
    """One turn of an autonomous run. Returns what happened (for logs and tests)."""
    run = _claim(run_id, turn)
    if run is None:
        return "not-claimed"
    # Every call of the task belongs to the session's run: looked up once here, not by each call.
    with _TurnBeat(run.pk, turn) as beat, llm_run(focus_group_scope(run.focus_group_id)):
        if turn == 0:
            # Conformity: the private answers come before anyone speaks, all at once (about one call's wait).
            conformity.before_round(focus_group_id=run.focus_group_id)
        return _take_turn(run, turn, beat)


def _claim(run_id: int, turn: int) -> AutonomousRun | None:
    claimed = AutonomousRun.objects.filter(
        Q(pk=run_id, status__in=[RunStatus.RUNNING, RunStatus.STOPPING], turns_done=turn)
        & (Q(claimed_turn__isnull=True) | Q(claimed_turn__lt=turn))
    ).update(claimed_turn=turn, heartbeat_at=timezone.now())
    if not claimed:
        return None
    return AutonomousRun.objects.select_related("focus_group__owner", "focus_group__guide").get(pk=run_id)


class _TurnBeat:
    """Keeps a claimed turn's heartbeat fresh from a side thread while the worker waits on the provider,
    so the reaper takes only a dead worker's turn for lost, not one stuck behind a slow or hanging call."""

    def __init__(self, run_id: int, turn: int) -> None:
        self.run_id, self.turn = run_id, turn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"run-beat-{run_id}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(BEAT_SECONDS):
                try:
                    AutonomousRun.objects.filter(
                        pk=self.run_id, claimed_turn=self.turn, status__in=[RunStatus.RUNNING, RunStatus.STOPPING]
                    ).update(heartbeat_at=timezone.now())
                except Exception:  # a missed beat is not worth failing the turn
                    logger.exception("Heartbeat for run %s failed", self.run_id)
        finally:
            connection.close()


def retry_delay(failed_in_a_row: int) -> int:
    """Seconds before the next attempt after that many failed turns in a row: App settings' wait (10 s by
    default), then three times longer after each further failure (30, 90, …), at most RETRY_MAX_SECONDS."""
    base = get_app_settings().autonomous_retry_seconds
    return min(RETRY_MAX_SECONDS, base * 3 ** max(0, failed_in_a_row - 1))


@dataclass
class Step:
    """What one step of the discussion asks of whom: the moderator's line and who answers it, one person or
    several at once (round the table). ``then``: what the moderator planned to follow it without another
    decision call (``decide``: ask the model again)."""

    decision: dict
    speakers: list
    moderator_text: str | None
    prompt_text: str
    kind: str = "one"  # "one", "round" (a question to several at once) or "react" (the others on a probe's answer)
    then: str = "decide"


@dataclass
class _Room:
    """What a task reads once and keeps for every step it takes: the people, their names, the guide."""

    focus_group: FocusGroup
    participants: list
    names: dict
    sections: list[dict]
    labels: dict = field(default_factory=dict)
    assets: list[str] | None = None  # the session's material as prompts show it, read at the first answer


def _take_turn(run: AutonomousRun, turn: int, beat: "_TurnBeat | None" = None) -> str:
    """Take turn ``turn`` and the steps the moderator planned after it, in this task. A guide question nobody
    has been asked yet goes round the table without a decision; one decision call may then set up to three
    steps (a probe to one person, the others' reactions to it, the next question round the table), so fewer
    answers wait for a decision. Each step is saved in its own transaction and keeps the claim on the next
    turn, so a duplicate task finds nothing to claim and a dead worker loses one step."""
    focus_group = run.focus_group
    participants = list(focus_group.participants.select_related("persona"))
    room = _Room(
        focus_group=focus_group,
        participants=participants,
        names=runs.persona_names(participants),
        sections=guide_sections(focus_group),
        labels=speaker_labels(participants),
    )
    planned = "decide"
    while True:
        outcome = _take_step(run, turn, room, planned)
        if not isinstance(outcome, tuple):
            return outcome
        run, planned = outcome
        run.focus_group = focus_group  # the same session, already read
        turn = run.turns_done
        if beat is not None:
            # The claim moved on to the planned step: beat for it, or the reaper takes a slow call for a dead worker.
            beat.turn = turn


def _take_step(run: AutonomousRun, turn: int, room: _Room, planned: str):
    """One step. Returns what happened, or (the run as saved, what was planned next) when the task goes on."""
    focus_group, participants, sections = room.focus_group, room.participants, room.sections
    if run.turns_done >= run.turn_budget:
        runs.run_end(run=run, reason=RunEndReason.TURN_BUDGET)
        return "ended"
    if run.section_index >= len(sections):
        runs.run_end(run=run, reason=RunEndReason.GUIDE_DONE)
        return "ended"
    # What the researcher said that the moderator has not seen yet. Numbered by when it was posted, so an
    # interjection made during a turn sits *before* that turn's messages: go by what was seen, not by order.
    said = list(
        focus_group.messages.filter(role=MessageRole.RESEARCHER, sequence__gt=run.researcher_seen_through)
        .order_by("sequence")
        .values_list("sequence", "content")[:10]
    )
    interjection = "\n".join(content for _, content in said)
    seen_through = said[-1][0] if said else run.researcher_seen_through
    _section, question, following = position(run, sections)
    # A planned step goes ahead without a decision unless the researcher spoke meanwhile: then the moderator
    # revises the plan (decides afresh, with what they said).
    step = None if said else _planned_step(run, room, planned, question, following)
    if step is None:
        try:
            decision = _decide(run, focus_group, participants, sections, interjection, labels=room.labels)
        except QuotaExceeded as exc:
            runs.run_end(
                run=run, reason=RunEndReason.SESSION_CAP if exc.code == "session_cap_reached" else RunEndReason.QUOTA
            )
            return "ended"
        except PROVIDER_DOWN as exc:
            return _turn_failed(run, turn, _fallback_speaker(run, participants, avoid=_avoid(run)), exc.message)
        decision = _hold_to_the_guide(decision, run, sections, following)
        decision = _balance(_probe_the_last_speaker(decision), run, participants)
        if decision["action"] == "wrap_up":
            _save_turn(
                run,
                turn,
                moderator_text=decision.get("moderator_message")
                or "Thank you all — that's everything I wanted to ask. This was really helpful.",
                answers=[],
                decision=decision,
                guide_done=True,
                room=room,
                seen_through=seen_through,
            )
            runs.run_end(run=AutonomousRun.objects.get(pk=run.pk), reason=RunEndReason.GUIDE_DONE)
            return "ended"
        step = _step_for(decision, run, room, question, following)
    speaker = step.speakers[0] if len(step.speakers) == 1 else None
    reason = step.decision["reason"][:300]
    run.next_speaker, run.next_reason = speaker, reason
    if (announced := runs.next_step_announce(run=run, speaker=speaker, reason=reason)) is not None:
        runs.publish_run_on_commit(announced, sections=sections, names=room.names, as_committed=True)
    answered, failure = _answer_step(run, turn, room, step)
    if failure is not None:
        kind, persona, message = failure
        if kind == "quota":
            AutonomousRun.objects.filter(pk=run.pk).update(claimed_turn=None)
            runs.run_end(
                run=run, reason=RunEndReason.SESSION_CAP if message == "session_cap_reached" else RunEndReason.QUOTA
            )
            return "ended"
        if not answered:
            return _turn_failed(run, turn, persona, message)
    saved = _save_turn(
        run,
        turn,
        moderator_text=step.moderator_text,
        answers=answered,
        decision=step.decision,
        guide_done=False,
        room=room,
        seen_through=seen_through,
        go_on=step.then != "decide",
    )
    if saved is None:
        return "saved"
    return saved, step.then


def _probe_the_last_speaker(decision: dict) -> dict:
    """A probe digs into what someone just said: it goes to one who said it (the model's choice among them,
    else the last of them), who answers with their own words in the transcript of their prompt."""
    last = decision.get("last_speakers") or []
    if decision["action"] != "probe" or not last:
        return decision
    if decision["speaker"] in last:
        return decision
    return {**decision, "speaker": last[-1]}


def _hold_to_the_guide(decision: dict, run: AutonomousRun, sections, following) -> dict:
    """The guide's pace over the model's: no question rushed, no early goodbye, every question asked first."""
    # A wrap-up ends the run only once the guide's last question has had a turn (or the budget is all but
    # spent): a model that wants to close early must not skip the rest of the guide.
    floor = question_floor(run, sections)
    near_the_end = (following is None and run.question_turns >= floor) or run.turns_done >= run.turn_budget - 2
    if decision["action"] == "wrap_up" and not near_the_end:
        # Too early to close: carry on with the guide instead (its own words, not the model's goodbye).
        decision = {
            **decision,
            "action": "next_question" if run.question_turns >= floor and following is not None else "probe",
            "moderator_message": None,
        }
    # A question that has had only its round of the table gets a probe before the guide moves on, when its
    # share of the section leaves room for one: the room reacts to what was said, not just to the guide.
    round_only = run.question_turns <= len(decision.get("last_speakers") or [])
    if decision["action"] == "next_question" and (
        run.question_turns < floor or (round_only and run.question_turns < question_target(run, sections))
    ):
        # Too soon to move on (or, on the last question, to finish): the guide gives this question more
        # turns. Stay on it, without the line that would ask the next question.
        decision = {**decision, "action": "probe", "moderator_message": None}
    if decision["action"] == "ask_question" and run.question_turns > 0:
        # The question has been asked (round the table): asking it again is a probe, in the model's words.
        decision = {**decision, "action": "probe"}
    if run.question_turns == 0 and decision["action"] not in ("ask_question", "next_question", "wrap_up"):
        # Nobody has asked the current question yet (the session is new, or the guide moved on because the
        # last question's turns were spent): ask it, in the guide's words, before anyone probes.
        decision = {**decision, "action": "ask_question", "moderator_message": None}
    return decision


def _room_size(run: AutonomousRun, room: _Room, *, next_question: bool) -> int:
    """How many may answer one question at once: everyone, within what is left of the run's turns and (for the
    current question) of its section's turns, so a round never spends another section's share."""
    left = run.turn_budget - run.turns_done
    if not next_question:
        left = min(left, section_budget(run, room.sections) - run.section_turns)
    return max(1, min(len(room.participants), left))


def _quietest(run: AutonomousRun, participants, count: int, *, leave_out=()) -> list:
    """``count`` people, those who have spoken least first, in seating order."""
    counts = run.speaking_counts
    pool = [p for p in participants if p.persona_id not in leave_out]
    pool.sort(key=lambda p: (counts.get(str(p.persona_id), 0), p.position))
    return sorted(pool[:count], key=lambda p: p.position)


def _step_for(decision: dict, run: AutonomousRun, room: _Room, question: dict, following: dict | None) -> Step:
    """The step a decision asks for. A guide question goes round the table at once; a probe goes to one person
    who just spoke (about what they said), with the conversation so far in their prompt, and the others react
    to their answer after it (planned: no decision in between)."""
    action = decision["action"]
    moderator_text = _moderator_line(decision, question, following, run.opened)
    if action in ("ask_question", "next_question"):
        size = _room_size(run, room, next_question=action == "next_question")
        people = _quietest(run, room.participants, size)
        if len(people) > 1:
            return Step(
                decision={**decision, "reason": decision["reason"] or "Round the table."},
                speakers=[p.persona for p in people],
                moderator_text=moderator_text,
                prompt_text=moderator_text or question["text"],
                kind="round",
                # After a round the moderator reads the answers before going on.
                then="decide",
            )
    speaker = decision["speaker"]
    then = decision.get("then") or "decide"
    if then == "others_react" and len(room.participants) < 2:
        then = "decide"
    return Step(
        decision=decision,
        speakers=[speaker],
        moderator_text=moderator_text,
        prompt_text=moderator_text or question["text"],
        then=then,
    )


def _planned_step(run: AutonomousRun, room: _Room, planned: str, question: dict, following: dict | None):
    """The step that needs no decision, or None (decide instead): a guide question nobody has been asked yet goes
    round the table (the opening, or the guide moved on by itself); the others react to what the last speaker
    said, or the next question goes round the table once this one had its turns, when the last decision planned it.
    Decisions are left for what needs judgement: whom to probe, and on what."""
    if run.question_turns == 0:
        text = _moderator_line({"action": "ask_question"}, question, following, run.opened) or question["text"]
        if run.failed_turns:
            # The provider failed the last attempt: ask one person (the rotation's next), not the whole table,
            # so an outage costs one call (and its retries) per attempt, not one per person.
            speaker = _fallback_speaker(run, room.participants, avoid=_avoid(run))
            asked: dict = {"action": "ask_question", "reason": "Trying the question again with one person."}
            return Step({**asked, "moderator_message": None}, [speaker], text, text)
        return _guide_round(run, room, "ask_question", text, next_question=False)
    if planned == "others_react":
        last = run.next_speaker_id
        size = min(_room_size(run, room, next_question=False), len(room.participants) - 1)
        people = _quietest(run, room.participants, size, leave_out=(last,)) if size > 0 else []
        if not people:
            return None
        first = room.names.get(str(last), "").split()
        text = (
            f"What do the rest of you make of what {first[0]} just said?" if first else "What do the rest of you think?"
        )
        decision: dict = {"action": "probe", "reason": "The others react to that answer.", "moderator_message": text}
        return Step(decision, [p.persona for p in people], text, text, kind="react", then="next_question")
    if planned == "next_question":
        if following is not None and run.question_turns >= question_floor(run, room.sections):
            return _guide_round(run, room, "next_question", following["text"], next_question=True)
        return None  # this question needs more turns: the moderator decides how
    return None


def _guide_round(run: AutonomousRun, room: _Room, action: str, text: str, *, next_question: bool) -> Step:
    """A guide question, in the guide's words, to the whole table at once (within the budgets left). The current
    question's round takes no more than its share of the section, so the section's other questions get asked."""
    size = _room_size(run, room, next_question=next_question)
    if not next_question:
        size = min(size, question_target(run, room.sections))
    people = _quietest(run, room.participants, size)
    asked: dict = {"action": action, "reason": "The guide's question, round the table.", "moderator_message": None}
    return Step(asked, [p.persona for p in people], text, text, kind="round" if len(people) > 1 else "one")


@dataclass
class _Answered:
    persona: Persona
    text: str = ""
    answer_id: uuid.UUID | None = None
    simulated: bool = False
    error: str = ""
    quota: str = ""  # the QuotaExceeded code, when that is why it failed


def _answer_step(run: AutonomousRun, turn: int, room: _Room, step: Step):
    """Every answer of the step, at the same time when several people answer (a round takes about one call's
    wait). Returns (the answers, in seating order; the first failure or None)."""
    focus_group = room.focus_group
    many = len(step.speakers) > 1
    prompt_message = Message(
        focus_group=focus_group,
        sequence=focus_group.last_sequence + 1,
        role=MessageRole.MODERATOR,
        content=step.prompt_text,
        mentions=[p.pk for p in step.speakers] if len(step.speakers) < len(room.participants) else [],
    )

    def one(persona) -> _Answered:
        # A round's answers each have their own id; a single answer keeps the turn's (as before rounds).
        key = f"cohorta-run:{run.pk}:{turn}:{persona.pk}" if many else f"cohorta-run:{run.pk}:{turn}"
        answer_id = uuid.uuid5(uuid.NAMESPACE_URL, key)
        try:
            result = conversation.persona_answer(
                focus_group=focus_group,
                persona=persona,
                prompt_message=prompt_message,
                answer_id=answer_id,
                participants=room.participants,
                on_delta=lambda _delta: _keep_alive(run),
                assets=room.assets,
                transcript=transcript,
            )
            text = result.text.strip()
            if not text:
                raise LLMError("The AI returned an empty answer.")
            return _Answered(persona, text, answer_id, result.simulated)
        except QuotaExceeded as exc:
            return _Answered(persona, error=exc.message, quota=exc.code or "quota")
        except LLMError as exc:
            return _Answered(persona, error=exc.message)

    if room.assets is None:
        room.assets = conversation.asset_blocks(focus_group)
    # Every answer of a step replies to the same line after the same talk: the window is read once.
    transcript = conversation.transcript_window(focus_group=focus_group, before_sequence=prompt_message.sequence)
    # The first speaker answers in this thread; the others in the process's round helpers, at the same time.
    crashed = "Something went wrong with this answer. It has been logged."
    with conversation.answering_together(focus_group):
        results = round_helpers.answer_together(
            one, step.speakers, crashed=lambda persona: _Answered(persona, error=crashed)
        )
    answered = [r for r in results if not r.error]
    failed = next((r for r in results if r.error), None)
    if failed is None:
        return answered, None
    quota = next((r for r in results if r.quota), None)
    if quota is not None:
        return [], ("quota", quota.persona, quota.quota)
    return answered, ("error", failed.persona, failed.error)


REASON_CHARS = 160  # "say briefly why": shown beside the next speaker, and every character is waited for


def decision_schema(speaker_labels: list[str]) -> dict:
    """The decision step's structured output. ``next_speaker`` is an enum of the people in the room:
    with strict structured output the model cannot name someone else, so no turn pays for a second
    decision call (a wrong name is a schema error, retried once by the gateway, then round-robin).
    The plan around it is the engine's, not the model's (guide questions go round the table, the others react
    to a probe's answer, the next question follows), so the model writes only what needs judgement: every
    token of a decision is waited for. The fields come in the order they are used, the reason last."""
    return {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ACTIONS},
            "next_speaker": {"type": "string", "enum": speaker_labels},
            "moderator_message": {"type": ["string", "null"]},
            # Within the column it is shown from: a longer reason is cut at a word, not rejected.
            "reason": {
                "type": "string",
                "maxLength": min(REASON_CHARS, AutonomousRun._meta.get_field("next_reason").max_length or REASON_CHARS),
            },
        },
        "required": ["action", "next_speaker", "moderator_message", "reason"],
        "additionalProperties": False,
    }


def speaker_labels(participants) -> dict[str, Persona]:
    """One unique label per participant (the name; "Name (2)" for a second persona of the same name),
    in seating order, mapped to the persona: an enum's values must be distinct."""
    labels: dict[str, Persona] = {}
    for participant in participants:
        name = participant.persona.name.strip() or f"Participant {participant.position + 1}"
        label, n = name, 1
        while label in labels:
            n += 1
            label = f"{name} ({n})"
        labels[label] = participant.persona
    return labels


def _fallback_speaker(run: AutonomousRun, participants, *, avoid: int | None = None) -> Persona:
    """Round-robin by fewest turns, spoken or failed (a failed turn moves the rotation on, so an outage does
    not keep naming one persona): the safe choice when the decision step fails. ``avoid``: whose turn
    just failed."""
    counts, missed = run.speaking_counts, run.missed_turns or {}
    pool = [p for p in participants if p.persona_id != avoid] or participants

    def turns(p) -> int:
        return counts.get(str(p.persona_id), 0) + missed.get(str(p.persona_id), 0)

    return min(pool, key=lambda p: (turns(p), p.position)).persona


def _avoid(run: AutonomousRun) -> int | None:
    """The persona whose turn failed last, while the failures go on: the next turn goes to someone else."""
    return run.last_failed_speaker_id if run.failed_turns else None


def _last_speakers(recent: list[Message], participants) -> list[Persona]:
    """Who answered the moderator's last line (newest messages first in ``recent``), in the order they spoke."""
    by_id = {p.persona_id: p.persona for p in participants}
    spoke = []
    for message in recent:
        if message.role != MessageRole.PERSONA:
            break
        if message.persona_id in by_id and by_id[message.persona_id] not in spoke:
            spoke.append(by_id[message.persona_id])
    return list(reversed(spoke))


def _decide(
    run: AutonomousRun, focus_group: FocusGroup, participants, sections, interjection: str, *, labels=None
) -> dict:
    section, question, following = position(run, sections)
    counts = run.speaking_counts
    labels = labels or speaker_labels(participants)
    recent = list(focus_group.messages.filter(status=MessageStatus.COMPLETE).order_by("-sequence")[:12])
    last_speakers = _last_speakers(recent, participants)
    transcript = "\n".join(conversation.transcript_line(m) for m in reversed(recent))
    prompt = render_prompt(
        "focusgroups:moderator_decision",
        {
            "objective": focus_group.objective,
            "concept": focus_group.concept,
            "section_number": run.section_index + 1,
            "section_count": len(sections),
            "section_title": section["title"],
            "section_goal": section.get("goal", ""),
            "question": question["text"],
            "probes": question.get("probes", []),
            "next_question": following["text"] if following else "",
            "question_turns": run.question_turns,
            "question_target": question_target(run, sections),
            "section_turns": run.section_turns,
            "section_budget": section_budget(run, sections),
            "turns_done": run.turns_done,
            "turn_budget": run.turn_budget,
            "interjection": interjection,
            "summary": focus_group.summary,
            "participants": [
                {"name": label, "count": counts.get(str(persona.pk), 0)} for label, persona in labels.items()
            ],
            "transcript": transcript,
            "last_speakers": [label for label, persona in labels.items() if persona in last_speakers],
            "room_size": len(participants),
        },
    )
    try:
        result = complete(
            feature="conversation_decision",
            messages=[{"role": "user", "content": prompt}],
            schema=decision_schema(list(labels)),
            schema_name="moderator_decision",
            user=focus_group.owner,
            focus_group_id=focus_group.pk,
            focus_group_cap_usd=focus_group.cost_cap_usd,
            alias=focus_group.model_alias or None,
            deadline_seconds=min(settings.LLM_DECISION_DEADLINE_SECONDS, settings.LLM_DEADLINE_SECONDS),
        )
    except (QuotaExceeded, InsufficientCredits, *PROVIDER_DOWN):
        raise  # the provider is down: the answer call would fail too, so the turn fails here
    except LLMError as exc:
        # Invalid JSON or an unknown speaker, twice (the gateway retries once): round-robin instead.
        logger.warning("Decision step failed for run %s: %s", run.pk, exc.message)
    else:
        # The gateway validated the answer against the schema: the name is one of the labels.
        # The plan is the engine's: after the one person the model named answers, the others react to it.
        return {
            **result.data,
            "speaker": labels[result.data["next_speaker"]],
            "last_speakers": last_speakers,
            "then": "others_react",
        }
    return {
        "action": "probe" if run.opened else "ask_question",
        "then": "decide",  # a failed decision plans nothing: the next step is decided afresh
        "speaker": _fallback_speaker(run, participants, avoid=_avoid(run)),
        "reason": "Round-robin: giving the floor to who has spoken least.",
        "moderator_message": None,
        "last_speakers": [],
    }


def _balance(decision: dict, run: AutonomousRun, participants) -> dict:
    """Keep one persona from dominating: whoever is already two turns ahead of the quietest does not
    get the floor again (one follow-up to the same person is fine; a monologue is not); the quietest does."""
    avoid = _avoid(run)
    if decision["speaker"].pk == avoid and len(participants) > 1:
        other = _fallback_speaker(run, participants, avoid=avoid)
        return {**decision, "speaker": other, "reason": f"The last turn failed; {other.name} speaks instead."}
    counts = [run.speaking_counts.get(str(p.persona_id), 0) for p in participants]
    chosen = run.speaking_counts.get(str(decision["speaker"].pk), 0)
    if chosen - min(counts) >= 2:
        quiet = _fallback_speaker(run, participants)
        return {
            **decision,
            "speaker": quiet,
            "reason": f"Balance: {quiet.name} has spoken least.",
            "action": "invite_quiet" if decision["action"] == "probe" else decision["action"],
        }
    return decision


def _moderator_line(decision: dict, question: dict, following: dict | None, opened: bool) -> str | None:
    text = (decision.get("moderator_message") or "").strip()
    action = decision["action"]
    if action == "next_question" and following is not None and not text:
        text = following["text"]
    if action == "ask_question" and not text:
        text = question["text"] if opened else f"Welcome, everyone, and thank you for joining. {question['text']}"
    if action == "invite_quiet" and not text:
        text = f"{decision['speaker'].name.split()[0]}, we haven't heard from you yet — what do you think?"
    return text[:1500] or None


def _keep_alive(run: AutonomousRun) -> None:
    """While an answer streams in, the run's heartbeat moves on (every 10 s at most)."""
    now = timezone.now()
    if (now - (run.heartbeat_at or now)).total_seconds() > 10:
        run.heartbeat_at = now
        AutonomousRun.objects.filter(pk=run.pk).update(heartbeat_at=now)


def _turn_failed(run: AutonomousRun, turn: int, speaker, error: str) -> str:
    """The turn's call failed after the gateway's retries. Nothing of it is saved and it does not count:
    the same turn is tried again after a growing delay, for someone else (the failed persona moves down
    the rotation). After App settings' number of failed turns in a row the run pauses instead."""
    failed = run.failed_turns + 1
    key = str(speaker.pk)
    missed = {**(run.missed_turns or {}), key: (run.missed_turns or {}).get(key, 0) + 1}
    if failed >= get_app_settings().autonomous_failed_turns_to_pause:
        return runs.pause_for_provider(run, turn, failed=failed, missed=missed, speaker=speaker, error=error)
    delay = retry_delay(failed)
    logger.warning("Run %s: turn %s failed (%s); trying again in %ss", run.pk, turn, error, delay)
    with transaction.atomic():
        fields = {
            "claimed_turn": None,
            "failed_turns": failed,
            "missed_turns": missed,
            "last_failed_speaker": speaker,
            "next_speaker": None,
            "next_reason": "",
            # When the next attempt is due: the reaper counts a lost turn from then, not from now.
            "heartbeat_at": timezone.now() + timedelta(seconds=delay),
        }
        mine = AutonomousRun.objects.filter(pk=run.pk, claimed_turn=turn)
        if mine.filter(status=RunStatus.RUNNING).update(**fields):
            runs.enqueue_turn_on_commit(run.pk, turn, countdown=delay)
        elif mine.filter(status=RunStatus.STOPPING).update(**fields):
            runs.pause(run)  # stopped during the failed turn: no next attempt
        else:
            return "not-claimed"  # reaped or ended meanwhile
        run.refresh_from_db()
        runs.publish_run_on_commit(run)
    return "retrying"


def _save_turn(
    run: AutonomousRun,
    turn: int,
    *,
    moderator_text,
    answers: list,
    decision,
    guide_done,
    room: _Room | None = None,
    seen_through: int | None = None,
    go_on: bool = False,
):
    """Save the step's messages and move the run on, in one transaction; then schedule the next turn, or,
    with ``go_on`` (the moderator planned the next step), keep the claim on it and return the run as saved for
    this task to carry on. ``seen_through``: the researcher's messages this step's decision took into account."""
    sections = room.sections if room is not None else guide_sections(run.focus_group)
    names = room.names if room is not None else None
    with transaction.atomic():
        locked = AutonomousRun.objects.select_for_update().get(pk=run.pk)
        if locked.turns_done != turn or locked.claimed_turn != turn:
            return None  # someone else finished or reclaimed this turn: save nothing twice
        focus_group_id = locked.focus_group_id
        count = bool(moderator_text) + len(answers)
        first = conversation.reserve_sequences(focus_group_id, count) if count else 0
        numbers = iter(range(first, first + count))  # one UPDATE for the step's messages, in order
        messages = []
        if moderator_text:
            messages.append(
                Message(
                    focus_group_id=focus_group_id,
                    sequence=next(numbers),
                    role=MessageRole.MODERATOR,
                    speaker_name="AI moderator",
                    content=moderator_text,
                )
            )
        for answer in answers:  # in seating order: the same transcript however the round's calls finished
            messages.append(
                Message(
                    focus_group_id=focus_group_id,
                    sequence=next(numbers),
                    role=MessageRole.PERSONA,
                    persona=answer.persona,
                    speaker_name=answer.persona.name,
                    content=answer.text,
                    answer_id=answer.answer_id,
                    simulated=answer.simulated,
                )
            )
            key = str(answer.persona.pk)
            locked.speaking_counts[key] = locked.speaking_counts.get(key, 0) + 1
        Message.objects.bulk_create(messages)  # one INSERT for the step
        for message in messages:
            events.publish_message_on_commit(message)
        if answers:
            locked.failed_turns = 0
            locked.last_failed_speaker = None
        if seen_through is not None:
            locked.researcher_seen_through = max(locked.researcher_seen_through, seen_through)
        locked.opened = True
        spent = max(1, len(answers))  # each answer is a turn of the budget; a closing line alone is one
        locked.question_turns += spent
        locked.section_turns += spent
        finished = guide_done or (
            sections and advance(locked, decision.get("action", ""), sections, answered=len(answers))
        )
        locked.turns_done = turn + spent
        locked.claimed_turn = None
        locked.heartbeat_at = timezone.now()
        carry_on = (
            go_on
            and not finished
            and locked.status == RunStatus.RUNNING
            and locked.turns_done < locked.turn_budget
            and locked.section_index < len(sections)
        )
        if carry_on:
            locked.claimed_turn = locked.turns_done  # this task takes the next step: a duplicate finds it claimed
        locked.save()
        if room is not None and count:
            room.focus_group.last_sequence = first + count - 1
        runs.publish_run_on_commit(locked, sections=sections, names=names, as_committed=True)
        # Long runs keep a bounded context: fold turns that left the window into the summary (a task
        # only when it is due: the summary the turn read may be behind, which only asks too early; and
        # only after an answer, the sign the provider is answering).
        summary_through = room.focus_group.summary_through if room is not None else run.focus_group.summary_through
        if answers and conversation.summary_due(last_sequence=first + count - 1, summary_through=summary_through):
            transaction.on_commit(lambda: conversation.summary_enqueue(focus_group_id))
        if answers:
            live_themes.live_themes_enqueue_on_commit(focus_group_id)
        if finished:
            if not guide_done:
                # The last question's turns are spent: the run is over, no next turn is queued.
                transaction.on_commit(
                    lambda: runs.run_end(run=AutonomousRun.objects.get(pk=locked.pk), reason=RunEndReason.GUIDE_DONE)
                )
            return None
        if carry_on:
            return locked
        if locked.turns_done >= locked.turn_budget:
            transaction.on_commit(
                lambda: runs.run_end(run=AutonomousRun.objects.get(pk=locked.pk), reason=RunEndReason.TURN_BUDGET)
            )
        elif locked.status == RunStatus.STOPPING:
            runs.pause(locked)
            runs.publish_run_on_commit(locked)
        elif locked.status == RunStatus.RUNNING:
            runs.enqueue_turn_on_commit(locked.pk, locked.turns_done)
    return None
