"""Survey statistics: intervals by resampling respondents, and comparing two segments.

Everything random takes a seed (a numpy ``Generator``), so the same panel gives the same numbers every time.
The tests come from scipy (``scipy.stats.bootstrap``, ``ttest_ind``, ``mannwhitneyu``), not hand-written.
Intervals resample whole respondents: a respondent's answers are not independent of each other, the
respondents are (as far as a panel can make them).
"""

import math
import warnings

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

DEFAULT_RESAMPLES = 2000  # production default; the coverage test uses fewer per simulated panel to stay quick
DEFAULT_LEVEL = 0.95


def _bootstrap_mean(
    sample: np.ndarray, *, seed: int, resamples: int, level: float, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the mean along axis 0 (each column its own interval, the same resampled respondents)."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        # A column where every respondent has the same value has no spread to resample; handled below.
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            (sample,),
            np.mean,
            n_resamples=resamples,
            confidence_level=level,
            method=method,
            axis=0,
            rng=np.random.default_rng(seed),
        )
    low = np.atleast_1d(np.asarray(result.confidence_interval.low, dtype=float)).copy()
    high = np.atleast_1d(np.asarray(result.confidence_interval.high, dtype=float)).copy()
    broken = ~(np.isfinite(low) & np.isfinite(high))
    if np.any(broken):
        # BCa is undefined where the resamples do not vary (or vary too little for its acceleration): the
        # percentile interval of the same resamples is the honest answer there, a point when they are constant.
        distribution = np.asarray(result.bootstrap_distribution, dtype=float).reshape(-1, resamples)
        tail = (1 - level) / 2 * 100
        low[broken] = np.percentile(distribution[broken], tail, axis=-1)
        high[broken] = np.percentile(distribution[broken], 100 - tail, axis=-1)
    return low, high


def bootstrap_mean_ci(
    per_respondent_values: np.ndarray,
    *,
    seed: int,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    method: str = "BCa",
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of one value per respondent (e.g. each one's expected rating) and its
    ``level`` bootstrap interval, resampling respondents (BCa by default; ``method="percentile"`` also works).
    One respondent has no interval: (value, nan, nan)."""
    values = np.asarray(per_respondent_values, dtype=float).ravel()
    if values.size == 0:
        raise ValueError("no respondents")
    if not np.all(np.isfinite(values)):
        raise ValueError("a respondent's value is not finite")
    mean = float(values.mean())
    if values.size == 1:
        return mean, math.nan, math.nan
    low, high = _bootstrap_mean(values, seed=seed, resamples=resamples, level=level, method=method)
    return mean, float(low[0]), float(high[0])


def distribution_ci(
    pmfs: np.ndarray,
    *,
    seed: int,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    method: str = "BCa",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean_pmf, low, high), each with one number per scale point: the survey's distribution (the mean of its
    respondents' pmfs) and a bootstrap interval for each point's share, resampling respondents."""
    matrix = _pmf_matrix(pmfs)
    mean = matrix.mean(axis=0)
    if len(matrix) == 1:
        return mean, np.full_like(mean, math.nan), np.full_like(mean, math.nan)
    low, high = _bootstrap_mean(matrix, seed=seed, resamples=resamples, level=level, method=method)
    return mean, low, high


def top_box(
    pmfs: np.ndarray,
    k: int = 2,
    *,
    seed: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    method: str = "BCa",
) -> tuple[float, float, float]:
    """(share, low, high): the expected share of respondents in the top ``k`` points (top-2 box: "agree" plus
    "strongly agree"), with its bootstrap interval over respondents."""
    matrix = _pmf_matrix(pmfs)
    if not 1 <= k <= matrix.shape[1]:
        raise ValueError(f"k must be between 1 and the {matrix.shape[1]} scale points")
    return bootstrap_mean_ci(matrix[:, -k:].sum(axis=1), seed=seed, resamples=resamples, level=level, method=method)


def _pmf_matrix(pmfs: np.ndarray) -> np.ndarray:
    matrix = np.asarray(pmfs, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] < 2:
        raise ValueError("pmfs must be one row per respondent, one column per scale point")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("a pmf has a number that is not finite")
    return matrix


def format_p(p: float) -> str:
    """A p-value as people read it: "p = 0.41", "p = 0.003", "p < 0.001"."""
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def effect_word(d: float) -> str:
    size = abs(d)
    # Cohen's conventional thresholds.
    if size < 0.2:
        return "a negligible"
    if size < 0.5:
        return "a small"
    if size < 0.8:
        return "a medium"
    return "a large"


def compare_segments(
    values_a: ArrayLike,
    values_b: ArrayLike,
    *,
    label_a: str = "Segment A",
    label_b: str = "Segment B",
    alpha: float = 0.05,
) -> dict:
    """Compare one value per respondent (e.g. expected ratings) between two segments.

    Welch's t test (means, unequal variances) decides the verdict; the Mann-Whitney U test (ranks) is reported
    beside it, and the verdict says when it disagrees. Effect sizes: Cohen's d (difference over the root mean
    of the two variances) and the rank-biserial correlation (P(a > b) − P(a < b)).
    """
    a = np.asarray(values_a, dtype=float).ravel()
    b = np.asarray(values_b, dtype=float).ravel()
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("a respondent's value is not finite")
    result: dict = {
        "label_a": label_a,
        "label_b": label_b,
        "n_a": int(a.size),
        "n_b": int(b.size),
        "mean_a": float(a.mean()) if a.size else math.nan,
        "mean_b": float(b.mean()) if b.size else math.nan,
        "difference": math.nan,
        "welch_t": math.nan,
        "welch_p": math.nan,
        "mann_whitney_u": math.nan,
        "mann_whitney_p": math.nan,
        "cohens_d": math.nan,
        "rank_biserial": math.nan,
        "significant": False,
    }
    if a.size < 2 or b.size < 2:
        result["verdict"] = "Too few respondents to compare: each segment needs at least 2."
        return result
    result["difference"] = result["mean_a"] - result["mean_b"]
    spread = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    if spread == 0:
        same = result["difference"] == 0
        result["cohens_d"] = 0.0 if same else math.copysign(math.inf, result["difference"])
        result["verdict"] = (
            "No difference: every respondent in both segments gave the same value."
            if same
            else f"{label_a if result['difference'] > 0 else label_b} rates higher, and every respondent within "
            "each segment gave the same value, so no test applies."
        )
        result["significant"] = not same
        return result
    welch = stats.ttest_ind(a, b, equal_var=False)
    ranks = stats.mannwhitneyu(a, b, alternative="two-sided")
    result.update(
        welch_t=float(welch.statistic),
        welch_p=float(welch.pvalue),
        mann_whitney_u=float(ranks.statistic),
        mann_whitney_p=float(ranks.pvalue),
        cohens_d=result["difference"] / spread,
        rank_biserial=2 * float(ranks.statistic) / (a.size * b.size) - 1,
        significant=bool(welch.pvalue < alpha),
    )
    if result["significant"]:
        a_higher = result["difference"] > 0
        higher, lower = (label_a, label_b) if a_higher else (label_b, label_a)
        high_mean, low_mean = (result["mean_a"], result["mean_b"]) if a_higher else (result["mean_b"], result["mean_a"])
        verdict = (
            f"{higher} rates higher than {lower} ({high_mean:.2f} vs {low_mean:.2f}, "
            f"{effect_word(result['cohens_d'])} difference, {format_p(result['welch_p'])})."
        )
    else:
        verdict = f"No clear difference ({format_p(result['welch_p'])})."
    if (ranks.pvalue < alpha) != result["significant"]:
        verdict += f" The rank test disagrees ({format_p(result['mann_whitney_p'])}): look at the distributions."
    result["verdict"] = verdict
    return result
