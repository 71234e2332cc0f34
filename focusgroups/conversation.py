"""What the moderated discussion and autonomous mode share: the session's message numbers, the
transcript as prompts see it, the persona prompts, the one persona-answer call, and the rolling
summary that keeps prompts bounded.

A persona answers the same way whoever asks: ``persona_answer()`` builds the prompt (who you are,
the session, the fenced assets, a bounded window of the talk) and streams the answer to the session's
websocket group. The moderated discussion (``discussion/``) and the AI moderator (``autonomous/``)
differ only in who asks and how the answer is saved."""

import contextlib
import logging
from collections.abc import Iterator

from django.db import transaction

from cohorta.errors import ApplicationError
from cohorta.numbering import counter_add
from focusgroups import events, names, tasks
from focusgroups.models import FocusGroup, FocusGroupStatus, Message, MessageRole, MessageStatus, Participant
from llm.errors import LLMError
from llm.gateway import LLMResult, complete
from llm.prompts import fence, render_prompt
from llm.replay import focus_group_scope, llm_run
from usage.quotas import quota_covering

logger = logging.getLogger(__name__)

# Rolling context: the last WINDOW_MESSAGES turns verbatim (within WINDOW_CHARS), a summary of the rest.
WINDOW_MESSAGES = 24
WINDOW_CHARS = 12_000
SUMMARY_EVERY = 12  # summarise once this many turns have fallen out of the window
ASSET_CHARS = 3000
ASSETS_TOTAL_CHARS = 12_000


def next_sequence(focus_group_id: int) -> int:
    """The session's next message number. The UPDATE locks the row until commit,
    so concurrent writers get distinct, gap-free numbers."""
    with transaction.atomic():
        return reserve_sequences(focus_group_id, 1)


def reserve_sequences(focus_group_id: int, count: int) -> int:
    """Reserve ``count`` consecutive message numbers and return the first; call it inside the
    transaction that saves the messages (the row stays locked until it commits)."""
    assert transaction.get_connection().in_atomic_block, "reserve message numbers inside a transaction"
    return counter_add(FocusGroup, "last_sequence", pk=focus_group_id, count=count) - count + 1


def check_can_post(focus_group: FocusGroup) -> None:
    """Whether the session takes new messages at all, from the researcher or the AI moderator."""
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


# --- prompts ---------------------------------------------------------------------------------


def transcript_line(message: Message) -> str:
    who = "Moderator" if message.role in (MessageRole.RESEARCHER, MessageRole.MODERATOR) else message.speaker_name
    return f"{who}: {message.content}"


def transcript_window(*, focus_group: FocusGroup, before_sequence: int) -> str:
    """The talk a persona remembers word for word: the last WINDOW_MESSAGES complete turns before
    ``before_sequence`` that are not in the rolling summary yet, within WINDOW_CHARS."""
    window = list(
        Message.objects.filter(
            focus_group=focus_group,
            sequence__gt=focus_group.summary_through,
            sequence__lt=before_sequence,
            status=MessageStatus.COMPLETE,
        ).order_by("-sequence")[:WINDOW_MESSAGES]
    )
    lines, used = [], 0
    for message in window:  # newest first, so the budget keeps the most recent turns
        line = transcript_line(message)
        if used + len(line) > WINDOW_CHARS:
            break
        lines.append(line)
        used += len(line)
    return "\n".join(reversed(lines))


def asset_blocks(focus_group: FocusGroup) -> list[str]:
    """The session's material as the personas' prompts show it (fenced, within ASSETS_TOTAL_CHARS). A caller that
    builds many prompts for one session (an autonomous run's rounds) reads it once and passes it on."""
    assets, budget = [], ASSETS_TOTAL_CHARS
    for asset in focus_group.assets.all():
        text = (asset.reference_text or "")[: min(ASSET_CHARS, budget)]
        if not text:
            continue
        assets.append(fence(f"material shown to the group: {asset.filename}", text))
        budget -= len(text)
        if budget <= 0:
            break
    return assets


def build_persona_messages(
    *,
    focus_group: FocusGroup,
    persona,
    prompt_message: Message,
    participants: list[Participant] | None = None,
    assets: list[str] | None = None,
    transcript: str | None = None,
) -> list[dict]:
    """System prompt (who you are, the session, fenced assets) plus a bounded window of the talk. A round, whose
    answers all reply to one message, reads the participants, assets and transcript once and passes them in."""
    if participants is None:
        participants = list(focus_group.participants.select_related("persona"))
    others = [p.persona.name for p in participants if p.persona_id != persona.pk]
    if assets is None:
        assets = asset_blocks(focus_group)
    system = render_prompt(
        "focusgroups:persona_system",
        {"persona": persona, "focus_group": focus_group, "others": others, "assets": assets},
    )
    turn = render_prompt(
        "focusgroups:persona_turn",
        {
            "summary": focus_group.summary,
            "transcript": transcript
            if transcript is not None
            else transcript_window(focus_group=focus_group, before_sequence=prompt_message.sequence),
            "question": prompt_message.content,
            "addressed": persona.pk in (prompt_message.mentions or []),
            "name": names.given_name(persona.name),
        },
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": turn}]


@contextlib.contextmanager
def answering_together(focus_group: FocusGroup) -> Iterator[None]:
    """What the answers of a round share, looked up once for all of them rather than by each on its way to the
    provider: the run their calls belong to, and one check of the owner's budget and the session's cap. The
    round's helpers answer in copies of this context (focusgroups/round_helpers.py)."""
    with (
        llm_run(focus_group_scope(focus_group.pk)),
        quota_covering(
            user=focus_group.owner, focus_group_id=focus_group.pk, focus_group_cap_usd=focus_group.cost_cap_usd
        ),
    ):
        yield


def persona_answer(
    *,
    focus_group: FocusGroup,
    persona,
    prompt_message: Message,
    answer_id,
    participants: list[Participant] | None = None,
    on_delta=None,
    assets: list[str] | None = None,
    transcript: str | None = None,
) -> LLMResult:
    """One persona's answer to ``prompt_message``: typing shown, tokens streamed to the session as they
    come (``on_delta`` sees each one after it is sent), reset on a retry, metered against the owner and the
    session's cap. An answer cut at the token limit raises rather than being returned as complete."""
    focus_group_id, persona_id = focus_group.pk, persona.pk
    events.publish_typing(focus_group_id, answer_id=answer_id, persona_id=persona_id, name=persona.name)

    def stream(delta: str) -> None:
        events.publish_delta(focus_group_id, answer_id=answer_id, persona_id=persona_id, delta=delta)
        if on_delta is not None:
            on_delta(delta)

    return complete(
        feature="persona_response",
        messages=build_persona_messages(
            focus_group=focus_group,
            persona=persona,
            prompt_message=prompt_message,
            participants=participants,
            assets=assets,
            transcript=transcript,
        ),
        alias=focus_group.model_alias or None,
        user=focus_group.owner,
        focus_group_id=focus_group_id,
        persona_id=persona_id,
        focus_group_cap_usd=focus_group.cost_cap_usd,
        stream_to=stream,
        on_retry=lambda: events.publish_reset(focus_group_id, answer_id=answer_id),
        max_tokens=600,
        require_complete=True,  # an answer cut at the token limit is never saved as complete
    )


# --- rolling summary -----------------------------------------------------------------------


def summary_enqueue(focus_group_id: int) -> None:
    """Refresh the rolling summary in the background (call after commit)."""
    tasks.refresh_summary.apply_async((focus_group_id,))


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
    transcript = "\n".join(transcript_line(m) for m in old)[-40_000:]
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
