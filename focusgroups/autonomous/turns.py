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
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from cohorta.core.models import get_app_settings
from cohorta.errors import InsufficientCredits, QuotaExceeded
from focusgroups import conversation, events
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
    with _TurnBeat(run.pk, turn):
        if turn == 0:
            # Conformity: the private answers come before anyone speaks, all at once (about one call's wait).
            conformity.before_round(focus_group_id=run.focus_group_id)
        return _take_turn(run, turn)


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


def _take_turn(run: AutonomousRun, turn: int) -> str:
    focus_group = run.focus_group
    participants = list(focus_group.participants.select_related("persona"))
    names = runs.persona_names(participants)
    sections = guide_sections(focus_group)
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
    try:
        decision = _balance(_decide(run, focus_group, participants, sections, interjection), run, participants)
    except QuotaExceeded as exc:
        runs.run_end(
            run=run, reason=RunEndReason.SESSION_CAP if exc.code == "session_cap_reached" else RunEndReason.QUOTA
        )
        return "ended"
    except PROVIDER_DOWN as exc:
        return _turn_failed(run, turn, _fallback_speaker(run, participants, avoid=_avoid(run)), exc.message)
    _section, question, following = position(run, sections)
    speaker = decision["speaker"]
    AutonomousRun.objects.filter(pk=run.pk).update(next_speaker=speaker, next_reason=decision["reason"][:300])
    run.next_speaker, run.next_reason = speaker, decision["reason"][:300]
    runs.publish_run_on_commit(run, sections=sections, names=names)
    # A wrap-up ends the run only once the guide's last question has had a turn (or the budget is all but
    # spent): a model that wants to close early must not skip the rest of the guide.
    floor = question_floor(run, sections)
    near_the_end = (following is None and run.question_turns >= floor) or run.turns_done >= run.turn_budget - 2
    if decision["action"] == "next_question" and run.question_turns < floor:
        # Too soon to move on (or, on the last question, to finish): the guide gives this question more
        # turns. Stay on it, without the line that would ask the next question.
        decision = {**decision, "action": "probe", "moderator_message": None}
    if decision["action"] == "wrap_up" and not near_the_end:
        # Too early to close: carry on with the guide instead (its own words, not the model's goodbye).
        decision = {
            **decision,
            "action": "next_question" if run.question_turns >= floor and following is not None else "probe",
            "moderator_message": None,
        }
    if run.question_turns == 0 and decision["action"] not in ("ask_question", "next_question", "wrap_up"):
        # Nobody has asked the current question yet (the session is new, or the guide moved on because the
        # last question's turns were spent): ask it, in the guide's words, before anyone probes.
        decision = {**decision, "action": "ask_question", "moderator_message": None}
    if decision["action"] == "wrap_up":
        _save_turn(
            run,
            turn,
            moderator_text=decision.get("moderator_message")
            or "Thank you all — that's everything I wanted to ask. This was really helpful.",
            answer=None,
            decision=decision,
            guide_done=True,
            sections=sections,
            names=names,
            seen_through=seen_through,
        )
        runs.run_end(run=AutonomousRun.objects.get(pk=run.pk), reason=RunEndReason.GUIDE_DONE)
        return "ended"
    moderator_text = _moderator_line(decision, question, following, run.opened)
    # The persona answers the moderator's line (or the last point), streamed like a moderated answer.
    answer_id = uuid.uuid5(uuid.NAMESPACE_URL, f"cohorta-run:{run.pk}:{turn}")
    prompt_message = Message(
        focus_group=focus_group,
        sequence=focus_group.last_sequence + 1,
        role=MessageRole.MODERATOR,
        content=moderator_text or question["text"],
        mentions=[speaker.pk],
    )
    try:
        result = conversation.persona_answer(
            focus_group=focus_group,
            persona=speaker,
            prompt_message=prompt_message,
            answer_id=answer_id,
            participants=participants,
            on_delta=lambda _delta: _keep_alive(run),
        )
        answer_text = result.text.strip()
        if not answer_text:
            raise LLMError("The AI returned an empty answer.")
    except QuotaExceeded as exc:
        AutonomousRun.objects.filter(pk=run.pk).update(claimed_turn=None)
        runs.run_end(
            run=run, reason=RunEndReason.SESSION_CAP if exc.code == "session_cap_reached" else RunEndReason.QUOTA
        )
        return "ended"
    except LLMError as exc:
        return _turn_failed(run, turn, speaker, exc.message)
    _save_turn(
        run,
        turn,
        moderator_text=moderator_text,
        answer={"persona": speaker, "text": answer_text, "answer_id": answer_id, "simulated": result.simulated},
        decision=decision,
        guide_done=False,
        sections=sections,
        names=names,
        seen_through=seen_through,
    )
    return "saved"


def decision_schema(speaker_labels: list[str]) -> dict:
    """The decision step's structured output. ``next_speaker`` is an enum of the people in the room:
    with strict structured output the model cannot name someone else, so no turn pays for a second
    decision call (a wrong name is a schema error, retried once by the gateway, then round-robin)."""
    return {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ACTIONS},
            "next_speaker": {"type": "string", "enum": speaker_labels},
            # As long as the column it is shown from: a longer reason is cut at a word, not rejected.
            "reason": {"type": "string", "maxLength": AutonomousRun._meta.get_field("next_reason").max_length},
            "moderator_message": {"type": ["string", "null"]},
        },
        "required": ["action", "next_speaker", "reason", "moderator_message"],
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


def _decide(run: AutonomousRun, focus_group: FocusGroup, participants, sections, interjection: str) -> dict:
    section, question, following = position(run, sections)
    counts = run.speaking_counts
    labels = speaker_labels(participants)
    recent = list(focus_group.messages.filter(status=MessageStatus.COMPLETE).order_by("-sequence")[:12])
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
        return {**result.data, "speaker": labels[result.data["next_speaker"]]}
    return {
        "action": "probe" if run.opened else "ask_question",
        "speaker": _fallback_speaker(run, participants, avoid=_avoid(run)),
        "reason": "Round-robin: giving the floor to who has spoken least.",
        "moderator_message": None,
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
    answer,
    decision,
    guide_done,
    sections: list[dict] | None = None,
    names: dict | None = None,
    seen_through: int | None = None,
):
    """Save the turn's messages and move the run on, in one transaction; then schedule the next turn.
    ``seen_through``: the researcher's messages this turn's decision took into account."""
    if sections is None:
        sections = guide_sections(run.focus_group)
    with transaction.atomic():
        locked = AutonomousRun.objects.select_for_update().get(pk=run.pk)
        if locked.turns_done != turn or locked.claimed_turn != turn:
            return  # someone else finished or reclaimed this turn: save nothing twice
        focus_group_id = locked.focus_group_id
        count = bool(moderator_text) + (answer is not None)
        first = conversation.reserve_sequences(focus_group_id, count) if count else 0
        numbers = iter(range(first, first + count))  # one UPDATE for the turn's messages, in order
        if moderator_text:
            message = Message.objects.create(
                focus_group_id=focus_group_id,
                sequence=next(numbers),
                role=MessageRole.MODERATOR,
                speaker_name="AI moderator",
                content=moderator_text,
            )
            events.publish_message_on_commit(message)
        if answer is not None:
            message = Message.objects.create(
                focus_group_id=focus_group_id,
                sequence=next(numbers),
                role=MessageRole.PERSONA,
                persona=answer["persona"],
                speaker_name=answer["persona"].name,
                content=answer["text"],
                answer_id=answer["answer_id"],
                simulated=answer["simulated"],
            )
            events.publish_message_on_commit(message)
            key = str(answer["persona"].pk)
            locked.speaking_counts[key] = locked.speaking_counts.get(key, 0) + 1
            locked.failed_turns = 0
            locked.last_failed_speaker = None
        if seen_through is not None:
            locked.researcher_seen_through = max(locked.researcher_seen_through, seen_through)
        locked.opened = True
        locked.question_turns += 1
        locked.section_turns += 1
        finished = guide_done or (sections and advance(locked, decision.get("action", ""), sections))
        locked.turns_done = turn + 1
        locked.claimed_turn = None
        locked.heartbeat_at = timezone.now()
        locked.save()
        runs.publish_run_on_commit(locked, sections=sections, names=names)
        # Long runs keep a bounded context: fold turns that left the window into the summary (a task
        # only when it is due: the summary the turn read may be behind, which only asks too early; and
        # only after an answer, the sign the provider is answering).
        if answer is not None and conversation.summary_due(
            last_sequence=first + count - 1, summary_through=run.focus_group.summary_through
        ):
            transaction.on_commit(lambda: conversation.summary_enqueue(focus_group_id))
        if answer is not None:
            live_themes.live_themes_enqueue_on_commit(focus_group_id)
        if finished:
            if not guide_done:
                # The last question's turns are spent: the run is over, no next turn is queued.
                transaction.on_commit(
                    lambda: runs.run_end(run=AutonomousRun.objects.get(pk=locked.pk), reason=RunEndReason.GUIDE_DONE)
                )
            return
        if locked.turns_done >= locked.turn_budget:
            transaction.on_commit(
                lambda: runs.run_end(run=AutonomousRun.objects.get(pk=locked.pk), reason=RunEndReason.TURN_BUDGET)
            )
        elif locked.status == RunStatus.STOPPING:
            runs.pause(locked)
            runs.publish_run_on_commit(locked)
        elif locked.status == RunStatus.RUNNING:
            runs.enqueue_turn_on_commit(locked.pk, locked.turns_done)
