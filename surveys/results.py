"""Statistics of a run: per question the distribution, mean and top-2-box with 95% bootstrap intervals,
segments by persona attribute, and the per-respondent drill-down.

Only finished respondents count, and only their usable answers (empty or refused ones are counted
and shown, never rated). Every interval is seeded by the run and the question, so a page, the API
and the exports show the same numbers every time.
"""

import re
from collections import Counter, defaultdict

import numpy as np
from django.core.cache import cache
from django.db.models import Count, Max

from surveys.models import SCALE_POINTS, Answer, AnswerStatus, QuestionKind, Respondent, RespondentState, Run
from surveys.questionnaire import scale_values
from surveys.stats import bootstrap_mean_ci, compare_segments, distribution_ci

RESAMPLES = 2000
TOP_BOX = 2
SEGMENT_ATTRIBUTES = (("age_band", "Age"), ("gender", "Gender"), ("location", "Location"))
AGE_BANDS = ("18–29", "30–44", "45–59", "60+", "Unknown")
OTHERS = "everyone else"
MAX_SEGMENTS = 6
CACHE_SECONDS = 600
FINISHED_CACHE_SECONDS = 30 * 24 * 3600
# Part of the cache key: bump it when what run_results computes changes.
CACHE_VERSION = "v5"


def age_band(age) -> str:
    try:
        age = int(age)
    except (TypeError, ValueError):
        return "Unknown"
    for top, label in ((29, "18–29"), (44, "30–44"), (59, "45–59")):
        if age <= top:
            return label
    return "60+"


def sampled_attributes(profiles) -> list[tuple[str, str]]:
    """The sampled dimensions of a panel's respondents (``core:<key>``, label), in the panel's order, beyond
    those the profile already segments by."""
    covered = {"age", "gender"}
    found: dict[str, str] = {}
    for profile in profiles:
        for item in profile.get("sampled") or []:
            key = str(item.get("key") or "")
            if key and key not in covered and key not in found:
                found[key] = str(item.get("label") or key)
    return [(f"core:{key}", label) for key, label in found.items()]


def segment_of(profile: dict, attribute: str) -> str:
    if attribute.startswith("core:"):
        key = attribute[5:]
        value = next((item.get("value") for item in profile.get("sampled") or [] if item.get("key") == key), "")
        return str(value or "Not stated")
    if attribute == "age_band":
        return age_band(profile.get("age"))
    value = str(profile.get(attribute) or "").strip()
    if attribute == "location":
        value = re.split(r"[,(]", value)[0].strip()  # "Leeds, UK" and "Leeds" are one place
    return value.capitalize() if attribute == "gender" and value else (value or "Not stated")


def _ci(values, seed: int) -> dict | None:
    values = [float(v) for v in values]
    if not values:
        return None
    mean, low, high = bootstrap_mean_ci(values, seed=seed, resamples=RESAMPLES)
    return {"mean": float(mean), "low": float(low), "high": float(high), "n": len(values)}


def _top_box_values(pmfs: np.ndarray, k: int) -> list[float]:
    """Each respondent's probability of answering in the top ``k`` points."""
    return [float(row[-k:].sum()) for row in pmfs]


def _scale_stats(question: dict, answers: list[Answer], seed: int) -> dict:
    values = scale_values(question["kind"])
    rated = [a for a in answers if a.status == AnswerStatus.OK and a.pmf]
    stats: dict = {"points": values, "labels": _point_labels(question), "n": len(rated)}
    if rated:
        pmfs = np.array([a.pmf for a in rated], dtype=float)
        mean_pmf, low, high = distribution_ci(pmfs, seed=seed, resamples=RESAMPLES)
        stats["distribution"] = {
            "mean": [float(x) for x in mean_pmf],
            "low": [float(x) for x in low],
            "high": [float(x) for x in high],
        }
        stats["mean"] = _ci([a.expected for a in rated], seed)
        stats["top_box"] = _ci(_top_box_values(pmfs, TOP_BOX), seed + 1)
    direct = [a.direct for a in answers if a.status == AnswerStatus.OK and a.direct is not None]
    if direct:
        counts = Counter(direct)
        stats["direct"] = {
            "mean": _ci(direct, seed + 2),
            "shares": [counts.get(v, 0) / len(direct) for v in values],
            "top_box": _ci([1.0 if v in values[-TOP_BOX:] else 0.0 for v in direct], seed + 3),
        }
    return stats


def _point_labels(question: dict) -> list[str]:
    values = scale_values(question["kind"])
    labels = question.get("labels") or []
    if len(labels) == len(values):
        return [f"{v} {label}" for v, label in zip(values, labels, strict=True)]
    if len(labels) == 2:
        return [f"{v} {labels[0]}" if i == 0 else f"{v} {labels[1]}" if i == len(values) - 1 else str(v)
                for i, v in enumerate(values)]  # fmt: skip
    return [str(v) for v in values]


def _choice_stats(question: dict, answers: list[Answer], seed: int) -> dict:
    usable = [a for a in answers if a.status == AnswerStatus.OK]
    options = []
    for index, option in enumerate(question["options"]):
        picked = [1.0 if option in a.choices else 0.0 for a in usable]
        options.append({"option": option, "share": _ci(picked, seed + index)})
    return {"n": len(usable), "options": options}


def _segments(question: dict, respondents: dict[int, Respondent], answers: list[Answer], seed: int) -> list[dict]:
    rated = [(a.respondent_id, a.expected) for a in answers if a.status == AnswerStatus.OK and a.expected is not None]
    breakdowns = []
    profiles = [respondent.profile for respondent in respondents.values()]
    for attribute, label in (*SEGMENT_ATTRIBUTES, *sampled_attributes(profiles)):
        groups: dict[str, list[float]] = defaultdict(list)
        for respondent_id, expected in rated:
            groups[segment_of(respondents[respondent_id].profile, attribute)].append(expected)
        if len(groups) < 2:
            continue
        ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
        if len(ordered) > MAX_SEGMENTS:
            rest = [v for _, values in ordered[MAX_SEGMENTS - 1 :] for v in values]
            ordered = [*ordered[: MAX_SEGMENTS - 1], ("Other", rest)]
        if attribute == "age_band":  # youngest first, as people read ages
            ordered.sort(key=lambda item: AGE_BANDS.index(item[0]) if item[0] in AGE_BANDS else len(AGE_BANDS))
        rows = []
        for index, (name, values) in enumerate(ordered):
            others = [v for other, vals in ordered if other != name for v in vals]
            # Of two groups, "everyone else" is the other one: say which.
            rest_label = next(other for other, _ in ordered if other != name) if len(ordered) == 2 else OTHERS
            comparison = (
                compare_segments(values, others, label_a=name, label_b=rest_label)
                if len(values) >= 2 and len(others) >= 2
                else None
            )
            rows.append(
                {
                    "segment": name,
                    "mean": _ci(values, seed + 10 + index),
                    "vs_rest": _plain(comparison) if comparison else None,
                }
            )
        breakdowns.append({"attribute": attribute, "label": label, "rows": rows})
    return breakdowns


def _plain(value):
    """numpy numbers to Python ones, so results go to JSON and templates as they are."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _themes_of(run: Run) -> tuple[dict, dict | None]:
    """The run's stored themes per question id, and what they were found with (None: not yet)."""
    stored = run.themes if isinstance(run.themes, dict) else {}
    if not stored.get("generated_at"):
        return {}, None
    about = {key: stored.get(key) for key in ("generated_at", "model", "simulated")}
    return stored.get("questions") or {}, about


def results_cache_key(run: Run) -> str:
    """The key of the run's results in the cache: what they are computed from, in one query. Answers are
    only ever added (with their respondent turning done), so the number of done respondents, of their
    answers and the newest answer's id change whenever the results would; so do the latest themes' date."""
    state = Respondent.objects.filter(run=run, state=RespondentState.DONE).aggregate(
        done=Count("pk", distinct=True), answer_count=Count("answers"), last_answer=Max("answers__id")
    )
    _themes, themes_about = _themes_of(run)
    stamp = (themes_about or {}).get("generated_at") or "none"
    return (
        f"survey-results:{CACHE_VERSION}:{run.pk}:{state['done']}:{state['answer_count']}:{state['last_answer'] or 0}"
        f":{stamp}"
    )


def _cache_seconds(run: Run) -> int:
    # A finished run's results are computed once (1,000 respondents take seconds) and then read from the
    # cache; while a run goes on, each new answer makes a new key, and the old ones need not stay long.
    job = run.job
    return FINISHED_CACHE_SECONDS if job is None or job.is_terminal else CACHE_SECONDS


def run_results(run: Run) -> dict:
    """Everything the results page, the API and the JSON export show, cached per state of the run."""
    key = results_cache_key(run)
    cached = cache.get(key)
    if cached is not None:
        return cached
    results = compute_results(run)
    cache.set(key, results, _cache_seconds(run))
    return results


def compute_results(run: Run) -> dict:
    """The run's results, computed from its answers (``run_results`` keeps them in the cache)."""
    respondents = {r.pk: r for r in Respondent.objects.filter(run=run, state=RespondentState.DONE)}
    themes, themes_about = _themes_of(run)
    by_question: dict[int, list[Answer]] = defaultdict(list)
    for answer in Answer.objects.filter(respondent_id__in=list(respondents)):
        by_question[answer.question_id].append(answer)
    questions = []
    for question in run.questions:
        answers = by_question.get(question["id"], [])
        seed = run.seed + question["id"]
        entry = {
            "id": question["id"],
            "number": question["number"],
            "kind": question["kind"],
            "kind_label": QuestionKind(question["kind"]).label,
            "text": question["text"],
            "answered": sum(a.status == AnswerStatus.OK for a in answers),
            "empty": sum(a.status == AnswerStatus.EMPTY for a in answers),
            "refused": sum(a.status == AnswerStatus.REFUSED for a in answers),
        }
        if question["kind"] in SCALE_POINTS:
            entry["scale"] = _scale_stats(question, answers, seed)
            entry["segments"] = _segments(question, respondents, answers, seed)
        elif question["kind"] in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
            entry["choice"] = _choice_stats(question, answers, seed)
        else:
            entry["texts"] = [
                {"respondent_id": a.respondent_id, "name": respondents[a.respondent_id].name, "text": a.text}
                for a in answers
                if a.status == AnswerStatus.OK
            ]
            # Per theme: how many of the answers voiced it (counted from the answers the model gave it),
            # its share of them, and quotes checked to be the respondents' own words (surveys/themes.py).
            entry["themes"] = themes.get(str(question["id"]))
        questions.append(entry)
    return _plain(
        {
            "run_id": run.pk,
            "respondents": len(respondents),
            "resamples": RESAMPLES,
            "themes": themes_about,
            "questions": questions,
        }
    )
