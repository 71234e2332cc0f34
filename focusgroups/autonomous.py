"""Autonomous mode: an AI moderator works through the discussion guide.

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

from billing.services import credits_refund, credits_spend
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, InsufficientCredits, QuotaExceeded
from focusgroups import discussion, events, live_themes
from focusgroups.models import (
    AutonomousRun,
    FocusGroup,
    FocusGroupStatus,
    Message,
    MessageRole,
    MessageStatus,
    RunEndReason,
    RunStatus,
)
from llm.errors import LLMConfigurationError, LLMError, LLMRateLimited, LLMTimeout, LLMUnavailable
from llm.gateway import complete
from llm.prompts import render_prompt

logger = logging.getLogger(__name__)

ACTIONS = ["ask_question", "probe", "next_question", "invite_quiet", "wrap_up"]
DEFAULT_TURN_BUDGET = 30
STALE_SECONDS = 75  # with the reaper every 30 s, a dead worker's run is marked within 2 minutes
# A claimed turn beats this often while it waits on the provider: one call may take minutes (retries of a
# hanging provider up to the gateway's deadline), longer than a dead worker's run is given.
BEAT_SECONDS = 20
RETRY_MAX_SECONDS = 300  # the longest wait between attempts at a failing turn
# The provider is not answering (as opposed to one bad answer): the turn's other calls would fail the same way.
PROVIDER_DOWN = (LLMUnavailable, LLMRateLimited, LLMTimeout, LLMConfigurationError)


# --- starting, stopping, resuming -----------------------------------------------------------


def _guide_sections(focus_group: FocusGroup) -> list[dict]:
    guide = getattr(focus_group, "guide", None)
    data = guide.data if guide is not None else {}
    return [s for s in (data or {}).get("sections", []) if s.get("questions")]


def run_active(focus_group: FocusGroup) -> AutonomousRun | None:
    return focus_group.runs.filter(
        status__in=[RunStatus.RUNNING, RunStatus.STOPPING, RunStatus.PAUSED, RunStatus.INTERRUPTED]
    ).first()


def run_start(*, focus_group: FocusGroup) -> AutonomousRun:
    """Start autonomous mode; starting again while a run exists returns that run (one charge)."""
    with transaction.atomic():
        locked = FocusGroup.objects.select_for_update().get(pk=focus_group.pk)
        existing = run_active(locked)
        if existing is not None:
            return existing
        discussion._check_can_post(locked)
        participants = list(locked.participants.select_related("persona"))
        if len(participants) < 2:
            raise ApplicationError(
                "Autonomous mode needs at least two participants.", code="not_enough_participants", status_code=409
            )
        sections = _guide_sections(locked)
        if not sections:
            raise ApplicationError(
                "Autonomous mode follows the discussion guide: generate or write one first.",
                code="no_guide",
                status_code=409,
            )
        budget = sum(int(s.get("turn_budget") or 0) for s in sections) or DEFAULT_TURN_BUDGET
        run = AutonomousRun.objects.create(
            focus_group=locked,
            turn_budget=min(max(budget, 4), 200),
            heartbeat_at=timezone.now(),
            speaking_counts={str(p.persona_id): 0 for p in participants},
            researcher_seen_through=locked.last_sequence,  # what was said before the run is not an interjection
        )
        cost = get_app_settings().session_run_credit_cost
        if cost:
            run.credit_transaction = credits_spend(
                user=locked.owner,
                amount=cost,
                idempotency_key=f"autorun:{run.pk}",
                reference=f"focusgroup:{locked.pk}",
                description=f"Autonomous run of “{locked.title}”",
            )
            run.save(update_fields=["credit_transaction"])
        if locked.status != FocusGroupStatus.LIVE:
            locked.status = FocusGroupStatus.LIVE
            locked.save(update_fields=["status", "updated_at"])
            events.publish_status_on_commit(locked)
        _publish_run_on_commit(run)
        _enqueue_turn_on_commit(run.pk, 0)
    return run


def run_stop(*, run: AutonomousRun) -> AutonomousRun:
    """The turn in flight finishes, then the run pauses (resumable)."""
    with transaction.atomic():
        updated = AutonomousRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(status=RunStatus.STOPPING)
        if not updated:
            # Not mid-turn (interrupted): pause at once.
            AutonomousRun.objects.filter(pk=run.pk, status=RunStatus.INTERRUPTED).update(status=RunStatus.PAUSED)
        run.refresh_from_db()
        if run.status == RunStatus.STOPPING and run.claimed_turn is None:
            _pause(run)
        _publish_run_on_commit(run)
    return run


def run_resume(*, run: AutonomousRun) -> AutonomousRun:
    """Continue a paused or interrupted run from its last saved turn; no new charge."""
    discussion._check_can_post(run.focus_group)
    with transaction.atomic():
        updated = AutonomousRun.objects.filter(
            pk=run.pk, status__in=[RunStatus.PAUSED, RunStatus.INTERRUPTED, RunStatus.STOPPING]
        ).update(
            status=RunStatus.RUNNING,
            claimed_turn=None,
            heartbeat_at=timezone.now(),
            end_reason="",  # a pause for the provider is over
            failed_turns=0,
            last_failed_speaker=None,
        )
        if not updated:
            raise ApplicationError(
                "Only a paused or interrupted run can be resumed.", code="not_resumable", status_code=409
            )
        run.refresh_from_db()
        FocusGroup.objects.filter(pk=run.focus_group_id).update(status=FocusGroupStatus.LIVE)
        run.focus_group.refresh_from_db()
        events.publish_status_on_commit(run.focus_group)
        _publish_run_on_commit(run)
        _enqueue_turn_on_commit(run.pk, run.turns_done)
    return run


def run_end(*, run: AutonomousRun, reason: str) -> AutonomousRun:
    with transaction.atomic():
        AutonomousRun.objects.filter(pk=run.pk).exclude(status=RunStatus.ENDED).update(
            status=RunStatus.ENDED,
            end_reason=reason,
            ended_at=timezone.now(),
            claimed_turn=None,
            next_speaker=None,
            next_reason="",
        )
        run.refresh_from_db()
        if run.end_reason != RunEndReason.STOPPED:
            run_refund_if_short(run=run)
        focus_group = run.focus_group
        if focus_group.status != FocusGroupStatus.ENDED:
            discussion.focus_group_set_status(focus_group=focus_group, status=FocusGroupStatus.ENDED)
        _publish_run_on_commit(run)
    return run


def run_answers(run: AutonomousRun) -> int:
    """The participants' answers the run produced: the speaking counts grow only with a saved answer."""
    return sum(run.speaking_counts.values())


def run_refund_if_short(*, run: AutonomousRun) -> None:
    """Refund the run's charge in full, once, when it stopped with fewer answers than App settings' minimum.

    Whole, not pro rata: below the minimum a run has produced nothing worth analysing. The ledger key
    makes a second call (a replayed end, a pause after a resume) return the first refund."""
    if run.credit_transaction_id is None or run.refund_transaction_id is not None:
        return
    answers = run_answers(run)
    if answers >= get_app_settings().autonomous_refund_min_answers:
        return
    try:
        with transaction.atomic():
            refund = credits_refund(
                spend=run.credit_transaction,
                idempotency_key=f"session-run-refund:{run.pk}",
                description=f"Refund: autonomous run of “{run.focus_group.title}” stopped after {answers} "
                f"answer{'s' if answers != 1 else ''}",
            )
    except ApplicationError as exc:  # the account is gone, or the spend was already refunded by hand
        logger.warning("Run %s not refunded: %s", run.pk, exc.message)
        return
    AutonomousRun.objects.filter(pk=run.pk).update(refund_transaction=refund)
    run.refund_transaction = refund


def _pause_for_provider(run: AutonomousRun, turn: int, *, failed: int, missed: dict, speaker, error: str) -> str:
    """The provider failed turn after turn: pause (resumable), say so in the transcript, refund a run that
    has produced too little. Nothing more is asked of the provider until the researcher resumes."""
    with transaction.atomic():
        locked = AutonomousRun.objects.select_for_update().select_related("focus_group").get(pk=run.pk)
        if locked.claimed_turn != turn or locked.status not in (RunStatus.RUNNING, RunStatus.STOPPING):
            return "not-claimed"  # reaped or ended meanwhile: that state stands
        locked.status = RunStatus.PAUSED
        locked.end_reason = RunEndReason.PROVIDER_UNAVAILABLE
        locked.claimed_turn = None
        locked.failed_turns = failed
        locked.missed_turns = missed
        locked.last_failed_speaker = speaker
        locked.next_speaker, locked.next_reason = None, ""
        locked.heartbeat_at = timezone.now()
        locked.save()
        focus_group = locked.focus_group
        FocusGroup.objects.filter(pk=focus_group.pk).exclude(status=FocusGroupStatus.ENDED).update(
            status=FocusGroupStatus.PAUSED
        )
        focus_group.refresh_from_db()
        note = Message.objects.create(
            focus_group=focus_group,
            sequence=discussion.reserve_sequences(focus_group.pk, 1),
            role=MessageRole.SYSTEM,
            speaker_name="Note",
            content=(
                f"Autonomous mode paused: the AI provider did not answer {failed} turn{'s' if failed != 1 else ''} "
                f"in a row ({error.rstrip('.')}). Press Resume once it is back; the run continues where it stopped."
            ),
        )
        events.publish_message_on_commit(note)
        run_refund_if_short(run=locked)
        events.publish_status_on_commit(focus_group)
        _publish_run_on_commit(locked)
    logger.warning("Run %s paused: the provider failed %s turns in a row (%s)", run.pk, failed, error)
    return "paused"


def runs_reap(*, now=None) -> int:
    """Runs whose worker died mid-turn (or whose next turn was lost) become interrupted.

    A worker killed *between* turns has usually already taken the next turn's task from the broker
    (prefetch, unacknowledged): Redis hands it back only after the visibility timeout (half an hour).
    So a next turn that has not started within STALE_SECONDS is sent again (turns are idempotent: a
    duplicate finds nothing to claim), for a couple of reaper rounds, before the run is given up as lost."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=STALE_SECONDS)
    lost = now - timedelta(seconds=STALE_SECONDS * 8)
    waiting = AutonomousRun.objects.filter(
        status=RunStatus.RUNNING,
        claimed_turn__isnull=True,
        heartbeat_at__lt=stale,
        heartbeat_at__gte=now - timedelta(seconds=STALE_SECONDS * 2),
    ).values_list("pk", "turns_done")
    for run_id, turns_done in waiting:
        logger.warning("Run %s: turn %s has not started for %ss; sending it again", run_id, turns_done, STALE_SECONDS)
        _enqueue_turn_on_commit(run_id, turns_done)
    count = 0
    candidates = AutonomousRun.objects.filter(
        Q(status__in=[RunStatus.RUNNING, RunStatus.STOPPING])
        & (Q(claimed_turn__isnull=False, heartbeat_at__lt=stale) | Q(claimed_turn__isnull=True, heartbeat_at__lt=lost))
    )
    for run in candidates:
        with transaction.atomic():
            if AutonomousRun.objects.filter(
                pk=run.pk, status__in=[RunStatus.RUNNING, RunStatus.STOPPING], heartbeat_at=run.heartbeat_at
            ).update(status=RunStatus.INTERRUPTED, claimed_turn=None):
                FocusGroup.objects.filter(pk=run.focus_group_id).update(status=FocusGroupStatus.PAUSED)
                run.refresh_from_db()
                _publish_run_on_commit(run)
                count += 1
    if count:
        logger.warning("Marked %s autonomous run(s) interrupted", count)
    return count


# --- a turn ------------------------------------------------------------------------------------


def _enqueue_turn_on_commit(run_id: int, turn: int, *, countdown: int = 0) -> None:
    def enqueue():
        from focusgroups.tasks import autonomous_turn

        if countdown:
            autonomous_turn.apply_async((run_id, turn), countdown=countdown)
        else:
            autonomous_turn.apply_async((run_id, turn))

    transaction.on_commit(enqueue)


def retry_delay(failed_in_a_row: int) -> int:
    """Seconds before the next attempt after that many failed turns in a row: App settings' wait (10 s by
    default), then three times longer after each further failure (30, 90, …), at most RETRY_MAX_SECONDS."""
    base = get_app_settings().autonomous_retry_seconds
    return min(RETRY_MAX_SECONDS, base * 3 ** max(0, failed_in_a_row - 1))


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


def _pause(run: AutonomousRun) -> None:
    AutonomousRun.objects.filter(pk=run.pk, status=RunStatus.STOPPING).update(
        status=RunStatus.PAUSED, next_speaker=None, next_reason=""
    )
    FocusGroup.objects.filter(pk=run.focus_group_id).update(status=FocusGroupStatus.PAUSED)
    run.refresh_from_db()


def _notice(run: AutonomousRun, retry_in: int) -> str:
    """One sentence on why the run stopped or waits, and on a refund; empty while all is well."""
    if run.end_reason == RunEndReason.PROVIDER_UNAVAILABLE and run.status == RunStatus.PAUSED:
        text = (
            f"Paused: the AI provider is not answering ({run.failed_turns} failed turn"
            f"{'s' if run.failed_turns != 1 else ''} in a row). Press Resume once it is back; "
            "the run continues where it stopped."
        )
    elif run.status == RunStatus.ENDED and run.end_reason:
        text = f"Ended: {run.get_end_reason_display()}."
    elif run.failed_turns and run.status in (RunStatus.RUNNING, RunStatus.STOPPING):
        text = (
            "The AI provider did not answer the last turn"
            f"{'s' if run.failed_turns > 1 else ''}; trying again"
            f"{f' in {retry_in} s' if retry_in else ''} with another participant."
        )
    else:
        text = ""
    if run.refund_transaction_id is not None:
        answers = run_answers(run)
        plural = "s" if answers != 1 else ""
        refund = f"The run's {run.refund_transaction.delta} credits were refunded: it had {answers} answer{plural}."
        text = f"{text} {refund}".strip()
    return text


def run_payload(run: AutonomousRun, *, sections: list[dict] | None = None, names: dict | None = None) -> dict:
    """What the live view shows of a run. A turn passes the guide and the names it already has."""
    if sections is None:
        sections = _guide_sections(run.focus_group)
    if names is None:
        names = _names(run.focus_group.participants.select_related("persona"))
    waiting = (run.heartbeat_at - timezone.now()).total_seconds() if run.failed_turns and run.heartbeat_at else 0
    retry_in = max(0, round(waiting))
    return {
        "id": run.pk,
        "status": run.status,
        "end_reason": run.end_reason,
        "end_reason_label": run.get_end_reason_display() if run.end_reason else "",
        "notice": _notice(run, retry_in),
        "failed_turns": run.failed_turns,
        "retry_in_seconds": retry_in if run.status in (RunStatus.RUNNING, RunStatus.STOPPING) else 0,
        "refunded_credits": run.refund_transaction.delta if run.refund_transaction_id else 0,
        "turns_done": run.turns_done,
        "turn_budget": run.turn_budget,
        "section": min(run.section_index + 1, len(sections)) if sections else 0,
        "sections": len(sections),
        "section_title": sections[run.section_index]["title"] if run.section_index < len(sections) else "",
        "section_turns": run.section_turns,
        "section_budget": _section_budget(run, sections),
        "next_speaker": names.get(str(run.next_speaker_id), "") if run.next_speaker_id else "",
        "next_reason": run.next_reason,
        "balance": [
            {"persona_id": int(pid), "name": names.get(pid, "?"), "turns": count}
            for pid, count in sorted(run.speaking_counts.items(), key=lambda kv: names.get(kv[0], ""))
        ],
    }


def _names(participants) -> dict[str, str]:
    return {str(p.persona_id): p.persona.name for p in participants}


def _publish_run_on_commit(
    run: AutonomousRun, *, sections: list[dict] | None = None, names: dict | None = None
) -> None:
    run_id, focus_group_id = run.pk, run.focus_group_id

    def send():
        # The committed state, read after commit (a turn's own copy may be behind a stop or a reap).
        related = ("focus_group",) if names is None else ()  # a turn has the names at hand
        fresh = AutonomousRun.objects.select_related(*related).filter(pk=run_id).first()
        if fresh is not None:
            payload = run_payload(fresh, sections=sections, names=names)
            events._send(focus_group_id, {"type": "fg.run", "run": payload})

    transaction.on_commit(send)


def _claim(run_id: int, turn: int) -> AutonomousRun | None:
    claimed = AutonomousRun.objects.filter(
        Q(pk=run_id, status__in=[RunStatus.RUNNING, RunStatus.STOPPING], turns_done=turn)
        & (Q(claimed_turn__isnull=True) | Q(claimed_turn__lt=turn))
    ).update(claimed_turn=turn, heartbeat_at=timezone.now())
    if not claimed:
        return None
    return AutonomousRun.objects.select_related("focus_group__owner", "focus_group__guide").get(pk=run_id)


def _position(run: AutonomousRun, sections: list[dict]) -> tuple[dict, dict, dict | None]:
    section = sections[min(run.section_index, len(sections) - 1)]
    questions = section["questions"]
    question = questions[min(run.question_index, len(questions) - 1)]
    if run.question_index + 1 < len(questions):
        following = questions[run.question_index + 1]
    elif run.section_index + 1 < len(sections):
        following = sections[run.section_index + 1]["questions"][0]
    else:
        following = None
    return section, question, following


def _section_budget(run: AutonomousRun, sections: list[dict], index: int | None = None) -> int:
    """The turns the guide gives a section, scaled down when the run's budget is smaller than the guide's."""
    index = run.section_index if index is None else index
    if index >= len(sections):
        return 0
    budgets = [int(s.get("turn_budget") or 0) for s in sections]
    if not all(budgets):
        return max(1, round(run.turn_budget / len(sections)))
    total = sum(budgets)
    scale = min(1.0, run.turn_budget / total) if total else 1.0
    return max(1, round(budgets[index] * scale))


def _question_target(run: AutonomousRun, sections: list[dict]) -> int:
    """Turns to aim for on each question: the section's budget shared by its questions."""
    section = sections[min(run.section_index, len(sections) - 1)]
    return max(1, round(_section_budget(run, sections) / max(1, len(section["questions"]))))


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


def speaker_labels(participants) -> dict[str, object]:
    """One unique label per participant (the name; "Name (2)" for a second persona of the same name),
    in seating order, mapped to the persona: an enum's values must be distinct."""
    labels: dict[str, object] = {}
    for participant in participants:
        name = participant.persona.name.strip() or f"Participant {participant.position + 1}"
        label, n = name, 1
        while label in labels:
            n += 1
            label = f"{name} ({n})"
        labels[label] = participant.persona
    return labels


def _question_floor(run: AutonomousRun, sections: list[dict]) -> int:
    """The turns a question gets before the moderator may move on: half its share of the section."""
    return -(-_question_target(run, sections) // 2)


def _fallback_speaker(run: AutonomousRun, participants, *, avoid: int | None = None) -> object:
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
    section, question, following = _position(run, sections)
    counts = run.speaking_counts
    labels = speaker_labels(participants)
    recent = list(focus_group.messages.filter(status=MessageStatus.COMPLETE).order_by("-sequence")[:12])
    transcript = "\n".join(discussion._transcript_line(m) for m in reversed(recent))
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
            "question_target": _question_target(run, sections),
            "section_turns": run.section_turns,
            "section_budget": _section_budget(run, sections),
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


def _advance(run: AutonomousRun, action: str, sections: list[dict]) -> bool:
    """Move through the guide; return True when the guide is finished.

    A question moves on when the moderator says so or runs one turn past its share; a section
    ends when its questions are done or its turn budget is spent, so every section of the guide
    gets its turns instead of the first one taking them all."""
    last_of_section = run.question_index + 1 >= len(sections[run.section_index]["questions"])
    # A "next question" turn asked the next question and got its first answer: that turn counts for it.
    asked = 1 if action == "next_question" else 0
    if run.section_turns >= _section_budget(run, sections):
        run.section_index += 1
        run.question_index = 0
        # The line asked the next section's first question only if this was the section's last question.
        run.question_turns = run.section_turns = asked if last_of_section else 0
    elif action == "next_question" or run.question_turns >= _question_target(run, sections) + 1:
        run.question_turns = asked
        run.question_index += 1
        if run.question_index >= len(sections[run.section_index]["questions"]):
            run.question_index = 0
            run.section_turns = asked
            run.section_index += 1
    return run.section_index >= len(sections)


def turn_run(*, run_id: int, turn: int) -> str:
    """One turn of an autonomous run. Returns what happened (for logs and tests)."""
    run = _claim(run_id, turn)
    if run is None:
        return "not-claimed"
    with _TurnBeat(run.pk, turn):
        return _take_turn(run, turn)


def _take_turn(run: AutonomousRun, turn: int) -> str:
    focus_group = run.focus_group
    participants = list(focus_group.participants.select_related("persona"))
    names = _names(participants)
    sections = _guide_sections(focus_group)
    if run.turns_done >= run.turn_budget:
        run_end(run=run, reason=RunEndReason.TURN_BUDGET)
        return "ended"
    if run.section_index >= len(sections):
        run_end(run=run, reason=RunEndReason.GUIDE_DONE)
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
        run_end(run=run, reason=RunEndReason.SESSION_CAP if exc.code == "session_cap_reached" else RunEndReason.QUOTA)
        return "ended"
    except PROVIDER_DOWN as exc:
        return _turn_failed(run, turn, _fallback_speaker(run, participants, avoid=_avoid(run)), exc.message)
    _section, question, following = _position(run, sections)
    speaker = decision["speaker"]
    AutonomousRun.objects.filter(pk=run.pk).update(next_speaker=speaker, next_reason=decision["reason"][:300])
    run.next_speaker, run.next_reason = speaker, decision["reason"][:300]
    _publish_run_on_commit(run, sections=sections, names=names)
    # A wrap-up ends the run only once the guide's last question has had a turn (or the budget is all but
    # spent): a model that wants to close early must not skip the rest of the guide.
    floor = _question_floor(run, sections)
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
        run_end(run=AutonomousRun.objects.get(pk=run.pk), reason=RunEndReason.GUIDE_DONE)
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
    events.publish_typing(focus_group.pk, answer_id=answer_id, persona_id=speaker.pk, name=speaker.name)
    try:
        result = complete(
            feature="persona_response",
            messages=discussion.build_persona_messages(
                focus_group=focus_group, persona=speaker, prompt_message=prompt_message, participants=participants
            ),
            alias=focus_group.model_alias or None,
            user=focus_group.owner,
            focus_group_id=focus_group.pk,
            persona_id=speaker.pk,
            focus_group_cap_usd=focus_group.cost_cap_usd,
            max_tokens=600,
            stream_to=lambda delta: _stream(run, focus_group.pk, answer_id, speaker.pk, delta),
            require_complete=True,  # an answer cut at the token limit is never saved as complete
            on_retry=lambda: events.publish_reset(focus_group.pk, answer_id=answer_id),
        )
        answer_text = result.text.strip()
        if not answer_text:
            raise LLMError("The AI returned an empty answer.")
    except QuotaExceeded as exc:
        AutonomousRun.objects.filter(pk=run.pk).update(claimed_turn=None)
        run_end(run=run, reason=RunEndReason.SESSION_CAP if exc.code == "session_cap_reached" else RunEndReason.QUOTA)
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


def _stream(run: AutonomousRun, focus_group_id: int, answer_id, persona_id: int, delta: str) -> None:
    events.publish_delta(focus_group_id, answer_id=answer_id, persona_id=persona_id, delta=delta)
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
        return _pause_for_provider(run, turn, failed=failed, missed=missed, speaker=speaker, error=error)
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
            _enqueue_turn_on_commit(run.pk, turn, countdown=delay)
        elif mine.filter(status=RunStatus.STOPPING).update(**fields):
            _pause(run)  # stopped during the failed turn: no next attempt
        else:
            return "not-claimed"  # reaped or ended meanwhile
        run.refresh_from_db()
        _publish_run_on_commit(run)
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
        sections = _guide_sections(run.focus_group)
    with transaction.atomic():
        locked = AutonomousRun.objects.select_for_update().get(pk=run.pk)
        if locked.turns_done != turn or locked.claimed_turn != turn:
            return  # someone else finished or reclaimed this turn: save nothing twice
        focus_group_id = locked.focus_group_id
        count = bool(moderator_text) + (answer is not None)
        first = discussion.reserve_sequences(focus_group_id, count) if count else 0
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
        finished = guide_done or (sections and _advance(locked, decision.get("action", ""), sections))
        locked.turns_done = turn + 1
        locked.claimed_turn = None
        locked.heartbeat_at = timezone.now()
        locked.save()
        _publish_run_on_commit(locked, sections=sections, names=names)
        # Long runs keep a bounded context: fold turns that left the window into the summary (a task
        # only when it is due: the summary the turn read may be behind, which only asks too early; and
        # only after an answer, the sign the provider is answering).
        if answer is not None and discussion.summary_due(
            last_sequence=first + count - 1, summary_through=run.focus_group.summary_through
        ):
            transaction.on_commit(lambda: discussion._enqueue_summary(focus_group_id))
        if answer is not None:
            live_themes.live_themes_enqueue_on_commit(focus_group_id)
        if finished:
            if not guide_done:
                # The last question's turns are spent: the run is over, no next turn is queued.
                transaction.on_commit(
                    lambda: run_end(run=AutonomousRun.objects.get(pk=locked.pk), reason=RunEndReason.GUIDE_DONE)
                )
            return
        if locked.turns_done >= locked.turn_budget:
            transaction.on_commit(
                lambda: run_end(run=AutonomousRun.objects.get(pk=locked.pk), reason=RunEndReason.TURN_BUDGET)
            )
        elif locked.status == RunStatus.STOPPING:
            _pause(locked)
            _publish_run_on_commit(locked)
        elif locked.status == RunStatus.RUNNING:
            _enqueue_turn_on_commit(locked.pk, locked.turns_done)
