"""Emerging themes while a session runs: a quick, provisional read every N participant answers.

After a participant's answer is saved (a moderated round's answer or an autonomous turn's), the engine calls
``live_themes_enqueue_on_commit``. When the session's answer count has reached a multiple of N that no pass
has read yet (App settings' ``live_themes_every_turns``; 0 switches it off), a background task asks the mini
model (feature ``live_themes``, strict JSON with length limits) for a handful of themes from the recent
transcript, the rolling summary and the themes of the last read, and stores them on the session's
``LiveThemes`` row; the session page shows them as provisional and updates live (``fg.live_themes``).

At most one pass per multiple: the pass claims its multiple with a conditional UPDATE of
``claimed_answers`` before calling the model, so concurrent answers, duplicate tasks and redeliveries find
it taken; a pass whose call fails is not retried (the next multiple reads again). No pass starts while
the provider is failing (the session's latest AI call failed, or its autonomous run is between failed
turns or paused for the provider): it waits for the next answer, the sign the provider is answering again.

Free in credits, like the themes and the report; metered like every call (usage events, quota, session cap).
Once the final analysis covers the session, the page links to its themes instead."""

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError
from focusgroups import events, tasks
from focusgroups.models import (
    AutonomousRun,
    FocusGroup,
    LiveThemes,
    Message,
    MessageRole,
    MessageStatus,
    RunEndReason,
    RunStatus,
)
from focusgroups.report import analysis
from llm.errors import LLMError
from llm.gateway import complete
from llm.prompts import fence, render_prompt
from usage.models import UsageEvent, UsageStatus

logger = logging.getLogger(__name__)

FEATURE = "live_themes"
MAX_THEMES = 5
MAX_SEQUENCES = 3
TITLE_MAX = 80
NOTE_MAX = 240
# The recent part of the talk (about 4k tokens); the rolling summary stands for what came before.
TRANSCRIPT_MAX_CHARS = 16_000
MAX_TOKENS = 900


def every_turns() -> int:
    return get_app_settings().live_themes_every_turns


def due_mark(*, answers: int, every: int) -> int:
    """The multiple of ``every`` that ``answers`` has reached (0: none yet, or switched off)."""
    return answers // every * every if every > 0 else 0


def answers_count(focus_group_id: int) -> int:
    return (
        Message.objects.filter(focus_group_id=focus_group_id, role=MessageRole.PERSONA, status=MessageStatus.COMPLETE)
        .exclude(content="")
        .count()
    )


# --- the schema and the answer ---------------------------------------------------------------


def live_themes_schema(*, sequences: list[int]) -> dict:
    sequence: dict = {"type": "integer", "description": "The [#n] number of a participant message."}
    if 0 < len(sequences) <= analysis.MAX_ENUM:
        sequence["enum"] = sorted(set(sequences))
    elif sequences:
        sequence.update(minimum=min(sequences), maximum=max(sequences))
    theme = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": TITLE_MAX, "description": "A short name (2–6 words)."},
            "note": {"type": "string", "maxLength": NOTE_MAX, "description": "One sentence on what is said."},
            "sentiment": {"type": "string", "enum": list(analysis.SENTIMENTS)},
            "sequences": {"type": "array", "maxItems": MAX_SEQUENCES, "items": sequence},
        },
        "required": ["title", "note", "sentiment", "sequences"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"themes": {"type": "array", "minItems": 1, "maxItems": MAX_THEMES, "items": theme}},
        "required": ["themes"],
        "additionalProperties": False,
    }


def _line(value, limit: int) -> str:
    return " ".join(value.split())[:limit] if isinstance(value, str) else ""


def live_themes_clean(raw, *, focus_group_id: int) -> list[dict]:
    """The model's themes as stored: titled, at most ``MAX_THEMES``, a known sentiment, and message numbers
    only of this session's complete participant answers (others are dropped, never shown as links)."""
    candidates = raw.get("themes") if isinstance(raw, dict) else None
    candidates = [c for c in candidates if isinstance(c, dict)] if isinstance(candidates, list) else []
    wanted = {
        n
        for c in candidates
        for n in (c.get("sequences") if isinstance(c.get("sequences"), list) else [])
        if isinstance(n, int) and not isinstance(n, bool) and 0 < n < 2**31
    }
    real = set(
        Message.objects.filter(
            focus_group_id=focus_group_id,
            sequence__in=wanted,
            role=MessageRole.PERSONA,
            status=MessageStatus.COMPLETE,
        ).values_list("sequence", flat=True)
    )
    themes: list[dict] = []
    seen: set[str] = set()
    for candidate in candidates:
        title = _line(candidate.get("title"), TITLE_MAX)
        if not title or title.casefold() in seen:
            continue
        seen.add(title.casefold())
        sequences = candidate.get("sequences") if isinstance(candidate.get("sequences"), list) else []
        sentiment = candidate.get("sentiment")
        themes.append(
            {
                "title": title,
                "note": _line(candidate.get("note"), NOTE_MAX),
                "sentiment": sentiment if sentiment in analysis.SENTIMENTS else "mixed",
                "sequences": sorted({n for n in sequences if n in real})[:MAX_SEQUENCES],
            }
        )
    return themes[:MAX_THEMES]


# --- when a pass may run ---------------------------------------------------------------------


def provider_failing(focus_group_id: int) -> bool:
    """The provider looks down for this session: its latest AI call failed, or its autonomous run is waiting
    to retry a failed turn or paused because the provider is not answering."""
    latest = (
        UsageEvent.objects.filter(focus_group_id=focus_group_id)
        .order_by("-created_at", "-id")
        .values_list("status", flat=True)
        .first()
    )
    if latest == UsageStatus.ERROR:
        return True
    return AutonomousRun.objects.filter(
        Q(status__in=[RunStatus.RUNNING, RunStatus.STOPPING], failed_turns__gt=0)
        | Q(status=RunStatus.PAUSED, end_reason=RunEndReason.PROVIDER_UNAVAILABLE),
        focus_group_id=focus_group_id,
    ).exists()


def _claimed(focus_group_id: int) -> int:
    return (
        LiveThemes.objects.filter(focus_group_id=focus_group_id).values_list("claimed_answers", flat=True).first() or 0
    )


def live_themes_enqueue_on_commit(focus_group_id: int) -> None:
    """After a participant's answer is saved: once it commits, start a pass if the answer count reached a
    multiple of N no pass has read yet. Never raises into the engine that saved the answer."""

    def enqueue() -> None:
        try:
            mark = due_mark(answers=answers_count(focus_group_id), every=every_turns())
            if mark and mark > _claimed(focus_group_id):
                tasks.refresh_live_themes.apply_async((focus_group_id,))
        except Exception:  # emerging themes are a nicety: the discussion goes on without them
            logger.exception("Could not start the emerging themes of focus group %s", focus_group_id)

    transaction.on_commit(enqueue)


# --- the pass --------------------------------------------------------------------------------


def _prompt(focus_group: FocusGroup, transcript: analysis.Transcript, previous: list[dict]) -> str:
    return render_prompt(
        "focusgroups:live_themes",
        {
            "title": focus_group.title,
            "objective": focus_group.objective,
            "concept": focus_group.concept.strip(),
            "max_themes": MAX_THEMES,
            "max_sequences": MAX_SEQUENCES,
            "previous": [t.get("title") for t in previous if isinstance(t, dict) and t.get("title")],
            "truncated": transcript.truncated,
            "first_sequence": transcript.first_sequence,
            "omitted": transcript.omitted,
            "summary": focus_group.summary.strip(),
            "transcript": fence("transcript", transcript.text),
        },
    )


def live_themes_refresh(*, focus_group_id: int) -> str:
    """One pass, if one is due and not yet claimed. Returns what happened (for logs and tests)."""
    focus_group = FocusGroup.objects.select_related("owner").filter(pk=focus_group_id).first()
    if focus_group is None or focus_group.archived or not focus_group.owner.is_active:
        return "skipped"
    answers = answers_count(focus_group_id)
    mark = due_mark(answers=answers, every=every_turns())
    if not mark:
        return "not-due"
    if mark <= _claimed(focus_group_id):
        return "already-read"
    if provider_failing(focus_group_id):
        return "provider-failing"  # unclaimed: the next answer, the sign the provider is back, asks again
    row, _ = LiveThemes.objects.get_or_create(focus_group=focus_group)
    if not LiveThemes.objects.filter(pk=row.pk, claimed_answers__lt=mark).update(claimed_answers=mark):
        return "already-read"
    transcript = analysis.transcript_build(focus_group=focus_group, max_chars=TRANSCRIPT_MAX_CHARS)
    try:
        result = complete(
            feature=FEATURE,
            messages=[{"role": "user", "content": _prompt(focus_group, transcript, row.themes or [])}],
            schema=live_themes_schema(sequences=transcript.persona_sequences),
            schema_name=FEATURE,
            user=focus_group.owner,
            focus_group_id=focus_group.pk,
            focus_group_cap_usd=focus_group.cost_cap_usd,
            max_tokens=MAX_TOKENS,
        )
    except (LLMError, ApplicationError) as exc:  # typed LLM errors, quota and session cap: skip this multiple
        logger.warning("Emerging themes of focus group %s at %s answers: %s", focus_group_id, mark, exc.message)
        return "failed"
    themes = live_themes_clean(result.data, focus_group_id=focus_group_id)
    if not themes:
        return "empty"
    with transaction.atomic():
        # Only forward: a slower pass for an earlier multiple never replaces a newer read.
        saved = LiveThemes.objects.filter(pk=row.pk, through_sequence__lt=transcript.last_sequence).update(
            answers=answers,
            through_sequence=transcript.last_sequence,
            themes=themes,
            simulated=result.simulated,
            updated_at=timezone.now(),
        )
        if not saved:
            return "outdated"
        row.refresh_from_db()
        events.publish_live_themes_on_commit(focus_group_id, live_themes_payload(row))
    return "saved"


# --- reading ---------------------------------------------------------------------------------


def live_themes_payload(row: LiveThemes) -> dict:
    """What the page and the socket show of a stored read."""
    return {
        "answers": row.answers,
        "through_sequence": row.through_sequence,
        "themes": row.themes or [],
        "simulated": row.simulated,
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
    }


def live_themes_latest(*, focus_group_id: int) -> dict | None:
    """The latest read of the emerging themes as the page and the socket show it, or None before the first."""
    row = LiveThemes.objects.filter(focus_group_id=focus_group_id).first()
    return live_themes_payload(row) if row is not None and row.themes else None


def live_themes_panel(*, focus_group: FocusGroup) -> dict | None:
    """The session page's "Emerging themes" card: None when the feature is off and nothing was read.

    ``final``: the latest analysis reads at least as far as the provisional themes, or, with none, as the
    session's last message (link to it instead); ``analysing``: an analysis is on its way."""
    every = every_turns()
    row = LiveThemes.objects.filter(focus_group=focus_group).first()
    themes = row.themes if row is not None and row.themes else []
    if every <= 0 and not themes:
        return None
    answers = answers_count(focus_group.pk)
    done = analysis.analysis_latest(focus_group=focus_group)
    through = (done.result or {}).get("through_sequence", 0) if done is not None else 0
    latest = analysis.analysis_job_latest(focus_group=focus_group)
    return {
        "every": every,
        "answers": answers,
        "next_at": (due_mark(answers=answers, every=every) + every) if every > 0 else None,
        "read": live_themes_payload(row) if row is not None and themes else None,
        "final": done is not None
        and through >= (row.through_sequence if row is not None and themes else focus_group.last_sequence),
        "analysing": latest is not None and latest.is_active,
    }
