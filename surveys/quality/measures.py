"""The numbers of a quality check, computed from answers already saved, each with its plain reading.

* ``retest_items``: per item, Cohen's κ between the run and its fresh retest over the respondents who gave a
  usable answer both times (``kappa.py``): a scale item's answer is its SSR rating rounded to the nearest
  point (and, beside it, the number stated directly when the item asked for one), quadratic weights; a single
  choice item's is the option picked, unweighted. Multiple choice and open items have no κ (they do not give
  one answer from a fixed set), and say so.
* ``sycophancy_items``: per scale item, how far the answers to its leading twin moved from the same
  respondents' answers to the neutral wording, toward the top of the scale (where the twin leads): the mean
  shift in scale points with its 95% bootstrap interval, and as a share of the scale's range.
* ``diversity_items``: per scale item, the variance and standard deviation of the ratings (SSR, and stated
  directly), against a human reference variance when one was given; per open item, the mean pairwise cosine
  distance between the answers' embeddings.
"""

import math
from collections.abc import Iterable
from typing import Any, TypeGuard

import numpy as np

from surveys.models import SCALE_POINTS, AnswerStatus, QuestionKind
from surveys.quality.kappa import cohen_kappa, reading
from surveys.questionnaire import scale_values
from surveys.stats import bootstrap_mean_ci

# κ over fewer respondents than this says more about chance than about the panel.
MIN_KAPPA_RESPONDENTS = 5
# Fewer paired answers than this give no sycophancy score (a mean shift of one or two people is noise).
MIN_SHIFT_RESPONDENTS = 3
RESAMPLES = 2000
# A panel's variance against people's: within this ratio it is about as varied (RESEARCH.md, validation).
VARIANCE_RATIO_OK = (0.7, 1.4)


def scale_point(expected: float, kind: str) -> int:
    """An SSR expected rating as the nearest point of the scale (halves round up)."""
    values = scale_values(kind)
    return int(min(values[-1], max(values[0], math.floor(expected + 0.5))))


def _finite(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and math.isfinite(value)


def _by_respondent(answers: Iterable) -> dict[tuple[int, int], Any]:
    """Usable answers keyed by (respondent key, question id)."""
    return {(key, a.question_id): a for key, a in answers if a.status == AnswerStatus.OK}


def kappa_text(entry: dict) -> str:
    """What a κ entry means, in words."""
    if entry.get("kappa") is None:
        return entry.get("note") or "No κ."
    k = entry["kappa"]
    agreement = round(entry["agreement"] * 100)
    first = f"κ = {k:.2f}: {entry['reading']} agreement between the two runs"
    if k < 0:
        first = f"κ = {k:.2f}: the two runs agree less than chance would"
    return (
        f"{first} ({agreement}% of {entry['n']} respondents gave the same answer both times; κ discounts the "
        f"agreement chance alone would give)."
    )


def retest_items(questions: list[dict], first: Iterable, second: Iterable) -> list[dict]:
    """κ per item. ``first`` and ``second`` are (respondent key, Answer) pairs from the run and its retest; the
    key is what pairs one respondent's answers across the runs."""
    before, after = _by_respondent(first), _by_respondent(second)
    items = []
    for q in questions:
        kind = q["kind"]
        entry: dict = {"id": q["id"], "number": q.get("number"), "text": q["text"], "kind": kind}
        keys = sorted(key for key, qid in before if qid == q["id"] and (key, qid) in after)
        if kind in (QuestionKind.MULTIPLE, QuestionKind.OPEN):
            entry["kappa"] = None
            entry["note"] = (
                "No κ: respondents may pick several options, so there is no single answer to compare."
                if kind == QuestionKind.MULTIPLE
                else "No κ for open answers: the judge and the diversity of the answers speak to them."
            )
            items.append(entry)
            continue
        if kind in SCALE_POINTS:
            pairs = [
                (before[(k, q["id"])], after[(k, q["id"])])
                for k in keys
                if _finite(before[(k, q["id"])].expected) and _finite(after[(k, q["id"])].expected)
            ]
            ssr_first = [scale_point(a.expected, kind) for a, _ in pairs]
            ssr_second = [scale_point(b.expected, kind) for _, b in pairs]
            entry.update(_kappa_entry(ssr_first, ssr_second, scale_values(kind), weighted=True))
            direct = [(a.direct, b.direct) for a, b in pairs if a.direct is not None and b.direct is not None]
            if len(direct) >= MIN_KAPPA_RESPONDENTS:
                entry["direct"] = cohen_kappa(
                    [a for a, _ in direct], [b for _, b in direct], scale_values(kind), weighted=True
                ).as_dict()
        else:  # single choice
            options = list(q.get("options") or [])
            pairs = [
                (before[(k, q["id"])].choices[0], after[(k, q["id"])].choices[0])
                for k in keys
                if before[(k, q["id"])].choices
                and after[(k, q["id"])].choices
                and before[(k, q["id"])].choices[0] in options
                and after[(k, q["id"])].choices[0] in options
            ]
            entry.update(_kappa_entry([a for a, _ in pairs], [b for _, b in pairs], options, weighted=False))
        entry["reading_text"] = kappa_text(entry)
        items.append(entry)
    return items


def _kappa_entry(first: list, second: list, categories: list, *, weighted: bool) -> dict:
    n = len(first)
    if n < MIN_KAPPA_RESPONDENTS:
        return {
            "kappa": None,
            "n": n,
            "note": (
                f"Too few respondents for κ: {n} answered this item in both runs, and κ needs at least "
                f"{MIN_KAPPA_RESPONDENTS}. Check a run on a larger panel."
            ),
        }
    result = cohen_kappa(first, second, categories, weighted=weighted).as_dict()
    if result["kappa"] is None:
        result["note"] = (
            f"κ is undefined: all {n} respondents gave the same answer, both times, so agreement cannot be told "
            "from chance. The answers are perfectly stable but show no spread."
        )
    return result


def retest_summary(items: list[dict]) -> dict:
    scored = [item["kappa"] for item in items if item.get("kappa") is not None]
    if not scored:
        return {"mean_kappa": None, "items_scored": 0}
    mean = float(np.mean(scored))
    return {"mean_kappa": mean, "reading": reading(mean), "items_scored": len(scored)}


# --- sycophancy ----------------------------------------------------------------------------------------


def shift_text(entry: dict, points: tuple[int, int]) -> str:
    if entry.get("shift") is None:
        return entry.get("note") or "No score."
    shift, share = entry["shift"], entry["share"]
    span = f"{points[0]}–{points[1]} scale"
    if abs(share) < 0.05:
        verdict = "no real shift: the leading wording barely moved the answers"
    elif shift > 0:
        size = "a large" if share >= 0.15 else "a clear" if share >= 0.10 else "a small"
        verdict = f"{size} shift toward what the leading wording suggests"
    else:
        verdict = "a shift against the leading wording"
    return (
        f"{shift:+.2f} points on the {span} ({share * 100:+.0f}% of its range) over {entry['n']} respondents: "
        f"{verdict}."
    )


def sycophancy_items(questions: list[dict], neutral: Iterable, leading: Iterable, *, seed: int) -> list[dict]:
    """Per scale item with a twin: mean (leading − neutral) rating over respondents with both; the twin leads
    toward the top of the scale, so a positive shift is sycophancy."""
    base, led = _by_respondent(neutral), _by_respondent(leading)
    items = []
    for q in questions:
        if q["kind"] not in SCALE_POINTS:
            continue
        values = scale_values(q["kind"])
        span = values[-1] - values[0]
        entry: dict = {"id": q["id"], "number": q.get("number"), "text": q["text"], "kind": q["kind"]}
        keys = sorted(k for k, qid in led if qid == q["id"] and (k, qid) in base)
        deltas = [
            led[(k, q["id"])].expected - base[(k, q["id"])].expected
            for k in keys
            if _finite(led[(k, q["id"])].expected) and _finite(base[(k, q["id"])].expected)
        ]
        entry["n"] = len(deltas)
        if len(deltas) < MIN_SHIFT_RESPONDENTS:
            entry["shift"] = None
            entry["note"] = (
                f"Too few respondents answered both wordings ({len(deltas)}; at least {MIN_SHIFT_RESPONDENTS} needed)."
            )
        else:
            mean, low, high = bootstrap_mean_ci(np.array(deltas), seed=seed + q["id"], resamples=RESAMPLES)
            entry.update(
                shift=float(mean),
                low=float(low) if math.isfinite(low) else None,
                high=float(high) if math.isfinite(high) else None,
                share=float(mean) / span,
                neutral_mean=float(
                    np.mean([base[(k, q["id"])].expected for k in keys if _finite(base[(k, q["id"])].expected)])
                ),
            )
            direct = [
                led[(k, q["id"])].direct - base[(k, q["id"])].direct
                for k in keys
                if led[(k, q["id"])].direct is not None and base[(k, q["id"])].direct is not None
            ]
            if len(direct) >= MIN_SHIFT_RESPONDENTS:
                entry["direct_shift"] = float(np.mean(direct))
        entry["reading_text"] = shift_text(entry, (values[0], values[-1]))
        items.append(entry)
    return items


# --- diversity -------------------------------------------------------------------------------------------


def _spread(values: list[float]) -> dict | None:
    if len(values) < 2:
        return None
    array = np.array(values, dtype=float)
    variance = float(array.var(ddof=1))
    return {"variance": variance, "sd": math.sqrt(variance), "n": len(values)}


def spread_text(entry: dict, points: tuple[int, int]) -> str:
    ssr = entry.get("ssr")
    if ssr is None:
        return "Too few ratings to measure their spread."
    span = points[1] - points[0]
    share = ssr["sd"] / span if span else 0
    words = (
        "the answers bunch tightly together"
        if share < 0.10
        else "a moderate spread"
        if share < 0.25
        else "a wide spread"
    )
    text = f"SD {ssr['sd']:.2f} on the {points[0]}–{points[1]} scale: {words}."
    reference = entry.get("reference")
    if reference:
        ratio = reference["ratio"]
        low, high = VARIANCE_RATIO_OK
        compare = (
            "about as varied as the people in the reference"
            if low <= ratio <= high
            else "less varied than the people in the reference (a typical sign of synthetic answers)"
            if ratio < low
            else "more varied than the people in the reference"
        )
        text += f" Variance ratio {ratio:.2f} against the reference: {compare}."
    return text


def diversity_scale_items(questions: list[dict], answers: Iterable, references: dict) -> list[dict]:
    """Per scale item: variance and SD of the SSR ratings and of the numbers stated directly; against the
    reference variance (``references``: question id as a string → variance of people's ratings) when given,
    on the directly stated numbers where the item asked for them (people tick a point), else on SSR."""
    by_question: dict[int, list] = {}
    for answer in answers:
        if answer.status == AnswerStatus.OK:
            by_question.setdefault(answer.question_id, []).append(answer)
    items = []
    for q in questions:
        if q["kind"] not in SCALE_POINTS:
            continue
        values = scale_values(q["kind"])
        rated = by_question.get(q["id"], [])
        entry: dict = {"id": q["id"], "number": q.get("number"), "text": q["text"], "kind": q["kind"]}
        entry["ssr"] = _spread([a.expected for a in rated if _finite(a.expected)])
        entry["direct"] = _spread([float(a.direct) for a in rated if a.direct is not None])
        reference = references.get(str(q["id"]))
        compared = entry["direct"] or entry["ssr"]
        if _finite(reference) and reference > 0 and compared:
            entry["reference"] = {
                "variance": float(reference),
                "ratio": compared["variance"] / float(reference),
                "on": "direct" if entry["direct"] else "ssr",
            }
        entry["reading_text"] = spread_text(entry, (values[0], values[-1]))
        items.append(entry)
    return items


def mean_pairwise_cosine_distance(vectors: list[list[float]]) -> float:
    """The mean of 1 − cos(a, b) over every pair of distinct answers."""
    matrix = np.array(vectors, dtype=float)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit = matrix / norms
    cosines = unit @ unit.T
    upper = np.triu_indices(len(vectors), k=1)
    return float(np.mean(1.0 - cosines[upper]))


def distance_text(distance: float, n: int) -> str:
    words = (
        "the answers say nearly the same thing"
        if distance < 0.10
        else "the answers are alike"
        if distance < 0.25
        else "the answers differ from one another"
    )
    return (
        f"Mean distance {distance:.2f} between {n} answers (0 = identical meaning): {words}. Distances depend on "
        "the embedding model: compare runs embedded by the same one."
    )
