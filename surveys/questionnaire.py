"""What a valid questionnaire is: one set of rules for the builder page, the API and imported files.

Each check raises ``ApplicationError`` (a 400 ``validation_error``) whose message says what is wrong
and how to fix it, with the field it is about in ``extra["fields"]``.
"""

from cohorta.errors import ApplicationError
from surveys.models import CHOICE_KINDS, SCALE_POINTS, QuestionKind
from surveys.ssr import DEFAULT_ANCHOR_SETS

MAX_QUESTIONS = 60
MAX_OPTIONS = 20
MAX_TEXT = 1000
MAX_LABEL = 120

DEFAULT_LABELS = {
    QuestionKind.LIKERT5: ["Strongly disagree", "Disagree", "Neither agree nor disagree", "Agree", "Strongly agree"],
    QuestionKind.LIKERT7: [
        "Strongly disagree",
        "Disagree",
        "Somewhat disagree",
        "Neither agree nor disagree",
        "Somewhat agree",
        "Agree",
        "Strongly agree",
    ],
    QuestionKind.NPS: ["Not at all likely", "Extremely likely"],
}
# The anchor preset a scale question uses unless another is picked.
DEFAULT_PRESET = {
    QuestionKind.LIKERT5: "likert5_agreement",
    QuestionKind.LIKERT7: "likert7_agreement",
    QuestionKind.NPS: "nps11",
}
PRESET_LABELS = {
    "likert5_agreement": "Agreement (5 points)",
    "likert7_agreement": "Agreement (7 points)",
    "purchase_intent5": "Purchase intent (5 points)",
    "satisfaction5": "Satisfaction (5 points)",
    "likelihood5": "Likelihood (5 points)",
    "nps11": "Likelihood to recommend (0–10)",
}


def _invalid(message: str, field: str) -> ApplicationError:
    return ApplicationError(message, code="validation_error", extra={"fields": {field: [message]}})


def _texts(value, field: str, what: str) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [part for part in value.replace("\r", "").replace("|", "\n").split("\n")]
    if not isinstance(value, list) or not all(isinstance(item, str | int | float) for item in value):
        raise _invalid(f"{what} must be a list of short texts.", field)
    items = [str(item).strip() for item in value]
    items = [item for item in items if item]
    if any(len(item) > MAX_LABEL for item in items):
        raise _invalid(f"Keep each of the {what.lower()} under {MAX_LABEL} characters.", field)
    return items


def scale_values(kind: str) -> list[int]:
    """The numbers a scale question's points stand for: 1–5, 1–7, or 0–10."""
    if kind == QuestionKind.NPS:
        return list(range(11))
    return list(range(1, SCALE_POINTS[kind] + 1))


def presets_for(kind: str) -> list[tuple[str, str]]:
    points = SCALE_POINTS.get(kind)
    return [
        (key, PRESET_LABELS.get(key, key))
        for key, sets in DEFAULT_ANCHOR_SETS.items()
        if points and sets and all(len(anchors) == points for anchors in sets)
    ]


def anchor_sets_for(question: dict) -> list[list[str]]:
    """The anchor sets SSR rates this question's answers against: its own, else its preset's."""
    if question.get("anchor_sets"):
        return question["anchor_sets"]
    return DEFAULT_ANCHOR_SETS[question.get("anchor_preset") or DEFAULT_PRESET[question["kind"]]]


def question_clean(data: dict, *, prefix: str = "") -> dict:
    """A question's fields checked and normalised; raises ApplicationError naming what is wrong."""
    kind = str(data.get("kind") or "").strip().lower()
    if kind not in QuestionKind.values:
        kinds = ", ".join(QuestionKind.values)
        raise _invalid(f"{prefix}Unknown question type “{kind or '(blank)'}”: use one of {kinds}.", "kind")
    text = str(data.get("text") or "").strip()
    if not text:
        raise _invalid(f"{prefix}Write the question.", "text")
    if len(text) > MAX_TEXT:
        raise _invalid(f"{prefix}Keep the question under {MAX_TEXT} characters.", "text")
    labels = _texts(data.get("labels"), "labels", "Labels")
    options = _texts(data.get("options"), "options", "Options")
    clean = {
        "kind": kind,
        "text": text,
        "labels": [],
        "options": [],
        "randomize_options": bool(data.get("randomize_options")) and kind in CHOICE_KINDS,
        "anchor_preset": "",
        "anchor_sets": [],
        "direct_elicitation": kind in SCALE_POINTS and bool(data.get("direct_elicitation", True)),
    }
    if kind in (QuestionKind.LIKERT5, QuestionKind.LIKERT7):
        points = SCALE_POINTS[kind]
        if not labels:
            raise _invalid(
                f"{prefix}A {points}-point Likert question needs a label for each point, lowest first "
                f"(e.g. “Strongly disagree” … “Strongly agree”).",
                "labels",
            )
        if len(labels) != points:
            raise _invalid(
                f"{prefix}A {points}-point Likert question needs {points} labels; it has {len(labels)}.", "labels"
            )
        clean["labels"] = labels
    elif kind == QuestionKind.NPS:
        if labels and len(labels) not in (2, 11):
            raise _invalid(
                f"{prefix}A 0–10 rating takes 2 labels (its two ends) or 11; it has {len(labels)}.", "labels"
            )
        clean["labels"] = labels or DEFAULT_LABELS[QuestionKind.NPS]
    elif kind in CHOICE_KINDS:
        if len(options) < 2:
            raise _invalid(f"{prefix}A choice question needs at least 2 options, one per line.", "options")
        if len(options) > MAX_OPTIONS:
            raise _invalid(f"{prefix}A choice question takes at most {MAX_OPTIONS} options.", "options")
        if len({option.casefold() for option in options}) != len(options):
            raise _invalid(f"{prefix}Two options are the same; make each option different.", "options")
        clean["options"] = options
    if kind in SCALE_POINTS:
        clean.update(_anchors(kind, data, prefix))
    return clean


def _anchors(kind: str, data: dict, prefix: str) -> dict:
    points = SCALE_POINTS[kind]
    preset = str(data.get("anchor_preset") or "").strip()
    if preset and preset not in dict(presets_for(kind)):
        raise _invalid(f"{prefix}The anchor preset “{preset}” does not fit a {points}-point scale.", "anchor_preset")
    sets = data.get("anchor_sets") or []
    if isinstance(sets, str):
        blocks = [block for block in sets.replace("\r", "").split("\n\n") if block.strip()]
        sets = [[line.strip() for line in block.split("\n") if line.strip()] for block in blocks]
    if not isinstance(sets, list) or not all(isinstance(anchors, list) for anchors in sets):
        raise _invalid(f"{prefix}Anchor sets are lists of {points} statements, lowest first.", "anchor_sets")
    for number, anchors in enumerate(sets, start=1):
        if len(anchors) != points or not all(isinstance(a, str) and a.strip() for a in anchors):
            raise _invalid(
                f"{prefix}Anchor set {number} has {len(anchors)} statements; a {points}-point scale needs {points}, "
                "one per point, lowest first.",
                "anchor_sets",
            )
    return {"anchor_preset": preset, "anchor_sets": [[a.strip()[:300] for a in anchors] for anchors in sets][:6]}


def questions_clean(items) -> list[dict]:
    """A whole questionnaire; an empty one is refused."""
    if not isinstance(items, list) or not items:
        raise _invalid("A survey needs at least one question.", "questions")
    if len(items) > MAX_QUESTIONS:
        raise _invalid(f"A survey takes at most {MAX_QUESTIONS} questions; this one has {len(items)}.", "questions")
    cleaned = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise _invalid(f"Question {number} is not an object with a kind and a text.", "questions")
        try:
            cleaned.append(question_clean(item, prefix=f"Question {number}: "))
        except ApplicationError as exc:
            raise ApplicationError(
                exc.message, code="validation_error", extra={"fields": {"questions": [exc.message]}}
            ) from None
    return cleaned
