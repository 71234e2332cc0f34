"""Cohen's κ between two runs of the same item (test-retest), with its reading.

κ comes from ``statsmodels.stats.inter_rater.cohens_kappa`` on the contingency table of the two runs'
answers over every category of the item (points never used still count for the weights): quadratic weights
for a scale (a 4 against a 5 is a small disagreement, a 1 against a 5 a large one), unweighted for a single
choice. Its 95% interval is κ ± 1.96 × the asymptotic standard error statsmodels gives.

When every answer in both runs falls in one category, chance agreement is 1 and κ is undefined (0/0): that
is reported as such, with the raw agreement, never as a number.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from statsmodels.stats.inter_rater import cohens_kappa

# Landis & Koch (1977): how a κ reads. Below 0: agreement worse than chance.
READINGS = ((0.0, "poor"), (0.20, "slight"), (0.40, "fair"), (0.60, "moderate"), (0.80, "substantial"))
TOP_READING = "almost perfect"


def reading(kappa: float) -> str:
    """Landis–Koch words for a κ: poor (< 0), slight, fair, moderate, substantial, almost perfect (> 0.80)."""
    if kappa < 0:
        return "poor"
    for upper, word in READINGS[1:]:
        if kappa <= upper:
            return word
    return TOP_READING


@dataclass(frozen=True)
class Kappa:
    kappa: float | None  # None: undefined (everyone in one category in both runs)
    low: float | None
    high: float | None
    agreement: float  # the raw share of respondents who gave the same answer both times
    n: int
    weights: str  # "quadratic" or "none"

    def as_dict(self) -> dict:
        return {
            "kappa": self.kappa,
            "low": self.low,
            "high": self.high,
            "agreement": self.agreement,
            "n": self.n,
            "weights": self.weights,
            "reading": reading(self.kappa) if self.kappa is not None else None,
        }


def table(first: Sequence, second: Sequence, categories: Sequence) -> np.ndarray:
    """The contingency table: rows the first run's answer, columns the second's, over ``categories``."""
    index = {category: i for i, category in enumerate(categories)}
    counts = np.zeros((len(categories), len(categories)), dtype=float)
    for a, b in zip(first, second, strict=True):
        counts[index[a], index[b]] += 1
    return counts


def cohen_kappa(first: Sequence, second: Sequence, categories: Sequence, *, weighted: bool) -> Kappa:
    """κ of paired answers (``first[i]`` and ``second[i]`` are one respondent's) over ``categories`` (in scale
    order when ``weighted``). Needs at least one pair; every answer must be one of ``categories``."""
    if not first or len(first) != len(second):
        raise ValueError("κ needs the same number of answers (at least one) from each run")
    counts = table(first, second, categories)
    n = int(counts.sum())
    agreement = float(np.trace(counts) / n)
    weights = "quadratic" if weighted else "none"
    # Chance agreement of 1 (one category used by everyone, both times): κ is 0/0.
    rows, cols = counts.sum(axis=1) / n, counts.sum(axis=0) / n
    if np.count_nonzero(rows) == 1 and np.count_nonzero(cols) == 1 and np.argmax(rows) == np.argmax(cols):
        return Kappa(None, None, None, agreement, n, weights)
    result = cohens_kappa(counts, wt="quadratic" if weighted else None)
    kappa = float(result.kappa)
    if not math.isfinite(kappa):
        return Kappa(None, None, None, agreement, n, weights)
    se = float(result.std_kappa)
    low: float | None
    high: float | None
    if math.isfinite(se):
        low, high = max(-1.0, kappa - 1.96 * se), min(1.0, kappa + 1.96 * se)
    else:
        low = high = None
    return Kappa(kappa, low, high, agreement, n, weights)
