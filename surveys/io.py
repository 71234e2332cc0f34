"""Reading a questionnaire file: JSON ``{"title", "intro", "randomize_questions", "questions": [...]}``
or a CSV with a header row ``type,question,labels,options,randomize_options`` (labels and options
separated by ``|``). Every error names the row or question and what to fix."""

import csv
import io
import json

from cohorta.errors import ApplicationError
from surveys.questionnaire import questions_clean

MAX_BYTES = 512 * 1024
CSV_COLUMNS = ("type", "question", "labels", "options", "randomize_options")
_TRUE = {"1", "yes", "true", "y", "x"}
# What "Download an example" gives: one question of each type, ready to edit and import.
EXAMPLE_CSV = """type,question,labels,options,randomize_options
likert5,I would try this product.,Strongly disagree|Disagree|Neither agree nor disagree|Agree|Strongly agree,,
likert7,The price is fair.,Strongly disagree|Disagree|Somewhat disagree|Neither agree nor disagree|Somewhat agree|Agree|Strongly agree,,
nps,How likely are you to recommend it to a friend?,Not at all likely|Extremely likely,,
single,Which size would you buy first?,,Small|Medium|Large|None of these,yes
multiple,When would you use it?,,Breakfast|Lunch|Dinner|Snacks,
open,What would make you switch to it?,,,
"""  # noqa: E501 - a CSV row is one line


def _bad(message: str) -> ApplicationError:
    return ApplicationError(message, code="invalid_file", extra={"fields": {"file": [message]}})


def questionnaire_read(upload) -> dict:
    """{title, intro, randomize_questions, questions} from an uploaded file, checked like the builder."""
    if upload is None:
        raise _bad("Choose a questionnaire file (.json or .csv).")
    raw = upload.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise _bad("The file is larger than 512 KB; a questionnaire file is much smaller. Check it is the right one.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _bad("The file is not UTF-8 text. Save it as UTF-8 CSV or JSON and try again.") from None
    name = (getattr(upload, "name", "") or "").lower()
    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0].replace("_", " ").replace("-", " ").strip()
    if name.endswith(".json") or text.lstrip().startswith(("{", "[")):
        data = _json(text)
    elif name.endswith(".csv") or "," in text:
        data = {"questions": _csv(text)}
    else:
        raise _bad("Upload a .json or .csv questionnaire file.")
    data.setdefault("title", stem.capitalize() or "Imported survey")
    try:
        data["questions"] = questions_clean(data.get("questions"))
    except ApplicationError as exc:
        raise _bad(exc.message) from None
    return data


def _json(text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(f"The JSON is not valid (line {exc.lineno}, column {exc.colno}): {exc.msg}.") from None
    if isinstance(data, list):
        data = {"questions": data}
    if not isinstance(data, dict):
        raise _bad('The JSON must be an object with a "questions" list.')
    questions = data.get("questions")
    if not isinstance(questions, list):
        raise _bad('The JSON has no "questions" list.')
    for item in questions:
        if isinstance(item, dict) and "type" in item and "kind" not in item:
            item["kind"] = item.pop("type")
        if isinstance(item, dict) and "question" in item and "text" not in item:
            item["text"] = item.pop("question")
    result = {
        "intro": str(data.get("intro") or "").strip()[:4000],
        "randomize_questions": bool(data.get("randomize_questions")),
        "questions": questions,
    }
    title = str(data.get("title") or "").strip()[:200]
    return {"title": title, **result} if title else result


def _csv(text: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "type" not in header or "question" not in header:
        raise _bad(
            f"The CSV needs a header row with at least “type” and “question” (columns: {', '.join(CSV_COLUMNS)})."
        )
    questions = []
    for row in reader:
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(row.values()):
            continue
        questions.append(
            {
                "kind": row.get("type", ""),
                "text": row.get("question", ""),
                "labels": row.get("labels", ""),
                "options": row.get("options", ""),
                "randomize_options": row.get("randomize_options", "").lower() in _TRUE,
            }
        )
    return questions
