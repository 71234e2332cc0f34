"""Do the synthetic panel's open-answer themes match the real respondents'? Each side's themes are embedded,
paired one to one by cosine similarity, and a pair counts only when it is at least ``threshold`` alike.

precision = matched ÷ synthetic themes (how many of the panel's themes real people also raised),
recall = matched ÷ human themes (how many of the real themes the panel found), F1 their harmonic mean.

The pairing is an optimal assignment (``scipy.optimize.linear_sum_assignment``), not first-come greedy: it
makes as many pairs above the threshold as possible and, among those, the most similar ones. (Assigning on the
raw similarity alone could trade two good pairs for one excellent pair plus one under the threshold.)
"""

from collections.abc import Callable

import numpy as np
from scipy.optimize import linear_sum_assignment

DEFAULT_THRESHOLD = 0.8


def _clean(themes: list[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for theme in themes:
        text = " ".join(str(theme).split())
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            kept.append(text)
    return kept


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def match_themes(
    human_themes: list[str],
    synthetic_themes: list[str],
    embed: Callable[[list[str]], np.ndarray],
    *,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict:
    """``{"precision", "recall", "f1", "threshold", "pairs": [{"human", "synthetic", "similarity"}],
    "unmatched_human", "unmatched_synthetic"}``. ``embed`` turns texts into one vector per text (one call for
    both sides); rows are normalised here too, so any embedding works. Blank and repeated themes are dropped.
    With no themes on a side, its ratio is 0."""
    human, synthetic = _clean(human_themes), _clean(synthetic_themes)
    pairs: list[dict] = []
    if human and synthetic:
        vectors = np.asarray(embed(human + synthetic), dtype=float)
        if vectors.ndim != 2 or vectors.shape[0] != len(human) + len(synthetic):
            raise ValueError(f"embed returned {vectors.shape} for {len(human) + len(synthetic)} texts")
        vectors = _unit_rows(vectors)
        similarity = vectors[: len(human)] @ vectors[len(human) :].T
        above = similarity >= threshold
        # A pair above the threshold is worth a bonus + its similarity, one under it nothing. With the bonus at
        # least the largest possible number of pairs, c pairs always outweigh c - 1: the most pairs first, then
        # the most alike.
        bonus = float(min(len(human), len(synthetic)))
        rows, columns = linear_sum_assignment(np.where(above, bonus + similarity, 0.0), maximize=True)
        pairs = [
            {"human": human[r], "synthetic": synthetic[c], "similarity": round(float(similarity[r, c]), 4)}
            for r, c in zip(rows, columns, strict=True)
            if above[r, c]
        ]
        pairs.sort(key=lambda pair: -pair["similarity"])
    matched_human = {pair["human"] for pair in pairs}
    matched_synthetic = {pair["synthetic"] for pair in pairs}
    precision = _ratio(len(pairs), len(synthetic))
    recall = _ratio(len(pairs), len(human))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "threshold": threshold,
        "pairs": pairs,
        "unmatched_human": [t for t in human if t not in matched_human],
        "unmatched_synthetic": [t for t in synthetic if t not in matched_synthetic],
    }
