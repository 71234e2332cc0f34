"""Themes of a run's open answers: per open question, what the respondents raised, how many raised it,
and their own words.

One job per run (``survey_themes``, surveys/jobs.py; started by ``services.themes_start``, by itself when a
run finishes) reads every open question's usable answers from the respondents who finished and asks the
model (feature ``survey_themes``, prompt surveys/prompts/themes.md) for themes as structured output: a
title, a one-sentence description, a sentiment, the numbers of the answers that voice it and 2–3 quotes,
each with the number of the answer it is from. The answers reach the prompt fenced (``llm.prompts.fence``):
data, never instructions. A question whose answers do not fit one prompt (``ANSWERS_MAX_CHARS``,
``ANSWERS_MAX_COUNT``) is read in parts of even size; each part after the first is shown the themes found
so far, reuses their titles, and themes with the same title are merged.

Nothing the model says about the answers is taken on trust (``part_clean``): an answer number that is not
one of the part's is dropped, and so is a repeat; a quote must be words of one of the theme's own answers
(the one it names, else another of them; case, spacing and typographic quotes aside), and the stored quote
is the answer's own text, else it is dropped; a new theme left without an answer or a quote is dropped.
How many respondents voiced a theme is counted here from the answers it was given (a respondent gives one
answer per question), never read from the model.

The themes are stored on the run (``Run.themes``) only once every call has succeeded: a failure (the
provider, the quota, a cancel) leaves the previous themes as they were, and the job's error says what
happened. Free (no credits), like the focus-group analysis; every call is metered like any other (usage
events, the monthly quota).
"""

import math
from collections import Counter
from dataclasses import dataclass

from django.db.models import Count, Q
from django.utils import timezone

from cohorta.errors import ApplicationError
from cohorta.jobs.errors import JobFailure
from llm.errors import LLMError
from llm.gateway import complete
from llm.prompts import fence, render_prompt
from llm.replay import llm_run
from surveys.models import Answer, AnswerStatus, QuestionKind, Respondent, RespondentState, Run
from surveys.scopes import run_scope

JOB_KIND = "survey_themes"
FEATURE = "survey_themes"
VERSION = 1

# A question needs this many usable answers before themes mean anything.
MIN_ANSWERS = 2
# One prompt's answers: about 6k tokens of text, and few enough numbers for the model to keep track of.
ANSWERS_MAX_CHARS = 24_000
ANSWERS_MAX_COUNT = 120
ANSWER_MAX_CHARS = 1_500  # an answer is at most 80 words (surveys.runner); a longer one is cut
MAX_THEMES = 8
MAX_QUOTES = 3
MIN_QUOTE_WORDS = 3  # a shorter quote only counts when it is the whole answer
SENTIMENTS = ("positive", "mixed", "negative")
TITLE_MAX, TEXT_MAX, QUOTE_MAX = 120, 400, 400


@dataclass(frozen=True)
class OpenAnswer:
    respondent_id: int
    name: str
    text: str  # on one line, as the model reads it; quotes are cut from this


def one_line(text: object, limit: int = ANSWER_MAX_CHARS) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= limit else line[: limit - 1].rsplit(" ", 1)[0] + "…"


def open_questions(run: Run) -> list[dict]:
    return [q for q in run.questions if q.get("kind") == QuestionKind.OPEN]


def open_answers(run: Run) -> dict[int, list[OpenAnswer]]:
    """Per open question, the usable answers of the respondents who finished, in panel order."""
    ids = [q["id"] for q in open_questions(run)]
    found: dict[int, list[OpenAnswer]] = {qid: [] for qid in ids}
    answers = (
        Answer.objects.filter(
            respondent__run=run,
            respondent__state=RespondentState.DONE,
            question_id__in=ids,
            status=AnswerStatus.OK,
        )
        .select_related("respondent")
        .order_by("respondent__position", "respondent_id")
    )
    for answer in answers:
        text = one_line(answer.text)
        if text:
            found[answer.question_id].append(OpenAnswer(answer.respondent_id, answer.respondent.name, text))
    return found


def has_open_answers(run: Run) -> bool:
    """Whether some open question has enough usable answers to find themes in."""
    ids = [q["id"] for q in open_questions(run)]
    if not ids:
        return False
    counts = Respondent.objects.filter(run=run, state=RespondentState.DONE).aggregate(
        **{
            f"q{qid}": Count("answers", filter=Q(answers__question_id=qid, answers__status=AnswerStatus.OK))
            for qid in ids
        }
    )
    return any((count or 0) >= MIN_ANSWERS for count in counts.values())


# --- parts ---------------------------------------------------------------------------------------


def _size(part: list[OpenAnswer]) -> int:
    return sum(len(a.text) + 8 for a in part)  # "[120] " and the line break


def parts_of(
    answers: list[OpenAnswer], *, max_chars: int | None = None, max_count: int | None = None
) -> list[list[OpenAnswer]]:
    """The answers in as few parts of even size as keep each within the budget (``ANSWERS_MAX_CHARS``,
    ``ANSWERS_MAX_COUNT``): even, because a last part of two answers would have too little to find
    themes in."""
    if not answers:
        return []
    max_chars = max_chars or ANSWERS_MAX_CHARS
    max_count = max_count or ANSWERS_MAX_COUNT
    parts = max(math.ceil(_size(answers) / max_chars), math.ceil(len(answers) / max_count), 1)
    while True:
        base, extra = divmod(len(answers), parts)
        split, start = [], 0
        for index in range(parts):
            end = start + base + (1 if index < extra else 0)
            split.append(answers[start:end])
            start = end
        if all(_size(part) <= max_chars for part in split) or parts >= len(answers):
            return split
        parts += 1


# --- the prompt and its schema ----------------------------------------------------------------------


def themes_schema() -> dict:
    """Themes with the numbers of their answers and quotes by answer number. The numbers are not bounded
    here: one the model gets wrong is dropped in ``part_clean`` rather than costing the whole answer."""
    quote = {
        "type": "object",
        "properties": {
            "answer": {"type": "integer", "description": "The [n] number of the answer quoted."},
            "text": {
                "type": "string",
                "maxLength": QUOTE_MAX,
                "description": "Words copied exactly from that answer: a phrase or a sentence.",
            },
        },
        "required": ["answer", "text"],
        "additionalProperties": False,
    }
    theme = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": TITLE_MAX, "description": "A short name (3–8 words)."},
            "description": {
                "type": "string",
                "maxLength": TEXT_MAX,
                "description": "What the respondents who voiced it said, in one sentence.",
            },
            "sentiment": {"type": "string", "enum": list(SENTIMENTS)},
            "answers": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "The [n] number of every answer that voices this theme.",
            },
            "quotes": {"type": "array", "maxItems": MAX_QUOTES, "items": quote},
        },
        "required": ["title", "description", "sentiment", "answers", "quotes"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"themes": {"type": "array", "minItems": 1, "maxItems": MAX_THEMES, "items": theme}},
        "required": ["themes"],
        "additionalProperties": False,
    }


def themes_prompt(
    run: Run,
    question: dict,
    part: list[OpenAnswer],
    *,
    index: int = 1,
    parts: int = 1,
    first: int = 1,
    total: int | None = None,
    known: list[dict] | None = None,
) -> str:
    lines = "\n".join(f"[{number}] {answer.text}" for number, answer in enumerate(part, start=1))
    return render_prompt(
        "surveys:themes",
        {
            "title": run.title,
            "intro": run.intro.strip(),
            "question": one_line(question["text"]),
            "part": index,
            "parts": parts,
            "first": first,
            "last": first + len(part) - 1,
            "total": total if total is not None else len(part),
            "known": known or [],
            "min_themes": 1 if len(part) < 6 or known else 2,
            "max_themes": MAX_THEMES,
            "answers": fence("answers", lines),
        },
    )


# --- checking what the model said ---------------------------------------------------------------------

_TYPOGRAPHIC = {"‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "“": '"', "”": '"', "„": '"', "″": '"',
                "–": "-", "—": "-", "…": "...", "\u00a0": " "}  # fmt: skip
_QUOTE_ENDS = " \"'“”‘’«».…"


def _normalised(text: str) -> tuple[str, list[int]]:
    """``text`` folded for comparison (case, typographic quotes and dashes, runs of spaces), with the
    position in ``text`` of each folded character."""
    out: list[str] = []
    where: list[int] = []
    for position, char in enumerate(text):
        folded = _TYPOGRAPHIC.get(char, char).casefold()
        if folded.isspace():
            if out and out[-1] == " ":
                continue
            folded = " "
        for piece in folded:
            out.append(piece)
            where.append(position)
    return "".join(out), where


def quote_in(quote: object, answer: str) -> str | None:
    """The passage of ``answer`` that ``quote`` copies (in the answer's own characters), or None when it
    copies none. Quote marks and dots around the quote are ignored; a quote of fewer than
    ``MIN_QUOTE_WORDS`` words counts only when it is the whole answer."""
    wanted, _ = _normalised(str(quote or "").strip(_QUOTE_ENDS + "\n\t"))
    wanted = wanted.strip()
    if not wanted:
        return None
    folded, where = _normalised(answer)
    start = folded.find(wanted)
    if start < 0:
        return None
    passage = answer[where[start] : where[start + len(wanted) - 1] + 1].strip()
    if len(passage.split()) < MIN_QUOTE_WORDS and passage.strip(_QUOTE_ENDS) != answer.strip(_QUOTE_ENDS):
        return None
    return passage


def _text(value, limit: int) -> str:
    return one_line(value, limit) if isinstance(value, str) else ""


def _number(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def part_clean(raw, answers: list[OpenAnswer]) -> tuple[list[dict], Counter]:
    """The themes of one part as we can stand behind them: each with the numbers (1-based) of its answers
    that exist, once each, and the quotes that are words of those answers (one per answer, each different
    words, at most ``MAX_QUOTES``). Returns them with what was dropped: ``dropped_answers`` (numbers out of range or
    repeated), ``dropped_quotes`` (words not in the theme's answers), ``dropped_themes``."""
    dropped: Counter = Counter()
    items = raw.get("themes") if isinstance(raw, dict) else None
    themes: list[dict] = []
    for item in items if isinstance(items, list) else []:
        title = _text(item.get("title"), TITLE_MAX) if isinstance(item, dict) else ""
        if not title:
            dropped["dropped_themes"] += 1
            continue
        numbers: list[int] = []
        given = item.get("answers")
        for value in given if isinstance(given, list) else []:
            number = _number(value)
            if number is None or not 1 <= number <= len(answers) or number in numbers:
                dropped["dropped_answers"] += 1
                continue
            numbers.append(number)
        quotes: list[dict] = []
        given = item.get("quotes")
        for quote in given if isinstance(given, list) else []:
            if not isinstance(quote, dict):
                dropped["dropped_quotes"] += 1
                continue
            named = _number(quote.get("answer"))
            # The answer it names first, then the theme's other answers: a right quote with a wrong number
            # is still the respondents' own words.
            order = ([named] if named in numbers else []) + [n for n in numbers if n != named]
            found = next(
                ((n, passage) for n in order if (passage := quote_in(quote.get("text"), answers[n - 1].text))),
                None,
            )
            if found is None:
                dropped["dropped_quotes"] += 1
            elif len(quotes) < MAX_QUOTES and all(q["answer"] != found[0] and _key(q["text"]) != _key(found[1])
                                                  for q in quotes):  # fmt: skip
                quotes.append({"answer": found[0], "text": found[1]})
        sentiment = item.get("sentiment")
        themes.append(
            {
                "title": title,
                "description": _text(item.get("description"), TEXT_MAX),
                "sentiment": sentiment if sentiment in SENTIMENTS else "mixed",
                "answers": numbers,
                "quotes": quotes,
            }
        )
    return themes, dropped


def _key(title: str) -> str:
    return " ".join(title.casefold().strip(" .!?:;-–—\"'").split())


def merge_part(merged: dict[str, dict], themes: list[dict], answers: list[OpenAnswer], dropped: Counter) -> None:
    """Fold one part's checked themes into the question's: a theme with a title seen before adds its
    respondents and quotes to it; a new one needs at least one answer and one quote."""
    for theme in themes:
        respondents = [answers[n - 1].respondent_id for n in theme["answers"]]
        quotes = [
            {"respondent_id": answers[q["answer"] - 1].respondent_id, "name": answers[q["answer"] - 1].name,
             "text": q["text"]}
            for q in theme["quotes"]
        ]  # fmt: skip
        key = _key(theme["title"])
        known = merged.get(key)
        if known is None:
            if not respondents or not quotes:
                dropped["dropped_themes"] += 1
                continue
            merged[key] = {
                "title": theme["title"],
                "description": theme["description"],
                "sentiment": theme["sentiment"],
                "respondents": list(dict.fromkeys(respondents)),
                "quotes": quotes,
                "order": len(merged),
            }
            continue
        known["respondents"] = list(dict.fromkeys([*known["respondents"], *respondents]))
        for quote in quotes:
            if len(known["quotes"]) < MAX_QUOTES and all(
                q["respondent_id"] != quote["respondent_id"] and _key(q["text"]) != _key(quote["text"])
                for q in known["quotes"]
            ):
                known["quotes"].append(quote)
        if theme["sentiment"] != known["sentiment"] and respondents:
            known["sentiment"] = "mixed"  # one part's respondents felt one way, another's another
        if not known["description"]:
            known["description"] = theme["description"]


def question_summary(merged: dict[str, dict], *, answers: int, parts: int, dropped: Counter) -> dict:
    """A question's themes as stored: the most voiced first (at most ``MAX_THEMES``), each with how many
    of the ``answers`` voiced it and its share of them."""
    ordered = sorted(merged.values(), key=lambda t: (-len(t["respondents"]), t["order"]))[:MAX_THEMES]
    voiced = {pk for theme in ordered for pk in theme["respondents"]}
    return {
        "answers": answers,
        "parts": parts,
        "themes": [
            {
                "title": theme["title"],
                "description": theme["description"],
                "sentiment": theme["sentiment"],
                "count": len(theme["respondents"]),
                "share": len(theme["respondents"]) / answers if answers else 0.0,
                "respondents": theme["respondents"],
                "quotes": theme["quotes"],
            }
            for theme in ordered
        ],
        "unassigned": answers - len(voiced),
        "dropped_answers": dropped["dropped_answers"],
        "dropped_quotes": dropped["dropped_quotes"],
        "dropped_themes": dropped["dropped_themes"],
    }


# --- the job ---------------------------------------------------------------------------------------------


def _ask(job, prompt: str):
    try:
        return complete(
            feature=FEATURE,
            messages=[{"role": "user", "content": prompt}],
            schema=themes_schema(),
            schema_name=FEATURE,
            user=job.owner,
            job=job,
        )
    except (LLMError, ApplicationError) as exc:  # typed provider errors and the quota
        raise JobFailure(exc.message) from None  # the page adds that the themes found before are kept


def _step(number: int, questions: int, index: int, parts: int, first: int, last: int) -> str:
    where = f"Question {number} of {questions}" if questions > 1 else "Reading the answers"
    return f"{where}: answers {first}–{last}" if parts > 1 else where


def themes_execute(job, ctx) -> dict:
    """The ``survey_themes`` job: every open question's answers, part by part, then all the themes stored at
    once. Raises ``JobFailure`` (the job fails, the run's themes stay as they were) when a call fails."""
    run = Run.objects.filter(pk=job.params.get("run_id"), owner=job.owner).first()
    if run is None:
        raise JobFailure("The survey run was deleted before its themes could be found.")
    with llm_run(run_scope(run)):
        return _themes_of(run, job, ctx)


def _themes_of(run: Run, job, ctx) -> dict:
    by_question = open_answers(run)
    questions = open_questions(run)
    plan = [(q, parts_of(by_question[q["id"]])) for q in questions if len(by_question[q["id"]]) >= MIN_ANSWERS]
    if not plan:
        raise JobFailure(
            f"There is nothing to find themes in: no open question has at least {MIN_ANSWERS} usable answers."
        )
    steps = sum(len(parts) for _, parts in plan)
    done = 0
    models: list[str] = []
    simulated = False
    stored: dict[str, dict] = {}
    for question in questions:
        count = len(by_question[question["id"]])
        if count < MIN_ANSWERS:
            stored[str(question["id"])] = {"answers": count, "themes": [], "too_few": True}
    for number, (question, parts) in enumerate(plan, start=1):
        merged: dict[str, dict] = {}
        dropped: Counter = Counter()
        answers = by_question[question["id"]]
        first = 1
        for index, part in enumerate(parts, start=1):
            last = first + len(part) - 1
            ctx.progress(done, steps, _step(number, len(plan), index, len(parts), first, last))
            known = [{"title": t["title"], "description": t["description"]} for t in merged.values()]
            prompt = themes_prompt(
                run, question, part, index=index, parts=len(parts), first=first, total=len(answers), known=known
            )
            result = _ask(job, prompt)
            simulated = simulated or result.simulated
            models.append(result.model)
            found, part_dropped = part_clean(result.data, part)
            dropped.update(part_dropped)
            merge_part(merged, found, part, dropped)
            done += 1
            first = last + 1
        stored[str(question["id"])] = question_summary(merged, answers=len(answers), parts=len(parts), dropped=dropped)
    found_themes = sum(len(entry["themes"]) for entry in stored.values())
    ctx.progress(done, steps, f"{found_themes} theme{'s' if found_themes != 1 else ''} found")
    ctx.check_cancelled()  # cancelled while the model answered: keep the themes that are there
    themes = {
        "version": VERSION,
        "generated_at": timezone.now().isoformat(),
        "job_id": str(job.pk),
        "model": models[-1] if models else "",
        "simulated": simulated,
        "questions": stored,
    }
    Run.objects.filter(pk=run.pk).update(themes=themes)
    return {"run_id": run.pk, "questions": len(plan), "themes": found_themes, "simulated": simulated}
