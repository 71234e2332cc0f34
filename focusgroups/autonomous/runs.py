"""Autonomous mode's runs: start (one charge), stop after the turn in flight, resume, end, the refund of
a run that produced too little, the reaper for runs whose worker died, and what the live view shows.
The turns themselves are in ``turns.py``; where a run is in the guide, in ``position.py``."""

import logging
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from billing.services import credits_refund, credits_spend
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError
from focusgroups import conversation, events, tasks
from focusgroups.autonomous.position import section_budget
from focusgroups.discussion import services as discussion
from focusgroups.guide.services import guide_sections
from focusgroups.models import (
    AutonomousRun,
    FocusGroup,
    FocusGroupStatus,
    Message,
    MessageRole,
    RunEndReason,
    RunStatus,
)
from focusgroups.quality import conformity

logger = logging.getLogger(__name__)

DEFAULT_TURN_BUDGET = 30
RUN_ACTIONS = ("start", "stop", "resume")
STALE_SECONDS = 75  # with the reaper every 30 s, a dead worker's run is marked within 2 minutes


def run_active(focus_group: FocusGroup) -> AutonomousRun | None:
    return focus_group.runs.filter(
        status__in=[RunStatus.RUNNING, RunStatus.STOPPING, RunStatus.PAUSED, RunStatus.INTERRUPTED]
    ).first()


def run_start(*, focus_group: FocusGroup, charge: bool = True) -> AutonomousRun:
    """Start autonomous mode; starting again while a run exists returns that run (one charge). An exact
    replay (every answer from the cache) is not charged: ``charge=False``."""
    with transaction.atomic():
        locked = FocusGroup.objects.select_for_update().get(pk=focus_group.pk)
        existing = run_active(locked)
        if existing is not None:
            return existing
        conversation.check_can_post(locked)
        participants = list(locked.participants.select_related("persona"))
        if len(participants) < 2:
            raise ApplicationError(
                "Autonomous mode needs at least two participants.", code="not_enough_participants", status_code=409
            )
        sections = guide_sections(locked)
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
        cost = get_app_settings().session_run_credit_cost if charge else 0
        if cost:
            run.credit_transaction = credits_spend(
                user=locked.owner,
                amount=cost,
                idempotency_key=f"autorun:{run.pk}",
                reference=f"focusgroup:{locked.pk}",
                description=f"Autonomous run of “{locked.title}”",
            )
            run.save(update_fields=["credit_transaction"])
        # Measuring conformity is charged with the run (one transaction: both or neither); its private answers
        # come at the top of the first turn.
        conformity.conformity_begin(
            focus_group=locked, participants=len(participants), with_credits=cost, charge=charge
        )
        if locked.status != FocusGroupStatus.LIVE:
            locked.status = FocusGroupStatus.LIVE
            locked.save(update_fields=["status", "updated_at"])
            events.publish_status_on_commit(locked)
        publish_run_on_commit(run)
        enqueue_turn_on_commit(run.pk, 0)
    return run


def run_action(*, focus_group: FocusGroup, action: str) -> AutonomousRun:
    """What the session page's and the API's buttons do: ``start``, ``stop`` or ``resume``."""
    if action == "start":
        return run_start(focus_group=focus_group)
    if action not in RUN_ACTIONS:
        raise ApplicationError(f"Unknown action “{action}”.", code="no_such_action", status_code=404)
    run = run_active(focus_group)
    if run is None:
        raise ApplicationError("Autonomous mode is not running in this session.", code="no_run", status_code=409)
    if action == "stop":
        return run_stop(run=run)
    return run_resume(run=run)


def run_stop(*, run: AutonomousRun) -> AutonomousRun:
    """The turn in flight finishes, then the run pauses (resumable)."""
    with transaction.atomic():
        updated = AutonomousRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(status=RunStatus.STOPPING)
        if not updated:
            # Not mid-turn (interrupted): pause at once.
            AutonomousRun.objects.filter(pk=run.pk, status=RunStatus.INTERRUPTED).update(status=RunStatus.PAUSED)
        run.refresh_from_db()
        if run.status == RunStatus.STOPPING and run.claimed_turn is None:
            pause(run)
        publish_run_on_commit(run)
    return run


def run_resume(*, run: AutonomousRun) -> AutonomousRun:
    """Continue a paused or interrupted run from its last saved turn; no new charge."""
    conversation.check_can_post(run.focus_group)
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
        publish_run_on_commit(run)
        enqueue_turn_on_commit(run.pk, run.turns_done)
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
        publish_run_on_commit(run)
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
            spend = run.credit_transaction
            assert spend is not None  # its id was checked above
            refund = credits_refund(
                spend=spend,
                idempotency_key=f"session-run-refund:{run.pk}",
                description=f"Refund: autonomous run of “{run.focus_group.title}” stopped after {answers} "
                f"answer{'s' if answers != 1 else ''}",
            )
    except ApplicationError as exc:  # the account is gone, or the spend was already refunded by hand
        logger.warning("Run %s not refunded: %s", run.pk, exc.message)
        return
    AutonomousRun.objects.filter(pk=run.pk).update(refund_transaction=refund)
    run.refund_transaction = refund


def pause_for_provider(run: AutonomousRun, turn: int, *, failed: int, missed: dict, speaker, error: str) -> str:
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
            sequence=conversation.reserve_sequences(focus_group.pk, 1),
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
        publish_run_on_commit(locked)
    logger.warning("Run %s paused: the provider failed %s turns in a row (%s)", run.pk, failed, error)
    return "paused"


def pause(run: AutonomousRun) -> None:
    AutonomousRun.objects.filter(pk=run.pk, status=RunStatus.STOPPING).update(
        status=RunStatus.PAUSED, next_speaker=None, next_reason=""
    )
    FocusGroup.objects.filter(pk=run.focus_group_id).update(status=FocusGroupStatus.PAUSED)
    run.refresh_from_db()


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
        enqueue_turn_on_commit(run_id, turns_done)
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
                publish_run_on_commit(run)
                count += 1
    if count:
        logger.warning("Marked %s autonomous run(s) interrupted", count)
    return count


def enqueue_turn_on_commit(run_id: int, turn: int, *, countdown: int = 0) -> None:
    def enqueue():
        if countdown:
            tasks.autonomous_turn.apply_async((run_id, turn), countdown=countdown)
        else:
            tasks.autonomous_turn.apply_async((run_id, turn))

    transaction.on_commit(enqueue)


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
    if run.refund_transaction is not None:
        answers = run_answers(run)
        plural = "s" if answers != 1 else ""
        refund = f"The run's {run.refund_transaction.delta} credits were refunded: it had {answers} answer{plural}."
        text = f"{text} {refund}".strip()
    return text


def run_payload(run: AutonomousRun, *, sections: list[dict] | None = None, names: dict | None = None) -> dict:
    """What the live view shows of a run. A turn passes the guide and the names it already has."""
    if sections is None:
        sections = guide_sections(run.focus_group)
    if names is None:
        names = persona_names(run.focus_group.participants.select_related("persona"))
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
        "refunded_credits": run.refund_transaction.delta if run.refund_transaction is not None else 0,
        "turns_done": run.turns_done,
        "turn_budget": run.turn_budget,
        "section": min(run.section_index + 1, len(sections)) if sections else 0,
        "sections": len(sections),
        "section_title": sections[run.section_index]["title"] if run.section_index < len(sections) else "",
        "section_turns": run.section_turns,
        "section_budget": section_budget(run, sections),
        # A step answered by several at once (a guide question round the table, the others' reactions) has a
        # reason but no single speaker.
        "next_speaker": names.get(str(run.next_speaker_id), "")
        if run.next_speaker_id
        else ("The table" if run.next_reason else ""),
        "next_reason": run.next_reason,
        "balance": [
            {"persona_id": int(pid), "name": names.get(pid, "?"), "turns": count}
            for pid, count in sorted(run.speaking_counts.items(), key=lambda kv: names.get(kv[0], ""))
        ],
    }


def persona_names(participants) -> dict[str, str]:
    return {str(p.persona_id): p.persona.name for p in participants}


def next_step_announce(*, run: AutonomousRun, speaker, reason: str) -> AutonomousRun | None:
    """Say who answers next and why (``speaker`` None: several at once), and return the run as that statement left
    it: one ``UPDATE … RETURNING``, not an UPDATE and a read back for the live view. None if the run is gone."""
    meta = AutonomousRun._meta
    quote = connection.ops.quote_name
    fields = list(meta.concrete_fields)
    speaker_column = quote(meta.get_field("next_speaker").column)
    reason_column = quote(meta.get_field("next_reason").column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET {speaker_column} = %s, {reason_column} = %s "  # noqa: S608 (quoted names, values as parameters)
            f"WHERE {quote(meta.pk.column)} = %s RETURNING {', '.join(quote(field.column) for field in fields)}",
            [getattr(speaker, "pk", speaker), reason, run.pk],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    values = []
    for field, value in zip(fields, row, strict=True):
        # Converted as the ORM converts a column it reads (JSON text to a dict, SQLite's text to a datetime).
        column = field.cached_col
        for converter in [*connection.ops.get_db_converters(column), *column.get_db_converters(connection)]:
            value = converter(value, column, connection)
        values.append(value)
    return AutonomousRun.from_db(connection.alias, [field.attname for field in fields], values)


def publish_run_on_commit(
    run: AutonomousRun,
    *,
    sections: list[dict] | None = None,
    names: dict | None = None,
    as_committed: bool = False,
) -> None:
    """The run's live payload, sent once the caller's transaction commits. ``as_committed``: ``run`` is what commits
    (the caller holds its row under SELECT … FOR UPDATE until then, or the statement that wrote it returned it), so
    it needs no reading back."""
    run_id, focus_group_id = run.pk, run.focus_group_id

    def send():
        if as_committed:
            fresh: AutonomousRun | None = run
        else:
            # The committed state, read after commit (the caller's copy may be behind a stop or a reap).
            related = ("focus_group",) if names is None else ()  # a turn has the names at hand
            fresh = AutonomousRun.objects.select_related(*related).filter(pk=run_id).first()
        if fresh is not None:
            payload = run_payload(fresh, sections=sections, names=names)
            events.send_event(focus_group_id, {"type": "fg.run", "run": payload})

    transaction.on_commit(send)
