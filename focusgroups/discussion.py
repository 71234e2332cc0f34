"""The moderated discussion: researcher messages, parallel persona answers,
retries, the rolling context window, and session status.

A round: the researcher's message is saved (with the next sequence number)
together with one pending ``Answer`` per addressed participant; after commit
each answer is its own task on the LLM queue, so they run in parallel and
stream token deltas to the session's websocket group. An answer is saved as
a message only when complete (or as a failed message with a retry button),
so nothing half-written is ever stored."""

import logging
import re
import unicodedata

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from cohorta.errors import ApplicationError
from focusgroups import events, live_themes
from focusgroups.models import (
    Answer,
    AnswerStatus,
    FocusGroup,
    FocusGroupStatus,
    Message,
    MessageRole,
    MessageStatus,
    Participant,
)
from llm.errors import LLMError
from llm.gateway import complete
from llm.prompts import fence, render_prompt
from usage.quotas import quota_check

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 4000
# Rolling context: the last WINDOW_MESSAGES turns verbatim (within WINDOW_CHARS), a summary of the rest.
WINDOW_MESSAGES = 24
WINDOW_CHARS = 12_000
SUMMARY_EVERY = 12  # summarise once this many turns have fallen out of the window
ASSET_CHARS = 3000
ASSETS_TOTAL_CHARS = 12_000
# "@" then a name: letters in any script, digits, and the dots, hyphens and apostrophes inside names.
_MENTION = re.compile(r"(?<![\w@])@([^\W_][\w.'’-]*)")


def next_sequence(focus_group_id: int) -> int:
    """The session's next message number. The UPDATE locks the row until commit,
    so concurrent writers get distinct, gap-free numbers."""
    with transaction.atomic():
        return reserve_sequences(focus_group_id, 1)


def reserve_sequences(focus_group_id: int, count: int) -> int:
    """Reserve ``count`` consecutive message numbers and return the first; call it inside the
    transaction that saves the messages (the row stays locked until it commits)."""
    assert transaction.get_connection().in_atomic_block, "reserve message numbers inside a transaction"
    FocusGroup.objects.filter(pk=focus_group_id).update(last_sequence=F("last_sequence") + count)
    last = FocusGroup.objects.filter(pk=focus_group_id).values_list("last_sequence", flat=True).get()
    return last - count + 1


# Honorifics are not what anyone is called by: "Dr. Sarah Jones" is @Sarah.
_TITLES = {"dr", "mr", "mrs", "ms", "mx", "miss", "prof", "sir", "dame", "rev", "fr", "lord", "lady", "capt"}
_HANDLE_DROP = re.compile(r"[^\w'’-]|_")  # keep letters (any script), digits, hyphens, apostrophes


def _fold(text: str) -> str:
    """A name as matching sees it: no case, no accents, no punctuation ("Zoë O'Brien" → "zoeobrien")."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if c.isalnum()).casefold()


def _name_words(name: str) -> list[str]:
    return [word for word in name.split() if _fold(word)]


def given_name(name: str) -> str:
    """What the persona is called by: the first word of the name that is not a title."""
    words = _name_words(name)
    for word in words:
        if _fold(word) not in _TITLES:
            return word.strip(".,")
    return (words[0] if words else name).strip(".,")


def _handle_text(text: str) -> str:
    return _HANDLE_DROP.sub("", text).strip("'’-")


def mention_handles(participants: list[Participant]) -> dict[int, str]:
    """Participant id → the handle the composer inserts after "@": the given name when no one else in
    the session shares it, else given and family name run together, numbered when whole names clash.
    Every handle is one token parse_mentions reads back to exactly that participant."""
    given = {p.pk: _handle_text(given_name(p.persona.name)) or f"P{p.position + 1}" for p in participants}
    full = {
        p.pk: "".join(_handle_text(w) for w in _name_words(p.persona.name) if _fold(w) not in _TITLES) or given[p.pk]
        for p in participants
    }
    handles: dict[int, str] = {}
    for participant in participants:
        first = given[participant.pk]
        if sum(_fold(first) == _fold(given[p.pk]) for p in participants) == 1:
            handles[participant.pk] = first
            continue
        whole = full[participant.pk]
        namesakes = [p.pk for p in participants if _fold(full[p.pk]) == _fold(whole)]
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
        by_handle.setdefault(_fold(handles[participant.pk]), []).append(participant)
        words = _name_words(participant.persona.name)
        untitled = [w for w in words if _fold(w) not in _TITLES] or words
        names = {participant.persona.name, " ".join(untitled), given_name(participant.persona.name)}
        names.update(words[:1] + untitled[:1] + untitled[-1:])
        for key in {_fold(name) for name in names} - {""}:
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
    tables = _mention_lookup(participants)
    handles = mention_handles(participants)
    found: list[Participant] = []
    for token in _MENTION.findall(text):
        matches = next(
            (
                table[_fold(candidate)]
                for candidate in _mention_candidates(token)
                for table in tables
                if _fold(candidate) in table
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


def _check_can_post(focus_group: FocusGroup) -> None:
    if focus_group.archived:
        raise ApplicationError(
            "This session is archived. Restore it to continue the discussion.", code="archived", status_code=409
        )
    if focus_group.status == FocusGroupStatus.ENDED:
        raise ApplicationError(
            "This session has ended, so it takes no new messages. Reopen it for follow-up questions, or start a new "
            "session.",
            code="session_ended",
            status_code=409,
        )


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


def _enqueue_answers(answer_ids: list[str]) -> None:
    from focusgroups.tasks import generate_answer

    for answer_id in answer_ids:
        generate_answer.apply_async((answer_id,))


def message_post(*, focus_group: FocusGroup, text: str) -> tuple[Message, list[Answer]]:
    """Save the researcher's message and start one answer per addressed participant."""
    _check_can_post(focus_group)
    text = _clean_text(text)
    participants = list(focus_group.participants.select_related("persona"))
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
                sequence=next_sequence(focus_group.pk),
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
        sequence = next_sequence(focus_group.pk)
        message = Message.objects.create(
            focus_group=focus_group,
            sequence=sequence,
            role=MessageRole.RESEARCHER,
            speaker_name="Moderator",
            content=text,
            mentions=[p.persona_id for p in mentioned],
        )
        answers = [
            Answer.objects.create(focus_group=focus_group, persona=p.persona, prompt_message=message) for p in targets
        ]
        if focus_group.status in (FocusGroupStatus.DRAFT, FocusGroupStatus.PAUSED):
            focus_group.status = FocusGroupStatus.LIVE
            focus_group.save(update_fields=["status", "updated_at"])
            events.publish_status_on_commit(focus_group)
        events.publish_message_on_commit(message)
        answer_ids = [str(a.pk) for a in answers]
        transaction.on_commit(lambda: _enqueue_answers(answer_ids))
        focus_group_id = focus_group.pk
        transaction.on_commit(lambda: _enqueue_summary(focus_group_id))
    return message, answers


def answer_retry(*, focus_group: FocusGroup, message: Message) -> Answer:
    _check_can_post(focus_group)
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
        transaction.on_commit(lambda: _enqueue_answers([answer_id]))
    return answer


def focus_group_set_status(*, focus_group: FocusGroup, status: str) -> FocusGroup:
    allowed = {
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
    from focusgroups.models import AutonomousRun, RunEndReason, RunStatus

    AutonomousRun.objects.filter(
        focus_group=focus_group,
        status__in=[RunStatus.RUNNING, RunStatus.STOPPING, RunStatus.PAUSED, RunStatus.INTERRUPTED],
    ).update(status=RunStatus.ENDED, end_reason=RunEndReason.STOPPED, ended_at=timezone.now(), claimed_turn=None)

    def analyse():
        try:
            from focusgroups.analysis import analysis_on_session_end
        except ImportError:  # analysis not installed in this build
            return
        try:
            analysis_on_session_end(FocusGroup.objects.get(pk=focus_group.pk))
        except Exception:  # the session has ended either way; analysis can be re-run from the report page
            logger.exception("Could not start the analysis of focus group %s", focus_group.pk)

    transaction.on_commit(analyse)


# --- answering ---------------------------------------------------------------------------


def _transcript_line(message: Message) -> str:
    who = "Moderator" if message.role in (MessageRole.RESEARCHER, MessageRole.MODERATOR) else message.speaker_name
    return f"{who}: {message.content}"


def build_persona_messages(
    *, focus_group: FocusGroup, persona, prompt_message: Message, participants: list[Participant] | None = None
) -> list[dict]:
    """System prompt (who you are, the session, fenced assets) plus a bounded window of the talk."""
    if participants is None:
        participants = list(focus_group.participants.select_related("persona"))
    others = [p.persona.name for p in participants if p.persona_id != persona.pk]
    assets, budget = [], ASSETS_TOTAL_CHARS
    for asset in focus_group.assets.all():
        text = (asset.reference_text or "")[: min(ASSET_CHARS, budget)]
        if not text:
            continue
        assets.append(fence(f"material shown to the group: {asset.filename}", text))
        budget -= len(text)
        if budget <= 0:
            break
    system = render_prompt(
        "focusgroups:persona_system",
        {"persona": persona, "focus_group": focus_group, "others": others, "assets": assets},
    )
    window = list(
        Message.objects.filter(
            focus_group=focus_group,
            sequence__gt=focus_group.summary_through,
            sequence__lt=prompt_message.sequence,
            status=MessageStatus.COMPLETE,
        ).order_by("-sequence")[:WINDOW_MESSAGES]
    )
    lines, used = [], 0
    for message in window:  # newest first, so the budget keeps the most recent turns
        line = _transcript_line(message)
        if used + len(line) > WINDOW_CHARS:
            break
        lines.append(line)
        used += len(line)
    turn = render_prompt(
        "focusgroups:persona_turn",
        {
            "summary": focus_group.summary,
            "transcript": "\n".join(reversed(lines)),
            "question": prompt_message.content,
            "addressed": persona.pk in (prompt_message.mentions or []),
            "name": given_name(persona.name),
        },
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": turn}]


def _save_answer(answer: Answer, *, content: str = "", status: str, error: str = "", simulated=False) -> Message:
    with transaction.atomic():
        sequence = next_sequence(answer.focus_group_id)
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
        Answer.objects.filter(pk=answer.pk).update(
            status=AnswerStatus.DONE if status == MessageStatus.COMPLETE else AnswerStatus.FAILED,
            finished_at=timezone.now(),
        )
        if answer.retry_of_id and status == MessageStatus.COMPLETE:
            Message.objects.filter(pk=answer.retry_of_id).update(status=MessageStatus.RETRIED)
        events.publish_message_on_commit(message)
        if status == MessageStatus.COMPLETE:
            live_themes.live_themes_enqueue_on_commit(answer.focus_group_id)
    return message


def answer_generate(*, answer_id) -> Message | None:
    """Generate one persona's answer, streaming deltas; save it whole, or as a failure. Runs once per answer."""
    claimed = Answer.objects.filter(pk=answer_id, status=AnswerStatus.PENDING).update(
        status=AnswerStatus.STREAMING, attempts=F("attempts") + 1
    )
    if not claimed:
        return None  # a duplicate delivery, or already answered
    answer = Answer.objects.select_related("focus_group__owner", "persona", "prompt_message").get(pk=answer_id)
    focus_group, persona = answer.focus_group, answer.persona
    events.publish_typing(focus_group.pk, answer_id=answer.pk, persona_id=persona.pk, name=persona.name)
    try:
        result = complete(
            feature="persona_response",
            messages=build_persona_messages(
                focus_group=focus_group, persona=persona, prompt_message=answer.prompt_message
            ),
            alias=focus_group.model_alias or None,
            user=focus_group.owner,
            focus_group_id=focus_group.pk,
            persona_id=persona.pk,
            focus_group_cap_usd=focus_group.cost_cap_usd,
            stream_to=lambda delta: events.publish_delta(
                focus_group.pk, answer_id=answer.pk, persona_id=persona.pk, delta=delta
            ),
            on_retry=lambda: events.publish_reset(focus_group.pk, answer_id=answer.pk),
            max_tokens=600,
            require_complete=True,  # an answer cut at the token limit is never saved as complete
        )
    except (LLMError, ApplicationError) as exc:
        return _save_answer(answer, status=MessageStatus.FAILED, error=exc.message)
    except Exception:
        logger.exception("Answer %s crashed", answer_id)
        return _save_answer(
            answer,
            status=MessageStatus.FAILED,
            error="Something went wrong writing this answer. It has been logged; try again.",
        )
    text = result.text.strip()
    if not text:
        return _save_answer(answer, status=MessageStatus.FAILED, error="The AI returned an empty answer. Try again.")
    return _save_answer(answer, content=text, status=MessageStatus.COMPLETE, simulated=result.simulated)


# --- rolling summary -----------------------------------------------------------------------


def _enqueue_summary(focus_group_id: int) -> None:
    from focusgroups.tasks import refresh_summary

    refresh_summary.apply_async((focus_group_id,))


def summary_due(*, last_sequence: int, summary_through: int) -> bool:
    """Enough turns have left the prompt window to fold them into the summary."""
    return last_sequence - WINDOW_MESSAGES - summary_through >= SUMMARY_EVERY


def summary_refresh(*, focus_group_id: int) -> bool:
    """Fold turns that have left the window into the running summary. Bounded: the summary
    replaces them in every prompt, so prompt size stops growing with the session."""
    focus_group = FocusGroup.objects.select_related("owner").get(pk=focus_group_id)
    if not summary_due(last_sequence=focus_group.last_sequence, summary_through=focus_group.summary_through):
        return False
    cutoff = focus_group.last_sequence - WINDOW_MESSAGES
    old = list(
        Message.objects.filter(
            focus_group=focus_group,
            sequence__gt=focus_group.summary_through,
            sequence__lte=cutoff,
            status=MessageStatus.COMPLETE,
        ).order_by("sequence")
    )
    transcript = "\n".join(_transcript_line(m) for m in old)[-40_000:]
    try:
        result = complete(
            feature="summary",
            messages=[
                {
                    "role": "user",
                    "content": render_prompt(
                        "focusgroups:summary",
                        {"previous": focus_group.summary, "transcript": transcript, "max_words": 300},
                    ),
                }
            ],
            user=focus_group.owner,
            focus_group_id=focus_group.pk,
            focus_group_cap_usd=focus_group.cost_cap_usd,
            max_tokens=700,
        )
    except (LLMError, ApplicationError) as exc:
        logger.warning("Summary for focus group %s not refreshed: %s", focus_group_id, exc.message)
        return False
    # Only move forward: a slower concurrent refresh must not overwrite a newer summary.
    FocusGroup.objects.filter(pk=focus_group_id, summary_through__lt=cutoff).update(
        summary=result.text.strip()[:6000], summary_through=cutoff
    )
    return True
