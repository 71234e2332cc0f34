"""The persona quality judge: how well a persona stayed in character and agreed with itself.

    check = judge_persona(
        persona=persona,
        evidence=[("Which brands do you trust?", "Aldi, mostly…"), …],  # (question or situation, what they said)
        user=owner, job=job, source_kind="panel", source_id=panel.pk, source_label="Panel: Ohio voters",
    )
    check.adherence, check.consistency   # 0–9 each, or None when check.failed
    check.flagged                        # below AppSettings.quality_judge_bar on either score

One structured call (feature ``persona_judge``) scores two stated propositions, after TinyTroupe's
``validation/propositions.py``: in-character ADHERENCE (what they said fits their profile) and
SELF-CONSISTENCY (their answers agree with each other), 0–9 each with a reason, "when in doubt, score
lower" (personas/prompts/persona_judge.md). The profile and the answers reach the model fenced as data.

Every call leaves one ``PersonaCheck`` row. A judge that gives no usable answer (the gateway validates
the schema, retries once, then raises) leaves a failed check whose ``error`` says so: never a score it
did not give. ``QuotaExceeded`` is not caught: the caller decides what an exhausted budget stops.
"""

from collections.abc import Iterable, Sequence

from django.db.models import OuterRef, QuerySet, Subquery

from llm.errors import LLMError
from llm.gateway import complete
from llm.prompts import fence, render_prompt
from personas.models import CheckSource, Persona, PersonaCheck

FEATURE = "persona_judge"
SCORES = list(range(10))
REASON_CHARS = 600
# What the judge reads: enough answers to compare, each cut so one rambling answer cannot crowd out the rest.
MAX_EVIDENCE = 40
MAX_QUESTION_CHARS = 600
MAX_ANSWER_CHARS = 2000

_SCORED = {
    "type": "object",
    "properties": {
        # The reason first: the model says what it saw before it commits to a number.
        "reason": {"type": "string", "maxLength": REASON_CHARS},
        # An enum, not minimum/maximum: the gateway clamps numbers out of bounds, and a judge that says 15
        # has not said 9. Out of the enum the answer is invalid, retried once, then the check fails.
        "score": {"type": "integer", "enum": SCORES},
    },
    "required": ["reason", "score"],
    "additionalProperties": False,
}
JUDGE_SCHEMA = {
    "type": "object",
    "properties": {"adherence": _SCORED, "consistency": _SCORED},
    "required": ["adherence", "consistency"],
    "additionalProperties": False,
}

_PROFILE_LINES = (
    ("Name", "name"),
    ("Age", "age"),
    ("Gender", "gender"),
    ("Lives in", "location"),
    ("Works as", "occupation"),
    ("Income", "income_bracket"),
    ("Education", "education"),
    ("Household", "household"),
    ("Values", "values"),
    ("Interests", "interests"),
    ("Goals", "goals"),
    ("Frustrations", "frustrations"),
    ("Brands they like", "brand_affinities"),
    ("How they buy", "buying_behaviour"),
    ("Media habits", "media_habits"),
    ("Tech savviness", "tech_savviness"),
    ("Background", "backstory"),
    ("Speaking style", "speaking_style"),
    ("In their words", "quote"),
)
_TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")


def profile_text(persona: Persona) -> str:
    """The persona's profile as the judge reads it: one line per filled field."""
    lines = []
    for label, field in _PROFILE_LINES:
        value = getattr(persona, field)
        if isinstance(value, list):
            value = ", ".join(str(item) for item in value if item)
        if value not in (None, ""):
            lines.append(f"- {label}: {value}")
    traits = [f"{trait} {getattr(persona, trait)}" for trait in _TRAITS if getattr(persona, trait) is not None]
    if traits:
        lines.append(f"- Personality (Big Five, 0–100): {', '.join(traits)}")
    return "\n".join(lines)


def _cut(text: str, limit: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def evidence_text(evidence: Sequence[tuple[str, str]]) -> str:
    """Numbered question and answer pairs, so the judge can name the answer a reason rests on."""
    blocks = []
    for number, (asked, said) in enumerate(evidence[:MAX_EVIDENCE], start=1):
        blocks.append(f"Q{number}: {_cut(asked, MAX_QUESTION_CHARS)}\nA{number}: {_cut(said, MAX_ANSWER_CHARS)}")
    return "\n\n".join(blocks)


def judge_messages(persona: Persona, evidence: Sequence[tuple[str, str]]) -> list[dict]:
    prompt = render_prompt(
        "personas:persona_judge",
        {
            "profile": fence("the persona's profile", profile_text(persona)),
            "evidence": fence("what the persona said (questions and answers)", evidence_text(evidence)),
        },
    )
    return [{"role": "user", "content": prompt}]


def _usable(evidence: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(str(asked or ""), str(said)) for asked, said in evidence if said and str(said).strip()]


def judge_persona(
    *,
    persona: Persona,
    evidence: list[tuple[str, str]],
    user,
    job=None,
    source_kind: str,
    source_id: int | None,
    source_label: str,
) -> PersonaCheck:
    """Judge what ``persona`` said and save the check (scored, or failed with a reason). Raises ValueError
    for an unknown ``source_kind``, ``QuotaExceeded`` when the user's AI budget is spent (nothing saved)."""
    if source_kind not in CheckSource.values:
        raise ValueError(f"source_kind must be one of {CheckSource.values}, not {source_kind!r}")
    usable = _usable(evidence)
    check = PersonaCheck(
        persona=persona,
        source_kind=source_kind,
        source_id=source_id,
        source_label=(source_label or "")[:200],
        evidence_count=min(len(usable), MAX_EVIDENCE),
    )
    if not usable:
        check.error = "Not checked: the persona gave no answers to judge."
        check.save()
        return check
    try:
        result = complete(
            feature=FEATURE,
            messages=judge_messages(persona, usable),
            schema=JUDGE_SCHEMA,
            schema_name="persona_judge",
            user=user,
            job=job,
            persona_id=persona.pk,
            temperature=0,
        )
    except LLMError as exc:
        check.error = f"The quality judge gave no usable scores: {exc.message}"[:500]
        check.save()
        return check
    check.judge_model = result.model[:120]
    check.simulated = result.simulated
    check.adherence = result.data["adherence"]["score"]
    check.consistency = result.data["consistency"]["score"]
    check.adherence_reason = result.data["adherence"]["reason"].strip()
    check.consistency_reason = result.data["consistency"]["reason"].strip()
    check.save()
    return check


# --- reads ---------------------------------------------------------------------------------------------


def persona_checks(*, persona: Persona, limit: int = 10) -> list[PersonaCheck]:
    """A persona's most recent checks, newest first, failed ones included."""
    return list(PersonaCheck.objects.filter(persona=persona).order_by("-created_at", "-id")[:limit])


def latest_check(*, persona: Persona) -> PersonaCheck | None:
    """The newest scored check of a persona (a failed one says nothing about the persona)."""
    return (
        PersonaCheck.objects.filter(persona=persona, adherence__isnull=False, consistency__isnull=False)
        .order_by("-created_at", "-id")
        .first()
    )


def checks_for(
    *, personas: Iterable[Persona | int], source_kind: str | None = None, source_id: int | None = None
) -> QuerySet[PersonaCheck]:
    """The checks of a set of personas, newest first; narrowed to one source (a panel's check, a
    session) when ``source_kind`` and ``source_id`` are given."""
    ids = [getattr(persona, "pk", persona) for persona in personas]
    checks = PersonaCheck.objects.filter(persona_id__in=ids).select_related("persona")
    if source_kind is not None:
        checks = checks.filter(source_kind=source_kind)
    if source_id is not None:
        checks = checks.filter(source_id=source_id)
    return checks.order_by("-created_at", "-id")


def latest_checks_for(*, personas: Iterable[Persona | int]) -> dict[int, PersonaCheck]:
    """{persona id: its newest scored check} for a set of personas, in one query."""
    ids = [getattr(persona, "pk", persona) for persona in personas]
    newest = (
        PersonaCheck.objects.filter(persona_id=OuterRef("persona_id"), adherence__isnull=False)
        .exclude(consistency__isnull=True)
        .order_by("-created_at", "-id")
        .values("pk")[:1]
    )
    rows = PersonaCheck.objects.filter(persona_id__in=ids, pk=Subquery(newest))
    return {check.persona_id: check for check in rows}


def check_summary(check: PersonaCheck | None) -> dict | None:
    """A check as exports carry it."""
    if check is None:
        return None
    return {
        "adherence": check.adherence,
        "consistency": check.consistency,
        "adherence_reason": check.adherence_reason,
        "consistency_reason": check.consistency_reason,
        "flagged": check.flagged,
        "bar": check.bar,
        "judge_model": check.judge_model,
        "simulated": check.simulated,
        "source": check.source_label or check.get_source_kind_display(),
        "source_kind": check.source_kind,
        "source_id": check.source_id,
        "error": check.error,
        "checked_at": check.created_at.isoformat(),
    }


__all__ = [
    "FEATURE",
    "JUDGE_SCHEMA",
    "check_summary",
    "checks_for",
    "judge_messages",
    "judge_persona",
    "latest_check",
    "latest_checks_for",
    "persona_checks",
]
