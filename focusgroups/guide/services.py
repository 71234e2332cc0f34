"""The discussion guide: its schema, validation, generation start, hand edits and Markdown export.

A guide is stored as JSON on ``DiscussionGuide.data``::

    {"title": "…", "sections": [{"title": "…", "goal": "…", "turn_budget": 6,
                                 "questions": [{"text": "…", "probes": ["…"]}]}]}

The same strict JSON schema is sent to the model (structured output) and checked on every save,
so a hand edit can never leave a guide the AI moderator cannot follow. Every edit below loads
the guide, changes a copy, validates the whole guide and saves it, or raises ``ApplicationError``
(400) with a message fit to show.
"""

import copy
from collections.abc import Iterable

import jsonschema
from django.db import transaction

from cohorta.errors import ApplicationError
from cohorta.jobs.models import ACTIVE_STATES, Job
from cohorta.jobs.selectors import jobs_for_target
from cohorta.jobs.services import job_create
from focusgroups.markdown import md_inline
from focusgroups.models import DiscussionGuide, FocusGroup
from llm.schemas import text_fit

JOB_KIND = "discussion_guide"

MIN_SECTIONS, MAX_SECTIONS = 2, 8
MIN_QUESTIONS, MAX_QUESTIONS = 1, 8
MIN_TURNS, MAX_TURNS = 1, 40
MAX_PROBES = 6
DEFAULT_TURN_BUDGET = 6

# In the schema, so the model is told them and the gateway cuts an answer that runs over (strict structured
# output does not enforce lengths itself); hand edits are held to the same.
MAX_LENGTHS = {"guide": 200, "section": 200, "goal": 1000, "text": 1000, "probe": 500}


def _str(kind: str) -> dict:
    return {"type": "string", "maxLength": MAX_LENGTHS[kind]}


QUESTION_SCHEMA = {
    "type": "object",
    "properties": {
        "text": {**_str("text"), "description": "The question the moderator asks, open-ended and neutral."},
        "probes": {
            "type": "array",
            "maxItems": MAX_PROBES,
            "items": _str("probe"),
            "description": "Short follow-ups to dig deeper when answers are thin.",
        },
    },
    "required": ["text", "probes"],
    "additionalProperties": False,
}

SECTION_SCHEMA = {
    "type": "object",
    "properties": {
        "title": {**_str("section"), "description": "A short name for this part of the discussion."},
        "goal": {**_str("goal"), "description": "What this section must learn, in one sentence."},
        "turn_budget": {
            "type": "integer",
            "minimum": MIN_TURNS,
            "maximum": MAX_TURNS,
            "description": "How many discussion turns to spend on this section.",
        },
        "questions": {
            "type": "array",
            "minItems": MIN_QUESTIONS,
            "maxItems": MAX_QUESTIONS,
            "items": QUESTION_SCHEMA,
        },
    },
    "required": ["title", "goal", "turn_budget", "questions"],
    "additionalProperties": False,
}

GUIDE_SCHEMA = {
    "type": "object",
    "properties": {
        "title": {**_str("guide"), "description": "A title for the guide."},
        "sections": {
            "type": "array",
            "minItems": MIN_SECTIONS,
            "maxItems": MAX_SECTIONS,
            "items": SECTION_SCHEMA,
        },
    },
    "required": ["title", "sections"],
    "additionalProperties": False,
}

_VALIDATOR = jsonschema.Draft202012Validator(GUIDE_SCHEMA)


# --- validation ----------------------------------------------------------------------------


def _field(path: Iterable) -> str:
    return ".".join(str(part) for part in path) or "guide"


def _where(path: list) -> str:
    """A path like ['sections', 1, 'questions', 0, 'text'] in words: "Section 2, question 1"."""
    parts = []
    if len(path) >= 2 and path[0] == "sections" and isinstance(path[1], int):
        parts.append(f"Section {path[1] + 1}")
        if len(path) >= 4 and path[2] == "questions" and isinstance(path[3], int):
            parts.append(f"question {path[3] + 1}")
            if len(path) >= 6 and path[4] == "probes" and isinstance(path[5], int):
                parts.append(f"probe {path[5] + 1}")
    return ", ".join(parts) or "The guide"


_NOUNS = {"sections": "section", "questions": "question", "probes": "probe"}


def _schema_message(error: jsonschema.ValidationError) -> str:
    path = list(error.absolute_path)
    where = _where(path)
    last = path[-1] if path else None
    match error.validator:
        case "minItems" | "maxItems" if last in _NOUNS:
            noun = _NOUNS[last]
            limit = error.validator_value
            owner = "A guide" if last == "sections" else ("A section" if last == "questions" else "A question")
            bound = "needs at least" if error.validator == "minItems" else "can have at most"
            return f"{owner} {bound} {limit} {noun}{'s' if limit != 1 else ''}" + (
                "." if where == "The guide" else f" ({where} has {len(error.instance)})."
            )
        case "maxLength":
            limit = error.validator_value
            return f"{where}: keep it under {limit:,} characters ({len(error.instance):,} now)."
        case "minimum" | "maximum" if last == "turn_budget":
            return f"{where}: the turn budget must be between {MIN_TURNS} and {MAX_TURNS} turns."
        case "required":
            missing = error.message.split("'")[1] if "'" in error.message else "a field"
            return f"{where}: “{missing}” is missing."
        case "additionalProperties":
            return f"{where}: {error.message}."
        case "type":
            expected = error.validator_value
            expected = " or ".join(expected) if isinstance(expected, list) else expected
            field = f"“{last}”" if isinstance(last, str) else "each item"
            nouns = {"array": "a list", "object": "an object", "integer": "a whole number"}
            noun = nouns.get(expected, f"a {expected}")
            return f"{where}: {field} must be {noun}."
    return f"{where}: {error.message}"


def _clean(data):
    """Strip whitespace from strings and drop blank probes, where the shape allows it."""
    data = copy.deepcopy(data)
    if not isinstance(data, dict):
        return data
    if isinstance(data.get("title"), str):
        data["title"] = data["title"].strip()
    sections = data.get("sections")
    for section in sections if isinstance(sections, list) else []:
        if not isinstance(section, dict):
            continue
        for key in ("title", "goal"):
            if isinstance(section.get(key), str):
                section[key] = section[key].strip()
        questions = section.get("questions")
        for question in questions if isinstance(questions, list) else []:
            if not isinstance(question, dict):
                continue
            if isinstance(question.get("text"), str):
                question["text"] = question["text"].strip()
            if isinstance(question.get("probes"), list):
                question["probes"] = [
                    probe.strip() if isinstance(probe, str) else probe
                    for probe in question["probes"]
                    if not (isinstance(probe, str) and not probe.strip())
                ]
    return data


def _content_errors(data: dict) -> list[tuple[list, str]]:
    """What the schema cannot say: no blank titles or questions, and sane lengths."""
    found = []

    def check(value: str, path: list, kind: str, blank: str | None = None) -> None:
        where = _where(path)
        if blank and not value:
            found.append((path, blank if path == ["title"] else f"{where}: {blank}"))
        elif len(value) > MAX_LENGTHS[kind]:
            found.append((path, f"{where}: keep it under {MAX_LENGTHS[kind]:,} characters ({len(value):,} now)."))

    check(data["title"], ["title"], "guide", "The guide needs a title.")
    for s, section in enumerate(data["sections"]):
        check(section["title"], ["sections", s, "title"], "section", "the section title is empty.")
        check(section["goal"], ["sections", s, "goal"], "goal")
        for q, question in enumerate(section["questions"]):
            check(question["text"], ["sections", s, "questions", q, "text"], "text", "the question text is empty.")
            for p, probe in enumerate(question["probes"]):
                check(probe, ["sections", s, "questions", q, "probes", p], "probe")
    return found


def guide_validate(data) -> dict:
    """The guide, cleaned (strings stripped, blank probes dropped), or ApplicationError 400.

    The error's message is the first problem in words; ``extra["fields"]`` maps each problem's
    path (``sections.1.questions.0.text``, 0-based) to its messages.
    """
    data = _clean(data)
    problems: list[tuple[list, str]]
    if not isinstance(data, dict):
        problems = [([], "A guide is an object with a title and a list of sections.")]
    else:
        errors = sorted(_VALIDATOR.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
        problems = [(list(error.absolute_path), _schema_message(error)) for error in errors]
        if not problems:
            problems = _content_errors(data)
    if not problems:
        return data
    fields: dict[str, list[str]] = {}
    for path, message in problems:
        fields.setdefault(_field(path), []).append(message)
    message = problems[0][1]
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    raise ApplicationError(message, code="validation_error", extra={"fields": fields})


def guide_repair(data, *, title: str = "") -> dict:
    """A guide the AI wrote, mended where its schema allowed what a guide cannot hold, so that a paid-for
    answer is kept: strings stripped and cut at a word boundary to their limits, a blank title replaced
    (``title``, else "Discussion guide"; "Section 2"), a blank question dropped, and a section left with
    no question asks its first probe, else about its goal. Anything else is for ``guide_validate``."""
    data = _clean(data)
    if not isinstance(data, dict) or not isinstance(data.get("sections"), list):
        return data
    if isinstance(data.get("title"), str):
        data["title"] = text_fit(data["title"] or title.strip() or "Discussion guide", MAX_LENGTHS["guide"])
    sections = []
    for section in data["sections"]:
        if not isinstance(section, dict) or not isinstance(section.get("questions"), list):
            sections.append(section)
            continue
        questions, probes = [], []
        for question in section["questions"]:
            if isinstance(question, dict) and isinstance(question.get("text"), str):
                if not question["text"]:
                    probes += [p for p in question.get("probes") or [] if isinstance(p, str) and p]
                    continue
                question = {**question, "text": text_fit(question["text"], MAX_LENGTHS["text"])}
                if isinstance(question.get("probes"), list):
                    question["probes"] = [
                        text_fit(probe, MAX_LENGTHS["probe"]) if isinstance(probe, str) else probe
                        for probe in question["probes"][:MAX_PROBES]
                    ]
            questions.append(question)
        section = {**section, "questions": questions}
        if isinstance(section.get("title"), str):
            section["title"] = text_fit(section["title"] or f"Section {len(sections) + 1}", MAX_LENGTHS["section"])
        if not questions:
            # Every question came back blank: keep the section (its turns are planned) with one it can ask.
            topic = (section.get("goal") if isinstance(section.get("goal"), str) else "") or section.get("title")
            text = probes[0] if probes else f"On “{str(topic).rstrip('.')}”: what do you think?"
            questions.append({"text": text_fit(text, MAX_LENGTHS["text"]), "probes": []})
        if isinstance(section.get("goal"), str):
            section["goal"] = text_fit(section["goal"], MAX_LENGTHS["goal"])
        sections.append(section)
    data["sections"] = sections
    return data


# --- reading -------------------------------------------------------------------------------


def guide_get(*, focus_group: FocusGroup) -> DiscussionGuide | None:
    return DiscussionGuide.objects.filter(focus_group=focus_group).first()


def guide_job_latest(*, focus_group: FocusGroup) -> Job | None:
    """The most recent guide job for this session, whatever its state."""
    return jobs_for_target(target=focus_group, kind=JOB_KIND).order_by("-created_at").first()


def guide_counts(data: dict) -> dict:
    sections = data.get("sections") or []
    return {
        "sections": len(sections),
        "questions": sum(len(section.get("questions") or []) for section in sections),
        "turns": sum(int(section.get("turn_budget") or 0) for section in sections),
    }


# --- writing -------------------------------------------------------------------------------


def guide_generate_start(*, focus_group: FocusGroup) -> Job:
    """Start writing the guide with AI; answers at once with the job. Free (no credits), metered.

    A guide job already waiting or running for this session is returned rather than doubled."""
    latest = guide_job_latest(focus_group=focus_group)
    if latest is not None and latest.state in ACTIVE_STATES:
        return latest
    return job_create(
        owner=focus_group.owner,
        kind=JOB_KIND,
        target=focus_group,
        total=1,
        params={"focus_group_id": focus_group.pk},
        message="Waiting to start",
    )


def guide_save(*, focus_group: FocusGroup, data, simulated: bool | None = None, job: Job | None = None):
    """Validate and store the whole guide (creating it if needed). ``simulated=None`` keeps the flag."""
    data = guide_validate(data)
    with transaction.atomic():
        guide = DiscussionGuide.objects.select_for_update().filter(focus_group=focus_group).first()
        if guide is None:
            guide = DiscussionGuide(focus_group=focus_group)
        guide.data = data
        if simulated is not None:
            guide.simulated = simulated
        if job is not None:
            guide.job = job
        guide.save()
    return guide


def _edit(focus_group: FocusGroup, change) -> DiscussionGuide:
    """Apply ``change(data)`` to a copy of the guide, validate the result, save it."""
    with transaction.atomic():
        guide = DiscussionGuide.objects.select_for_update().filter(focus_group=focus_group).first()
        if guide is None:
            raise ApplicationError(
                "This session has no discussion guide yet. Generate one first.", code="not_found", status_code=404
            )
        data = copy.deepcopy(guide.data)
        change(data)
        return guide_save(focus_group=focus_group, data=data)


def _index(value, size: int, what: str) -> int:
    try:
        index = int(value)
    except (TypeError, ValueError):
        index = -1
    if not 0 <= index < size:
        raise ApplicationError(f"That {what} no longer exists. Reload the page and try again.", code="validation_error")
    return index


def _section(data: dict, section) -> dict:
    return data["sections"][_index(section, len(data["sections"]), "section")]


def _question_index(data: dict, section, question) -> tuple[dict, int]:
    target = _section(data, section)
    return target, _index(question, len(target["questions"]), "question")


def _probes(probes) -> list[str]:
    if probes is None:
        return []
    if isinstance(probes, str):
        probes = probes.splitlines()
    return [str(probe).strip() for probe in probes if str(probe).strip()]


def _turns(value) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise ApplicationError(
            f"The turn budget must be a whole number between {MIN_TURNS} and {MAX_TURNS}.",
            code="validation_error",
        ) from None


def _move(items: list, index: int, to) -> None:
    to = max(0, min(len(items) - 1, int(to)))
    items.insert(to, items.pop(index))


def guide_title_set(*, focus_group: FocusGroup, title: str) -> DiscussionGuide:
    def change(data):
        data["title"] = title or ""

    return _edit(focus_group, change)


def guide_question_add(*, focus_group: FocusGroup, section, text: str, probes=None, position=None):
    def change(data):
        questions = _section(data, section)["questions"]
        question = {"text": text or "", "probes": _probes(probes)}
        if position is None or position == "":
            questions.append(question)
        else:
            questions.insert(max(0, _position(position)), question)

    return _edit(focus_group, change)


def guide_question_update(*, focus_group: FocusGroup, section, question, text=None, probes=None):
    def change(data):
        target, index = _question_index(data, section, question)
        if text is not None:
            target["questions"][index]["text"] = text
        if probes is not None:
            target["questions"][index]["probes"] = _probes(probes)

    return _edit(focus_group, change)


def guide_question_remove(*, focus_group: FocusGroup, section, question) -> DiscussionGuide:
    def change(data):
        target, index = _question_index(data, section, question)
        target["questions"].pop(index)

    return _edit(focus_group, change)


def guide_question_reorder(*, focus_group: FocusGroup, section, question, to) -> DiscussionGuide:
    """Move one question to position ``to`` (0-based, clamped) within its section."""

    def change(data):
        target, index = _question_index(data, section, question)
        _move(target["questions"], index, _position(to))

    return _edit(focus_group, change)


def guide_section_add(
    *,
    focus_group: FocusGroup,
    title: str,
    goal: str = "",
    turn_budget=DEFAULT_TURN_BUDGET,
    questions: Iterable[str] = (),
    position=None,
) -> DiscussionGuide:
    """Add a section; it needs at least one question, as every section does."""

    def change(data):
        section = {
            "title": title or "",
            "goal": goal or "",
            "turn_budget": _turns(turn_budget),
            "questions": [{"text": text, "probes": []} for text in questions if (text or "").strip()],
        }
        if position is None or position == "":
            data["sections"].append(section)
        else:
            data["sections"].insert(max(0, _position(position)), section)

    return _edit(focus_group, change)


def guide_section_remove(*, focus_group: FocusGroup, section) -> DiscussionGuide:
    def change(data):
        data["sections"].pop(_index(section, len(data["sections"]), "section"))

    return _edit(focus_group, change)


def guide_section_update(*, focus_group: FocusGroup, section, title=None, goal=None, turn_budget=None):
    """Rename a section, change its goal or its turn budget (whichever are given)."""

    def change(data):
        target = _section(data, section)
        if title is not None:
            target["title"] = title
        if goal is not None:
            target["goal"] = goal
        if turn_budget is not None:
            target["turn_budget"] = _turns(turn_budget)

    return _edit(focus_group, change)


def guide_section_rename(*, focus_group: FocusGroup, section, title: str) -> DiscussionGuide:
    return guide_section_update(focus_group=focus_group, section=section, title=title)


def guide_turn_budget_set(*, focus_group: FocusGroup, section, turn_budget) -> DiscussionGuide:
    return guide_section_update(focus_group=focus_group, section=section, turn_budget=turn_budget)


def guide_section_reorder(*, focus_group: FocusGroup, section, to) -> DiscussionGuide:
    def change(data):
        _move(data["sections"], _index(section, len(data["sections"]), "section"), _position(to))

    return _edit(focus_group, change)


def _position(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApplicationError("Where should it go? Give a position number.", code="validation_error") from None


# --- export --------------------------------------------------------------------------------


def guide_to_markdown(guide: DiscussionGuide) -> str:
    """The guide as Markdown: title, objective, then each section with goal, turn budget and
    numbered questions, probes as sub-bullets. Every text is escaped (``focusgroups.markdown``)."""
    focus_group = guide.focus_group
    data = guide.data or {}
    counts = guide_counts(data)
    lines = [f"# {md_inline(data.get('title')) or 'Discussion guide'}", ""]
    lines.append(f"**Focus group:** {md_inline(focus_group.title)}  ")
    lines.append(f"**Objective:** {md_inline(focus_group.objective)}")
    if focus_group.concept.strip():
        lines += ["", f"**Concept:** {md_inline(focus_group.concept)}"]
    lines += [
        "",
        f"{counts['sections']} sections · {counts['questions']} questions · {counts['turns']} turns in total",
    ]
    if guide.simulated:
        lines += ["", "_Simulated: written by Cohorta's offline simulator, not a language model._"]
    for number, section in enumerate(data.get("sections") or [], start=1):
        lines += ["", f"## {number}. {md_inline(section.get('title'))}", ""]
        if md_inline(section.get("goal")):
            lines.append(f"**Goal:** {md_inline(section.get('goal'))}  ")
        turns = int(section.get("turn_budget") or 0)
        lines += [f"**Turn budget:** {turns} turn{'s' if turns != 1 else ''}", ""]
        for index, question in enumerate(section.get("questions") or [], start=1):
            lines.append(f"{index}. {md_inline(question.get('text'))}")
            lines += [f"    - {md_inline(probe)}" for probe in question.get("probes") or []]
    return "\n".join(lines).rstrip() + "\n"


def guide_sections(focus_group: FocusGroup) -> list[dict]:
    """The guide's sections that have questions: what autonomous mode works through."""
    guide = getattr(focus_group, "guide", None)
    data = guide.data if guide is not None else {}
    return [s for s in (data or {}).get("sections", []) if s.get("questions")]
