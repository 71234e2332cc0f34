"""What the result pages show, worked out from the run's results (surveys/results.py) and answers: where
each segment's interval sits on the scale, which segments differ, each answer's distribution as bars.
The results themselves (also the API's and the JSON export's) are left as they are."""

import copy
import math
from collections.abc import Callable, Iterable
from typing import TypeGuard

from django.urls import reverse

from surveys.models import Answer, QuestionKind, Respondent, Run
from surveys.questionnaire import scale_values
from surveys.stats import effect_word, format_p


def _position(value: float, low: float, high: float) -> float:
    """Where ``value`` sits between the scale's ends, in percent of the track."""
    if high <= low:
        return 0.0
    return round(max(0.0, min(100.0, (value - low) / (high - low) * 100)), 1)


# Any respondent id: stands in for the real one in the one URL reversed per page.
_ID_MARK = 987654321


def respondent_url_maker(run_id: int) -> Callable[[int], str]:
    """The URL of a respondent's page in this run, from one ``reverse`` per page: a run of 1,000 lists
    each respondent twice or more (the table, every open question), and a ``reverse`` each was a third of
    the page's time."""
    head, tail = reverse("surveys:respondent", kwargs={"run_id": run_id, "respondent_id": _ID_MARK}).rsplit(
        str(_ID_MARK), 1
    )
    return lambda respondent_id: f"{head}{respondent_id}{tail}"


def with_urls(run_id: int, respondents: Iterable[Respondent]) -> list[Respondent]:
    """The respondents, each with the URL of its page (``url``)."""
    url = respondent_url_maker(run_id)
    listed = list(respondents)
    for respondent in listed:
        respondent.url = url(respondent.pk)
    return listed


def results_page(results: dict) -> dict:
    """The results with what the page draws added: per segment row its interval on a track from the
    scale's lowest to highest point, the panel's own mean on the same track, a list of the segments
    that differ clearly from everyone else, across questions, and each open answer's link to its
    respondent."""
    page = copy.deepcopy(results)
    differences = []
    url = respondent_url_maker(results["run_id"])
    for question in page["questions"]:
        _theme_bars(question.get("themes"))
        for text in question.get("texts", []):
            text["url"] = url(text["respondent_id"])
        for theme in (question.get("themes") or {}).get("themes") or []:
            for quote in theme.get("quotes") or []:
                quote["url"] = url(quote["respondent_id"])
        scale = question.get("scale") or {}
        if not scale.get("mean"):
            continue
        low, high = scale["points"][0], scale["points"][-1]
        scale["mean_position"] = _position(scale["mean"]["mean"], low, high)
        scale["ends"] = (scale["labels"][0], scale["labels"][-1])
        for breakdown in question.get("segments", []):
            for row in breakdown["rows"]:
                mean = row["mean"]
                row["track"] = {
                    "left": _position(mean["low"], low, high),
                    "width": max(0.5, _position(mean["high"], low, high) - _position(mean["low"], low, high)),
                    "mean": _position(mean["mean"], low, high),
                }
                comparison = row.get("vs_rest") or {}
                if not comparison:
                    continue
                row["rank_note"] = _rank_note(comparison)
                if comparison.get("significant"):
                    row["direction"] = "higher" if comparison.get("difference", 0) > 0 else "lower"
                    row["difference"] = _difference(comparison)
                    mirrored = len(breakdown["rows"]) == 2 and row["direction"] == "lower"
                    if not mirrored:  # of two groups, one "higher than the other" says it all
                        differences.append(
                            {
                                "question_id": question["id"],
                                "number": question["number"],
                                "text": question["text"],
                                "attribute": breakdown["label"],
                                "segment": row["segment"],
                                "direction": row["direction"],
                                "difference": row["difference"],
                            }
                        )
    page["differences"] = differences
    page["scale_questions"] = sum(1 for q in page["questions"] if (q.get("scale") or {}).get("mean"))
    return page


SENTIMENT_BARS = {"positive": "bg-success", "mixed": "bg-warning", "negative": "bg-danger"}


def _theme_bars(entry: dict | None) -> None:
    """Each theme's bar: its share of the respondents who answered, as a width and a whole percentage,
    in its sentiment's colour."""
    for theme in (entry or {}).get("themes") or []:
        share = float(theme.get("share") or 0)
        theme["percent"] = round(share * 100)
        theme["width"] = round(max(1.0, min(100.0, share * 100)), 1)
        theme["bar"] = SENTIMENT_BARS.get(theme.get("sentiment", ""), "bg-secondary")


def chart_data(results: dict) -> dict:
    """What the page's charts read (its #survey-results JSON): the results without the open answers'
    texts, which the page lists as HTML already (a run of 1,000 would send them twice)."""
    return {**results, "questions": [{k: v for k, v in q.items() if k != "texts"} for q in results["questions"]]}


def _difference(comparison: dict) -> str:
    """A clear difference, from the segment's side: "lower than everyone else (2.57 vs 3.16; a large
    difference, p = 0.01)"."""
    direction = "higher" if comparison["difference"] > 0 else "lower"
    details = [f"{comparison['mean_a']:.2f} vs {comparison['mean_b']:.2f}"]
    d, p = comparison.get("cohens_d"), comparison.get("welch_p")
    if _finite(d):
        details.append(f"{effect_word(d)} difference")
    if _finite(p):
        details.append(format_p(p))
    return f"{direction} than {comparison['label_b']} ({'; '.join(details)})"


def _finite(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and math.isfinite(value)


def _rank_note(comparison: dict) -> str:
    """When the rank test (Mann-Whitney) disagrees with Welch's t test, the distributions deserve a look."""
    rank_p = comparison.get("mann_whitney_p")
    if not _finite(rank_p):
        return ""
    if (rank_p < 0.05) == bool(comparison.get("significant")):
        return ""
    return f"The rank test disagrees ({format_p(rank_p)}): look at the distributions."


def _bars(question: dict, pmf: list[float]) -> list[dict]:
    values = scale_values(question["kind"])
    labels = question.get("labels") or []
    named = labels if len(labels) == len(values) else []
    if not named and len(labels) == 2:
        named = [labels[0] if i == 0 else labels[1] if i == len(values) - 1 else "" for i in range(len(values))]
    top = max(pmf) or 1.0
    return [
        {
            "value": value,
            "label": named[i] if named else "",
            "pct": round(p * 100),
            "width": round(p / top * 100, 1),
        }
        for i, (value, p) in enumerate(zip(values, pmf, strict=False))
    ]


def respondent_answers(run: Run, answers: list[Answer]) -> list[Answer]:
    """Each answer with its question (as frozen in the run), and a scale answer's distribution as bars."""
    questions = {q["id"]: q for q in run.questions}
    for answer in answers:
        answer.question = questions.get(answer.question_id, {})
        answer.kind_label = QuestionKind(answer.question["kind"]).label if answer.question else ""
        if answer.pmf and answer.question:
            answer.bars = _bars(answer.question, answer.pmf)
            answer.scale_top = scale_values(answer.question["kind"])[-1]
    return sorted(answers, key=lambda a: a.question.get("number", 0))


def neighbours(answered: list[Respondent], respondent: Respondent) -> tuple[Respondent | None, Respondent | None]:
    """The previous and next of the respondents who answered (in panel order)."""
    ids = [r.pk for r in answered]
    if respondent.pk not in ids:
        return None, None
    index = ids.index(respondent.pk)
    return (answered[index - 1] if index > 0 else None), (answered[index + 1] if index + 1 < len(answered) else None)
