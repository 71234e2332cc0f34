"""How close a synthetic panel's answers came to real people's, question by question, against honest baselines.

A raw similarity proves little on its own: a uniform guess already scores 0.62–0.95 KS similarity on real survey
items (../shared/RESEARCH.md, "Two findings"). So every measure is shown beside the same measure for three
answerers computed on the same question (the same number of options k, the same number of answers n as the
synthetic side):

- **uniform**: every option equally likely (the median over ``BASELINE_DRAWS`` seeded draws of n answers);
- **majority**: every answer the humans' most common option;
- **ceiling**: the humans against themselves: random equal halves of the respondents, the median over
  ``repeats`` splits. No panel can be expected to agree with the humans better than they agree with each other.

and the normalised score puts the panel on the line between them: (KS − KS_uniform) ÷ (KS_ceiling − KS_uniform),
0 = no better than guessing uniformly, 1 = as close as a second sample of real people.

Answers are option positions 0..k−1. A ``scale`` question is ordinal: KS, Welch's t, the means and the variance
ratio use the order. A ``choice`` question is categorical: order means nothing, so only the distribution measures
are reported (Jensen-Shannon divergence, total variation distance, and τ_b, which ranks options by their shares
and so needs no order), and its normalised score is taken on 1 − TVD instead of the KS similarity.

Every statistic is scipy's: ``ks_2samp``, ``ttest_ind``, ``kendalltau``, ``jensenshannon``, ``cityblock``.
Everything random takes a seed: the same answers give the same scorecard.
"""

import math
import warnings
from collections.abc import Iterable, Sequence
from statistics import median
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial.distance import cityblock, jensenshannon

from validation.reference import MIN_RESPONDENTS_SPLIT_HALF, ReferenceInputError

BASELINE_DRAWS = 20
SPLIT_HALF_REPEATS = 50
RULE: dict[str, Any] = {"beats_uniform_share": 0.8, "mean_normalised": 0.5, "variance_ratio": (0.7, 1.4)}
# The verdict's mean caps each question's normalised score to −1..1: a question whose ceiling is barely above
# the uniform guess has a tiny denominator, and one such question must not decide the mean alone.
VERDICT_CLIP = (-1.0, 1.0)
ORDINAL_KINDS = frozenset({"scale"})
MEASURES = (
    "ks_similarity",
    "jsd",
    "tvd",
    "welch_t",
    "welch_p",
    "mean_human",
    "mean_synthetic",
    "variance_ratio",
    "tau_b",
)
CATEGORICAL_NOTE = (
    "The options of a choice question have no order, so the KS similarity, Welch's t, the means and the variance "
    "ratio do not apply; it is compared on the share of each option (Jensen-Shannon divergence, total variation "
    "distance and τ_b of the options' ranks), and its normalised score uses 1 − total variation distance."
)


def _answers(values: Iterable[int], k: int | None = None) -> np.ndarray:
    array = np.asarray(list(values), dtype=int)
    if array.ndim != 1:
        raise ValueError("answers must be a flat list of option positions")
    if k is not None and array.size and (array.min() < 0 or array.max() >= k):
        raise ValueError(f"answers must be option positions 0..{k - 1}")
    return array


def _float(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def shares(answers: Iterable[int], k: int) -> list[float]:
    """The share of answers on each of the k options (zeros when there are none)."""
    counts = np.bincount(_answers(answers, k), minlength=k).astype(float)
    total = counts.sum()
    return (counts / total).tolist() if total else counts.tolist()


def ks_similarity(human: Iterable[int], synthetic: Iterable[int], k: int) -> float:
    """1 − the two-sample Kolmogorov-Smirnov statistic (``scipy.stats.ks_2samp``) between the answers.

    Ties: answers are whole option positions, so both empirical CDFs are steps at 0..k−1 and the statistic
    (the largest gap between them, taken at the observed values) is exactly the largest gap between the two
    cumulative option shares. Only the statistic is used (``method="asymp"`` only skips the slow exact p-value;
    any p-value assumes continuous data, so none is reported)."""
    h, s = _answers(human, k), _answers(synthetic, k)
    if not h.size or not s.size:
        raise ValueError("both sides need at least one answer")
    return 1.0 - float(stats.ks_2samp(h, s, method="asymp").statistic)


def js_divergence(p: Sequence[float], q: Sequence[float]) -> float:
    """The Jensen-Shannon *divergence* in bits, 0 (same) .. 1 (disjoint): the square of scipy's
    ``jensenshannon(p, q, base=2)``, which is the distance. p and q are option shares (or counts: scipy
    normalises them)."""
    return float(jensenshannon(np.asarray(p, dtype=float), np.asarray(q, dtype=float), base=2) ** 2)


def total_variation(p: Sequence[float], q: Sequence[float]) -> float:
    """Half the L1 distance (``scipy.spatial.distance.cityblock``) between two share vectors, 0..1: the share
    of answers that would have to move to another option to make the two the same."""
    pa, qa = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    return float(cityblock(pa / pa.sum(), qa / qa.sum()) / 2)


def welch_t(human: Iterable[int], synthetic: Iterable[int]) -> dict:
    """Welch's t-test (``scipy.stats.ttest_ind(synthetic, human, equal_var=False)``): ``t`` is positive when
    the synthetic mean is higher, as is ``mean_difference`` (synthetic − human). t and p are None when
    undefined (both sides without spread, or fewer than two answers)."""
    h, s = _answers(human).astype(float), _answers(synthetic).astype(float)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # Constant samples: scipy warns and returns nan, reported as None.
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.ttest_ind(s, h, equal_var=False)
    return {
        "t": _float(result.statistic),
        "p": _float(result.pvalue),
        "mean_difference": float(s.mean() - h.mean()) if h.size and s.size else None,
    }


def variance_ratio(human: Iterable[int], synthetic: Iterable[int]) -> float | None:
    """var(synthetic) ÷ var(human), both with ddof=1: below 1 the panel agrees with itself more than people do.
    None when the humans' variance is 0 or either side has fewer than two answers."""
    h, s = _answers(human).astype(float), _answers(synthetic).astype(float)
    if h.size < 2 or s.size < 2:
        return None
    human_variance = float(np.var(h, ddof=1))
    return float(np.var(s, ddof=1)) / human_variance if human_variance > 0 else None


def kendall_tau_b(p: Sequence[float], q: Sequence[float]) -> float | None:
    """Kendall's τ_b (``scipy.stats.kendalltau(p, q, variant="b")``) between two option-share vectors: do the
    two sides rank the options the same way by popularity (1), the reverse way (−1)? None when undefined
    (fewer than two options, or every option with the same share on one side)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.kendalltau(np.asarray(p, dtype=float), np.asarray(q, dtype=float), variant="b")
    return _float(result.statistic)


def uniform_answers(k: int, n: int, *, seed) -> list[int]:
    """n answers with every one of the k options equally likely."""
    return np.random.default_rng(seed).integers(0, k, size=n).tolist()


def majority_answers(human: Iterable[int], n: int) -> list[int]:
    """n answers, all the humans' most common option (the lowest one on a tie)."""
    h = _answers(human)
    if not h.size:
        raise ValueError("the humans gave no answers")
    return [int(np.bincount(h).argmax())] * n


def normalised_score(ks: float | None, ks_uniform: float | None, ks_ceiling: float | None) -> float | None:
    """(ks − ks_uniform) ÷ (ks_ceiling − ks_uniform), not clipped: 0 is a uniform guess, 1 the humans' own
    split-half agreement; above 1 is closer than that, below 0 worse than guessing. None when the ceiling is
    not above the uniform guess (nothing to scale by) or a value is missing."""
    if ks is None or ks_uniform is None or ks_ceiling is None or ks_ceiling <= ks_uniform:
        return None
    return (ks - ks_uniform) / (ks_ceiling - ks_uniform)


# ---------------------------------------------------------------------------------------------------------
# The measures, many pairs at once (rows of two arrays): scipy's functions take an axis.


def _shares_rows(rows: np.ndarray, k: int) -> np.ndarray:
    counts = (rows[..., None] == np.arange(k)).sum(axis=1).astype(float)
    return counts / counts.sum(axis=1, keepdims=True)


def _measures_rows(human: np.ndarray, synthetic: np.ndarray, k: int, *, ordinal: bool) -> dict[str, list]:
    """Each measure for each row pair (human[i], synthetic[i]); None where it does not apply or is undefined.
    Row for row the same numbers as ``ks_similarity``, ``js_divergence``, … on one pair."""
    count = human.shape[0]
    p, q = _shares_rows(human, k), _shares_rows(synthetic, k)
    result: dict[str, list] = {name: [None] * count for name in MEASURES}
    result["jsd"] = [js_divergence(a, b) for a, b in zip(p, q, strict=True)]
    result["tvd"] = [total_variation(a, b) for a, b in zip(p, q, strict=True)]
    result["tau_b"] = [kendall_tau_b(a, b) for a, b in zip(p, q, strict=True)]
    if not ordinal:
        return result
    # method="asymp": the statistic is the same whatever the method; only the (unused) p-value differs, and the
    # exact one is slow and warns on tied answers.
    result["ks_similarity"] = (1.0 - stats.ks_2samp(human, synthetic, axis=1, method="asymp").statistic).tolist()
    h, s = human.astype(float), synthetic.astype(float)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        welch = stats.ttest_ind(s, h, axis=1, equal_var=False)
    result["welch_t"] = [_float(v) for v in np.atleast_1d(welch.statistic)]
    result["welch_p"] = [_float(v) for v in np.atleast_1d(welch.pvalue)]
    result["mean_human"] = h.mean(axis=1).tolist()
    result["mean_synthetic"] = s.mean(axis=1).tolist()
    if h.shape[1] >= 2 and s.shape[1] >= 2:
        human_variance = np.var(h, ddof=1, axis=1)
        synthetic_variance = np.var(s, ddof=1, axis=1)
        result["variance_ratio"] = [
            float(sv / hv) if hv > 0 else None for sv, hv in zip(synthetic_variance, human_variance, strict=True)
        ]
    return result


def _median(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return float(median(present)) if present else None


def _medians(rows: dict[str, list]) -> dict[str, float | None]:
    return {name: _median(values) for name, values in rows.items()}


def measures(human: Iterable[int], synthetic: Iterable[int], k: int, *, ordinal: bool = True) -> dict:
    """Every measure between the two sides' answers (see ``MEASURES``); None where it does not apply."""
    h, s = _answers(human, k), _answers(synthetic, k)
    return _medians(_measures_rows(h[None, :], s[None, :], k, ordinal=ordinal))


def uniform_baseline(
    human: Iterable[int], k: int, n: int, *, seed: int, draws: int = BASELINE_DRAWS, ordinal: bool = True
) -> dict:
    """The measures of a uniform answerer giving n answers, the median over ``draws`` seeded draws."""
    h = _answers(human, k)
    seeds = np.random.default_rng([seed, 1]).integers(0, 2**63, size=draws)
    synthetic = np.array([uniform_answers(k, n, seed=int(s)) for s in seeds], dtype=int).reshape(draws, n)
    return _medians(_measures_rows(np.tile(h, (draws, 1)), synthetic, k, ordinal=ordinal))


def split_half(
    human: Iterable[int],
    *,
    seed: int,
    repeats: int = SPLIT_HALF_REPEATS,
    k: int | None = None,
    ordinal: bool = True,
    label: str = "this question",
) -> dict:
    """The ceiling: the median of each measure between two random equal halves of the humans, over ``repeats``
    splits (an odd respondent out sits out that split). k defaults to the highest answer + 1."""
    h = _answers(human, k)
    if h.size < MIN_RESPONDENTS_SPLIT_HALF:
        raise ReferenceInputError(
            f"Too few respondents for a split-half: {h.size} answered “{label}”; "
            f"at least {MIN_RESPONDENTS_SPLIT_HALF} are needed.",
            answered=int(h.size),
            needed=MIN_RESPONDENTS_SPLIT_HALF,
        )
    options = k if k is not None else int(h.max()) + 1
    half = h.size // 2
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.tile(h, (repeats, 1)), axis=1)
    result = _medians(_measures_rows(shuffled[:, :half], shuffled[:, half : 2 * half], options, ordinal=ordinal))
    return {**result, "repeats": repeats, "half_size": half}


# ---------------------------------------------------------------------------------------------------------
# Question cards and the verdict


def _similarity(values: dict | None, ordinal: bool) -> float | None:
    """What the normalised score is taken on: the KS similarity (ordinal), else 1 − TVD."""
    if not values:
        return None
    if ordinal:
        return values.get("ks_similarity")
    tvd = values.get("tvd")
    return None if tvd is None else 1.0 - tvd


def _empty_measures() -> dict:
    return dict.fromkeys(MEASURES)


def question_card(
    label: str,
    kind: str,
    human: Sequence[int | None],
    synthetic: Sequence[int | None],
    k: int,
    *,
    options: Sequence[str],
    seed: int,
) -> dict:
    """One question compared: the shares on each side, the measures, the three baselines (on the same k options
    and as many answers as the synthetic side), the normalised score (raw, and ``normalised_display`` capped to
    0..1 for a bar), and whether the panel beat a uniform guess. Missing answers (None) are left out."""
    if len(options) != k:
        raise ValueError(f"{len(options)} option labels for {k} options")
    ordinal = kind in ORDINAL_KINDS
    h = _answers([v for v in human if v is not None], k)
    s = _answers([v for v in synthetic if v is not None], k)
    notes: list[str] = [] if ordinal else [CATEGORICAL_NOTE]
    card: dict[str, Any] = {
        "label": label,
        "kind": kind,
        "n_human": int(h.size),
        "n_synthetic": int(s.size),
        "options": list(options),
        "human_shares": shares(h.tolist(), k),
        "synthetic_shares": shares(s.tolist(), k),
        "measures": _empty_measures(),
        "baselines": {"uniform": None, "majority": None, "ceiling": None},
        "normalised_on": "ks_similarity" if ordinal else "tvd_similarity",
        "normalised": None,
        "normalised_display": None,
        "beats_uniform": False,
        "notes": notes,
    }
    if not h.size or not s.size:
        side = "real respondents" if not h.size else "synthetic respondents"
        notes.append(f"No {side} answered “{label}”, so it cannot be compared.")
        return card
    card["measures"] = measures(h, s, k, ordinal=ordinal)
    uniform = uniform_baseline(h, k, s.size, seed=seed, ordinal=ordinal)
    majority = measures(h, majority_answers(h, s.size), k, ordinal=ordinal)
    try:
        ceiling: dict | None = split_half(h, seed=seed, k=k, ordinal=ordinal, label=label)
    except ReferenceInputError as exc:
        ceiling = None
        notes.append(exc.message)
    card["baselines"] = {
        "uniform": {**uniform, "n": int(s.size), "k": k},
        "majority": {**majority, "n": int(s.size), "k": k},
        "ceiling": ceiling,
    }
    ours, guess = _similarity(card["measures"], ordinal), _similarity(uniform, ordinal)
    score = normalised_score(ours, guess, _similarity(ceiling, ordinal))
    card["normalised"] = score
    card["normalised_display"] = None if score is None else min(1.0, max(0.0, score))
    card["beats_uniform"] = ours is not None and guess is not None and ours > guess
    if ceiling is not None and score is None:
        notes.append(
            f"The real respondents agree with each other no better than a uniform guess agrees with them on "
            f"“{label}”, so there is no room to score the panel on it."
        )
    return card


def subgroup_cards(
    label: str,
    kind: str,
    human_rows: Iterable[tuple[str, int | None]],
    synthetic_rows: Iterable[tuple[str, int | None]],
    k: int,
    *,
    options: Sequence[str],
    dimension: str,
    seed: int,
    min_n: int = 10,
) -> list[dict]:
    """The question compared within each value of one demographic (rows are (that respondent's value, answer)).
    A value with at least ``min_n`` answers on both sides gets a full card (with ``dimension``, ``value``,
    ``too_small``: False); the others are listed with their counts and ``too_small``: True. Largest groups first."""
    human_by: dict[str, list[int]] = {}
    synthetic_by: dict[str, list[int]] = {}
    for grouped, rows in ((human_by, human_rows), (synthetic_by, synthetic_rows)):
        for value, answer in rows:
            grouped.setdefault(str(value), [])
            if answer is not None:
                grouped[str(value)].append(answer)
    values = sorted(set(human_by) | set(synthetic_by))
    cards: list[dict[str, Any]] = []
    small: list[dict[str, Any]] = []
    for index, value in enumerate(values):
        h, s = human_by.get(value, []), synthetic_by.get(value, [])
        if len(h) >= min_n and len(s) >= min_n:
            sub_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
            card = question_card(label, kind, h, s, k, options=options, seed=sub_seed)
            cards.append({**card, "dimension": dimension, "value": value, "too_small": False})
        else:
            small.append(
                {
                    "label": label,
                    "dimension": dimension,
                    "value": value,
                    "n_human": len(h),
                    "n_synthetic": len(s),
                    "too_small": True,
                    "notes": [
                        f"Too few to compare: {len(h)} real and {len(s)} synthetic respondents answered; "
                        f"at least {min_n} on each side are needed."
                    ],
                }
            )
    cards.sort(key=lambda c: (-c["n_human"], c["value"]))
    small.sort(key=lambda c: (-c["n_human"], c["value"]))
    return cards + small


def _weakness(card: dict) -> str:
    if not card["beats_uniform"]:
        return f"“{card['label']}” (no better than a uniform guess)"
    if card["normalised"] is None:
        return f"“{card['label']}” (no ceiling to score against)"
    return f"“{card['label']}” (normalised score {card['normalised']:.2f})"


def verdict(cards: list[dict]) -> dict:
    """The overall verdict by the stated ``RULE``: the panel beats a uniform guess on at least 80% of the
    questions, its mean normalised score (each capped to −1..1) is at least 0.5, and the median variance ratio
    of the rating-scale questions is within 0.7–1.4. Each check with its value; a summary in plain words naming
    the weakest questions."""
    cards = [c for c in cards if not c.get("too_small")]
    low, high = RULE["variance_ratio"]
    if not cards:
        return {
            "passed": False,
            "rule": _rule_json(),
            "checks": [],
            "summary": "No questions were compared, so there is nothing to judge yet.",
        }
    total = len(cards)
    beating = sum(1 for c in cards if c["beats_uniform"])
    beats_share = beating / total
    scores = [c["normalised"] for c in cards if c["normalised"] is not None]
    mean_score = (
        float(np.mean(np.clip(scores, *VERDICT_CLIP))) if scores else None  # capped: see VERDICT_CLIP
    )
    ratios = [
        c["measures"]["variance_ratio"]
        for c in cards
        if c["kind"] in ORDINAL_KINDS and c["measures"]["variance_ratio"] is not None
    ]
    median_ratio = _median(ratios)
    spread_ok = median_ratio is None or low <= median_ratio <= high
    checks = [
        {
            "label": f"Beats a uniform guess on at least {RULE['beats_uniform_share']:.0%} of questions",
            "value": f"{beating} of {total} ({beats_share:.0%})",
            "passed": beats_share >= RULE["beats_uniform_share"],
        },
        {
            "label": f"Mean normalised score at least {RULE['mean_normalised']}",
            "value": (
                f"{mean_score:.2f} (over {len(scores)} question{'s' if len(scores) != 1 else ''})"
                if mean_score is not None
                else "No question could be scored (too few real respondents for a ceiling)"
            ),
            "passed": mean_score is not None and mean_score >= RULE["mean_normalised"],
        },
        {
            "label": f"Answers as spread out as the humans' (variance ratio {low}–{high})",
            "value": (
                f"median {median_ratio:.2f} over {len(ratios)} rating question{'s' if len(ratios) != 1 else ''}"
                if median_ratio is not None
                else "Not applicable: no rating-scale question with a spread to compare"
            ),
            "passed": spread_ok,
        },
    ]
    passed = all(check["passed"] for check in checks)
    ranked = sorted(
        cards,
        key=lambda c: (c["beats_uniform"], c["normalised"] is not None, c["normalised"] or 0.0, c["label"]),
    )
    reasons = []
    if not checks[0]["passed"]:
        reasons.append(f"it beats a uniform guess on only {beating} of {total} questions")
    if not checks[1]["passed"]:
        reasons.append(
            f"its mean normalised score is {mean_score:.2f} (0 is a uniform guess, 1 the humans' own agreement)"
            if mean_score is not None
            else "no question could be scored against the humans' own agreement"
        )
    if not spread_ok and median_ratio is not None:
        reasons.append(
            f"its answers are {'less' if median_ratio < low else 'more'} spread out than the humans' "
            f"(median variance ratio {median_ratio:.2f})"
        )
    if passed:
        summary = (
            f"Close to the human answers: the panel beats a uniform guess on {beating} of {total} questions, "
            f"with a mean normalised score of {mean_score:.2f}"
            + (f" and a median variance ratio of {median_ratio:.2f}" if median_ratio is not None else "")
            + "."
        )
        weakest = [c for c in ranked if not c["beats_uniform"] or (c["normalised"] or 0.0) < RULE["mean_normalised"]]
        if weakest:
            summary += " Least close: " + ", ".join(_weakness(c) for c in weakest[:3]) + "."
    else:
        weakest = [c for c in ranked if not c["beats_uniform"]] or ranked
        summary = (
            "Not yet trustworthy for these questions: "
            + ", ".join(_weakness(c) for c in weakest[:3])
            + (f" and {len(weakest) - 3} more" if len(weakest) > 3 else "")
            + ". Overall, "
            + "; ".join(reasons)
            + "."
        )
    return {"passed": passed, "rule": _rule_json(), "checks": checks, "summary": summary}


def _rule_json() -> dict:
    low, high = RULE["variance_ratio"]
    return {
        "beats_uniform_share": RULE["beats_uniform_share"],
        "mean_normalised": RULE["mean_normalised"],
        "variance_ratio": [low, high],
    }
