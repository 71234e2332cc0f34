"""The moderated discussion: researcher messages, @mentions, parallel persona answers, retries,
and session status. The persona prompt, the answer call and the rolling summary it shares with
autonomous mode are in ``focusgroups/conversation.py``.

A round: the researcher's message is saved (with the next sequence number)
together with one pending ``Answer`` per addressed participant; after commit
the round is one task on the LLM queue that answers them all at once (on the
worker's round helpers), each streaming token deltas to the session's
websocket group. An answer is saved as
a message only when complete (or as a failed message with a retry button),
so nothing half-written is ever stored."""

import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from cohorta.errors import ApplicationError
from focusgroups import conversation, events, round_helpers, tasks
from focusgroups.models import (
    Answer,
    AnswerStatus,
    AutonomousRun,
    FocusGroup,
    FocusGroupStatus,
    Message,
    MessageRole,
    MessageStatus,
    Participant,
    RunEndReason,
    RunStatus,
)
from focusgroups.names import HONORIFICS, fold, given_name, name_words
from focusgroups.quality import conformity
from focusgroups.report import analysis, live_themes
from llm.errors import LLMError
from personas.models import Persona
from usage.quotas import quota_check

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 4000
# "@" then a name: letters in any script, digits, and the dots, hyphens and apostrophes inside names.
_MENTION = re.compile(r"(?<![\w@])@([^\W_][\w.'’-]*)")


_HANDLE_DROP = re.compile(r"[^\w'’-]|_")  # keep letters (any script), digits, hyphens, apostrophes


def _handle_text(text: str) -> str:
    return _HANDLE_DROP.sub("", text).strip("'’-")


def mention_handles(participants: list[Participant]) -> dict[int, str]:
    """Participant id → the handle the composer inserts after "@": the given name when no one else in
    the session shares it, else given and family name run together, numbered when whole names clash.
    Every handle is one token parse_mentions reads back to exactly that participant."""
    given = {p.pk: _handle_text(given_name(p.persona.name)) or f"P{p.position + 1}" for p in participants}
    full = {
        p.pk: "".join(_handle_text(w) for w in name_words(p.persona.name) if fold(w) not in HONORIFICS) or given[p.pk]
        for p in participants
    }
    handles: dict[int, str] = {}
    for participant in participants:
        first = given[participant.pk]
        if sum(fold(first) == fold(given[p.pk]) for p in participants) == 1:
            handles[participant.pk] = first
            continue
        whole = full[participant.pk]
        namesakes = [p.pk for p in participants if fold(full[p.pk]) == fold(whole)]
        handles[participant.pk] = whole if len(namesakes) == 1 else f"{whole}{namesakes.index(participant.pk) + 1}"
    return handles


def mention_handle(persona, participants: list[Participant]) -> str:
    handles = mention_handles(participants)
    return next(handles[p.pk] for p in participants if p.persona_id == persona.pk)


def _mention_lookup(participants: list[Participant]) -> list[dict[str, list[Participant]]]:
    """Folded names → who answers to them, most specific first: the handles (each one its owner's,
    whatever else clashes with it), then every other way of naming someone (whole name, given name,
    first and last word). Two participants on one name make it ambiguous, not a guess."""
    handles = mention_handles(participants)
    by_handle: dict[str, list[Participant]] = {}
    by_name: dict[str, list[Participant]] = {}
    for participant in participants:
        by_handle.setdefault(fold(handles[participant.pk]), []).append(participant)
        words = name_words(participant.persona.name)
        untitled = [w for w in words if fold(w) not in HONORIFICS] or words
        names = {participant.persona.name, " ".join(untitled), given_name(participant.persona.name)}
        names.update(words[:1] + untitled[:1] + untitled[-1:])
        for key in {fold(name) for name in names} - {""}:
            by_name.setdefault(key, []).append(participant)
    return [by_handle, by_name]


def _mention_candidates(token: str) -> list[str]:
    """The token as typed (punctuation does not count: "@Sarah." ends a sentence), then without a
    possessive ("@Sarah's idea"), then up to a dot typed with no space after it ("@Sarah.What")."""
    candidates = [token]
    bare = token.rstrip(".'’-")
    if bare[-2:].lower() in ("'s", "’s"):
        candidates.append(bare[:-2])
    if "." in bare:
        candidates.append(bare.split(".", 1)[0])
    return candidates


def parse_mentions(text: str, participants: list[Participant]) -> list[Participant]:
    """The participants a message @mentions, in order; an unknown or ambiguous mention is refused."""
    tokens = _MENTION.findall(text)
    if not tokens:
        return []  # most messages name no one: no need to work out everyone's handles
    tables = _mention_lookup(participants)
    handles = mention_handles(participants)
    found: list[Participant] = []
    for token in tokens:
        matches = next(
            (
                table[fold(candidate)]
                for candidate in _mention_candidates(token)
                for table in tables
                if fold(candidate) in table
            ),
            [],
        )
        shown = token.rstrip(".'’-") or token
        if len(matches) > 1:
            options = " or ".join("@" + handles[p.pk] for p in matches)
            raise ApplicationError(
                f"@{shown} could be {options}. Pick one from the list that opens when you type @.",
                code="ambiguous_mention",
                extra={"fields": {"content": [f"Ambiguous participant @{shown}."]}},
            )
        if not matches:
            names = ", ".join("@" + handles[p.pk] for p in participants)
            raise ApplicationError(
                f"Nobody called @{shown} is in this session. You can mention: {names}.",
                code="unknown_mention",
                extra={"fields": {"content": [f"Unknown participant @{shown}."]}},
            )
        if matches[0] not in found:
            found.append(matches[0])
    return found


# What the POST reads of the room: the seats and the names on them.
ROOM_NAMES = ("position", "focus_group", "persona", "persona__name")


def _clean_text(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ApplicationError(
            "Write a question or a comment first.",
            code="validation_error",
            extra={"fields": {"content": ["This field may not be blank."]}},
        )
    if len(text) > MAX_MESSAGE_CHARS:
        raise ApplicationError(
            f"Messages can be at most {MAX_MESSAGE_CHARS:,} characters; yours has {len(text):,}. Shorten it or split "
            "it into several questions.",
            code="validation_error",
            extra={"fields": {"content": [f"At most {MAX_MESSAGE_CHARS} characters."]}},
        )
    return text


def answers_enqueue(answer_ids: list[str]) -> None:
    """One task for the round on the LLM queue (call after commit): it answers them all at once (one task per
    answer made the last of eight leave for the provider ~100 ms after the first, each waiting for the broker)."""
    if len(answer_ids) == 1:
        tasks.generate_answer.apply_async((answer_ids[0],))
    elif answer_ids:
        tasks.generate_round.apply_async((answer_ids,))


def _answer_crashed(answer: Answer) -> None:
    """A round's answer that crashed outside answer_generate's own guard: left to the reaper, which saves it as
    failed once it is past its deadline (it is already logged)."""
    return None


@dataclass
class _Round:
    """What every answer of a round reads the same: they all reply to one message, so the room, the material
    and the talk so far are read once, not once per persona (eight readers made the last answer leave ~100 ms
    after the first)."""

    participants: list[Participant]
    assets: list[str]
    transcript: str


# What a claim reads back of each answer it took, in this order.
_CLAIMED_FIELDS = ("id", "focus_group_id", "persona_id", "prompt_message_id", "status", "attempts", "retry_of_id")


def _claim(answer_ids: list[str]) -> tuple[list[Answer], _Round | None]:
    """The answers of one round still waiting to be written, claimed for this task, in the order given, and what
    writing them reads. One ``UPDATE … RETURNING`` claims them all: a duplicate delivery's UPDATE waits on the
    rows' locks, then finds none pending. The session, the question and the room are read once for the round
    rather than joined into every answer's row (compiling and reading that five-table join, locked, took 8-13 ms
    of the way to the provider)."""
    pk = Answer._meta.pk
    wanted = [pk.to_python(answer_id) for answer_id in answer_ids]
    started_at = timezone.now()
    quote = connection.ops.quote_name
    status, attempts, started = (quote(name) for name in ("status", "attempts", "started_at"))  # columns as named
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Answer._meta.db_table)} SET {status} = %s, {attempts} = {attempts} + 1, {started} = %s "  # noqa: S608 (quoted names, values as parameters)
            f"WHERE {quote(pk.column)} IN ({', '.join(['%s'] * len(wanted))}) AND {status} = %s "
            f"RETURNING {', '.join(quote(name) for name in _CLAIMED_FIELDS)}",
            [
                AnswerStatus.STREAMING,
                Answer._meta.get_field("started_at").get_db_prep_value(started_at, connection),
                *(pk.get_db_prep_value(answer_id, connection) for answer_id in wanted),
                AnswerStatus.PENDING,
            ],
        )
        rows = cursor.fetchall()
    if not rows:
        return [], None
    if len({(row[1], row[3]) for row in rows}) > 1:
        raise ValueError("A claim takes the answers of one round: one session, one question.")
    question = Message.objects.select_related("focus_group__owner").get(pk=rows[0][3])  # in the answers' session
    focus_group = question.focus_group
    participants = list(focus_group.participants.select_related("persona"))
    personas = {participant.persona_id: participant.persona for participant in participants}
    if missing := {row[2] for row in rows} - personas.keys():  # removed from the room since they were asked
        personas.update(Persona.objects.in_bulk(missing))
    claimed = {}
    for row in rows:
        answer = Answer.from_db(
            connection.alias, [*_CLAIMED_FIELDS, "started_at"], [pk.to_python(row[0]), *row[1:], started_at]
        )
        answer.focus_group, answer.persona, answer.prompt_message = focus_group, personas[row[2]], question
        claimed[answer.pk] = answer
    room = _Round(
        participants=participants,
        assets=conversation.asset_blocks(focus_group),
        transcript=conversation.transcript_window(focus_group=focus_group, before_sequence=question.sequence),
    )
    return [claimed[answer_id] for answer_id in wanted if answer_id in claimed], room


def round_generate(*, answer_ids: list[str]) -> list[Message | None]:
    """Every answer of a moderated round at the same time, each streamed and saved on its own (as answer_generate
    does for one); a duplicate delivery finds them claimed and does nothing."""
    answers, room = _claim(answer_ids)
    if room is None:
        return []
    with conversation.answering_together(answers[0].focus_group):
        return round_helpers.answer_together(
            lambda answer: _answer_written(answer, room), answers, crashed=_answer_crashed
        )


def message_post(*, focus_group: FocusGroup, text: str) -> tuple[Message, list[Answer]]:
    """Save the researcher's message and start one answer per addressed participant."""
    conversation.check_can_post(focus_group)
    text = _clean_text(text)
    # Who is asked and how they are @mentioned needs only their names: the profiles are the worker's to read (a
    # room of eight read whole cost ~2 ms of the way to the provider, most of it building and decoding profiles).
    participants = list(focus_group.participants.select_related("persona").only(*ROOM_NAMES))
    if len(participants) < 2:
        raise ApplicationError(
            "Add at least two participants before starting the discussion.",
            code="not_enough_participants",
            status_code=409,
        )
    mentioned = parse_mentions(text, participants)
    if focus_group.runs.filter(status__in=["running", "stopping"]).exists():
        # Autonomous mode is on: this is an interjection the moderator takes into account next turn.
        with transaction.atomic():
            message = Message.objects.create(
                focus_group=focus_group,
                sequence=conversation.next_sequence(focus_group.pk),
                role=MessageRole.RESEARCHER,
                speaker_name="Researcher",
                content=text,
                mentions=[p.persona_id for p in mentioned],
            )
            events.publish_message_on_commit(message)
        return message, []
    targets = mentioned or participants
    # Refuse before saving anything when the budget is already spent.
    quota_check(user=focus_group.owner, focus_group_id=focus_group.pk, focus_group_cap_usd=focus_group.cost_cap_usd)
    with transaction.atomic():
        sequence = conversation.reserve_sequences(focus_group.pk, 1)  # in this transaction: no savepoint of its own
        message = Message.objects.create(
            focus_group=focus_group,
            sequence=sequence,
            role=MessageRole.RESEARCHER,
            speaker_name="Moderator",
            content=text,
            mentions=[p.persona_id for p in mentioned],
        )
        # One INSERT for the round (eight answers were eight round trips before the first task could leave).
        answers = Answer.objects.bulk_create(
            [Answer(focus_group=focus_group, persona=p.persona, prompt_message=message) for p in targets]
        )
        if focus_group.status in (FocusGroupStatus.DRAFT, FocusGroupStatus.PAUSED):
            focus_group.status = FocusGroupStatus.LIVE
            focus_group.save(update_fields=["status", "updated_at"])
            events.publish_status_on_commit(focus_group)
        events.publish_message_on_commit(message)
        answer_ids = [str(a.pk) for a in answers]
        focus_group_id = focus_group.pk
        # The first round of a session measuring conformity: charge it, and ask the private answers first.
        if conformity.conformity_begin(focus_group=focus_group, participants=len(participants)) is not None:
            transaction.on_commit(lambda: tasks.conformity_before.apply_async((focus_group_id, answer_ids)))
        else:
            transaction.on_commit(lambda: answers_enqueue(answer_ids))
        # A task only when the summary is due (the task checks the same, so one per round mostly found nothing
        # to do, and took the worker from the round's first answers while it did).
        if conversation.summary_due(last_sequence=sequence, summary_through=focus_group.summary_through):
            transaction.on_commit(lambda: conversation.summary_enqueue(focus_group_id))
    return message, answers


def answer_retry(*, focus_group: FocusGroup, message: Message) -> Answer:
    conversation.check_can_post(focus_group)
    if (
        message.focus_group_id != focus_group.pk
        or message.role != MessageRole.PERSONA
        or message.status != MessageStatus.FAILED
    ):
        raise ApplicationError("Only a failed answer can be retried.", code="not_retryable", status_code=409)
    if message.persona_id is None or message.reply_to_id is None:
        raise ApplicationError(
            "This answer can no longer be retried: its persona or question is gone.",
            code="not_retryable",
            status_code=409,
        )
    with transaction.atomic():
        answer = Answer.objects.create(
            focus_group=focus_group,
            persona_id=message.persona_id,
            prompt_message_id=message.reply_to_id,
            retry_of=message,
        )
        answer_id = str(answer.pk)
        transaction.on_commit(lambda: answers_enqueue([answer_id]))
    return answer


def focus_group_set_status(*, focus_group: FocusGroup, status: str) -> FocusGroup:
    allowed: dict[str, set[str]] = {
        FocusGroupStatus.DRAFT: {FocusGroupStatus.LIVE, FocusGroupStatus.ENDED},
        FocusGroupStatus.LIVE: {FocusGroupStatus.PAUSED, FocusGroupStatus.ENDED},
        FocusGroupStatus.PAUSED: {FocusGroupStatus.LIVE, FocusGroupStatus.ENDED},
        FocusGroupStatus.ENDED: set(),
    }
    if status not in allowed.get(focus_group.status, set()):
        raise ApplicationError(
            f"A {focus_group.get_status_display().lower()} session cannot become {status}.",
            code="illegal_status",
            status_code=409,
        )
    with transaction.atomic():
        focus_group.status = status
        fields = ["status", "updated_at"]
        if status == FocusGroupStatus.ENDED:
            focus_group.ended_at = timezone.now()
            fields.append("ended_at")
        focus_group.save(update_fields=fields)
        events.publish_status_on_commit(focus_group)
        if status == FocusGroupStatus.ENDED:
            _on_session_end(focus_group)
    return focus_group


def _on_session_end(focus_group: FocusGroup) -> None:
    """A run still going stops with "ended by the researcher"; then the analysis starts."""
    AutonomousRun.objects.filter(
        focus_group=focus_group,
        status__in=[RunStatus.RUNNING, RunStatus.STOPPING, RunStatus.PAUSED, RunStatus.INTERRUPTED],
    ).update(status=RunStatus.ENDED, end_reason=RunEndReason.STOPPED, ended_at=timezone.now(), claimed_turn=None)
    conformity.after_enqueue_on_commit(focus_group.pk)

    def analyse():
        try:
            analysis.analysis_on_session_end(FocusGroup.objects.get(pk=focus_group.pk))
        except Exception:  # the session has ended either way; analysis can be re-run from the report page
            logger.exception("Could not start the analysis of focus group %s", focus_group.pk)

    transaction.on_commit(analyse)


# --- answering ---------------------------------------------------------------------------


def _save_answer(answer: Answer, *, content: str = "", status: str, error: str = "", simulated=False) -> Message | None:
    """The answer's message, once: None when it was settled meanwhile (the reaper gave up on it, or its worker
    finished after all)."""
    with transaction.atomic():
        settled = Answer.objects.filter(pk=answer.pk, status=AnswerStatus.STREAMING).update(
            status=AnswerStatus.DONE if status == MessageStatus.COMPLETE else AnswerStatus.FAILED,
            finished_at=timezone.now(),
        )
        if not settled:
            return None
        sequence = conversation.next_sequence(answer.focus_group_id)
        message = Message.objects.create(
            focus_group_id=answer.focus_group_id,
            sequence=sequence,
            role=MessageRole.PERSONA,
            persona=answer.persona,
            speaker_name=answer.persona.name,
            content=content,
            status=status,
            error=error[:500],
            reply_to=answer.prompt_message,
            answer_id=answer.pk,
            retry_of=answer.retry_of,
            simulated=simulated,
        )
        if answer.retry_of_id and status == MessageStatus.COMPLETE:
            Message.objects.filter(pk=answer.retry_of_id).update(status=MessageStatus.RETRIED)
        events.publish_message_on_commit(message)
        if status == MessageStatus.COMPLETE:
            live_themes.live_themes_enqueue_on_commit(answer.focus_group_id)
    return message


# An answer is bounded by the gateway's deadline (retries included); one still streaming well past it lost its
# worker (killed mid-answer: nothing else would ever settle it, and the page would show it typing for good).
ANSWER_LOST_AFTER_SECONDS = 120


def answers_reap(*, now=None) -> int:
    """Answers whose worker died mid-answer: saved as failed, saying so, so the researcher can retry them."""
    now = now or timezone.now()
    lost = now - timedelta(seconds=settings.LLM_DEADLINE_SECONDS + ANSWER_LOST_AFTER_SECONDS)
    count = 0
    stale = Answer.objects.filter(status=AnswerStatus.STREAMING, started_at__lt=lost).select_related(
        "persona", "prompt_message"
    )
    for answer in stale:
        message = _save_answer(
            answer,
            status=MessageStatus.FAILED,
            error="This answer was interrupted (the server handling it stopped). Retry it.",
        )
        if message is not None:
            logger.warning("Answer %s lost its worker mid-answer; saved as failed", answer.pk)
            count += 1
    return count


def answer_generate(*, answer_id) -> Message | None:
    """Generate one persona's answer, streaming deltas; save it whole, or as a failure. Runs once per answer."""
    answers, room = _claim([answer_id])
    return _answer_written(answers[0], room) if room is not None else None


def _answer_written(answer: Answer, shared: _Round) -> Message | None:
    """A claimed answer, written and saved (or saved as failed)."""
    focus_group, persona = answer.focus_group, answer.persona
    try:
        result = conversation.persona_answer(
            focus_group=focus_group,
            persona=persona,
            prompt_message=answer.prompt_message,
            answer_id=answer.pk,
            participants=shared.participants,
            assets=shared.assets,
            transcript=shared.transcript,
        )
    except (LLMError, ApplicationError) as exc:
        return _save_answer(answer, status=MessageStatus.FAILED, error=exc.message)
    except Exception:
        logger.exception("Answer %s crashed", answer.pk)
        return _save_answer(
            answer,
            status=MessageStatus.FAILED,
            error="Something went wrong writing this answer. It has been logged; try again.",
        )
    text = result.text.strip()
    if not text:
        return _save_answer(answer, status=MessageStatus.FAILED, error="The AI returned an empty answer. Try again.")
    return _save_answer(answer, content=text, status=MessageStatus.COMPLETE, simulated=result.simulated)
