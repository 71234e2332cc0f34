"""Matching the panel's open-answer themes with the real respondents': one-to-one by embedding similarity,
with precision, recall and F1, and the unmatched themes on each side listed."""

import numpy as np
import pytest

from validation.themes_match import match_themes

# Fake embeddings: each theme a fixed direction. Orthogonal directions are unrelated themes; "Prices too
# high" and "Too expensive" are close (cosine 0.95); "Hard to find in shops" is half-way to "Delivery slow".
VECTORS = {
    "Prices too high": [1.0, 0.0, 0.0, 0.0, 0.0],
    "Too expensive": [0.95, np.sqrt(1 - 0.95**2), 0.0, 0.0, 0.0],
    "Tastes great": [0.0, 0.0, 1.0, 0.0, 0.0],
    "Delicious flavour": [0.0, 0.0, 0.9, np.sqrt(1 - 0.81), 0.0],
    "Delivery slow": [0.0, 0.0, 0.0, 0.0, 1.0],
    "Hard to find in shops": [0.0, 0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5)],
    "Packaging wasteful": [0.0, 1.0, 0.0, 0.0, 0.0],
}


def fake_embed(texts: list[str]) -> np.ndarray:
    fake_embed.calls.append(list(texts))
    return np.array([VECTORS[t] for t in texts]) * 3.0  # not unit length: the matcher normalises


fake_embed.calls = []  # type: ignore[attr-defined]


def test_identical_lists_match_fully():
    themes = ["Prices too high", "Tastes great", "Delivery slow"]
    result = match_themes(themes, list(reversed(themes)), fake_embed)
    assert (result["precision"], result["recall"], result["f1"]) == (1.0, 1.0, 1.0)
    assert {(p["human"], p["synthetic"]) for p in result["pairs"]} == {(t, t) for t in themes}
    assert all(p["similarity"] == pytest.approx(1.0) for p in result["pairs"])
    assert result["unmatched_human"] == result["unmatched_synthetic"] == []


def test_unrelated_themes_do_not_match():
    result = match_themes(["Prices too high", "Tastes great"], ["Delivery slow", "Packaging wasteful"], fake_embed)
    assert (result["precision"], result["recall"], result["f1"]) == (0.0, 0.0, 0.0)
    assert result["pairs"] == []
    assert result["unmatched_human"] == ["Prices too high", "Tastes great"]
    assert result["unmatched_synthetic"] == ["Delivery slow", "Packaging wasteful"]


def test_partial_overlap_gives_precision_recall_and_f1():
    human = ["Prices too high", "Tastes great", "Delivery slow"]
    synthetic = ["Too expensive", "Delicious flavour", "Packaging wasteful", "Hard to find in shops"]
    result = match_themes(human, synthetic, fake_embed, threshold=0.8)
    assert [(p["human"], p["synthetic"]) for p in result["pairs"]] == [
        ("Prices too high", "Too expensive"),  # 0.95
        ("Tastes great", "Delicious flavour"),  # 0.90
    ]
    assert result["pairs"][0]["similarity"] == pytest.approx(0.95, abs=1e-4)
    assert result["precision"] == pytest.approx(2 / 4)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    # "Hard to find in shops" is 0.71 alike to "Delivery slow": under the threshold, so not a match…
    assert result["unmatched_human"] == ["Delivery slow"]
    assert result["unmatched_synthetic"] == ["Packaging wasteful", "Hard to find in shops"]
    # …but it is one with a lower threshold.
    looser = match_themes(human, synthetic, fake_embed, threshold=0.7)
    assert ("Delivery slow", "Hard to find in shops") in {(p["human"], p["synthetic"]) for p in looser["pairs"]}
    assert looser["recall"] == pytest.approx(1.0)


def test_matching_is_one_to_one():
    # Both human themes are close to the one synthetic theme: only one of them can have it.
    result = match_themes(["Prices too high", "Too expensive"], ["Prices too high"], fake_embed)
    assert len(result["pairs"]) == 1
    assert result["pairs"][0]["human"] == "Prices too high"
    assert result["unmatched_human"] == ["Too expensive"]
    assert (result["precision"], result["recall"]) == (1.0, 0.5)


def _embedding_with(similarity: np.ndarray, human_overlap: float, synthetic_overlap: float):
    """An embed function whose vectors for h1, h2, s1, s2 have exactly these cosines (built from their Gram
    matrix)."""
    within_human = np.array([[1.0, human_overlap], [human_overlap, 1.0]])
    within_synthetic = np.array([[1.0, synthetic_overlap], [synthetic_overlap, 1.0]])
    gram = np.block([[within_human, similarity], [similarity.T, within_synthetic]])
    values, vectors = np.linalg.eigh(gram)
    assert values.min() > 0  # a real set of vectors has these cosines
    points = dict(zip(["h1", "h2", "s1", "s2"], vectors * np.sqrt(values), strict=True))
    return lambda texts: np.array([points[t] for t in texts])


def test_the_assignment_makes_the_most_matches_not_the_single_best_one():
    # h1–s1 is the best pair (0.99), but taking it leaves h2 with s2 (0.75, under the threshold): one match.
    # Pairing h1–s2 and h2–s1 (0.82 each) makes two. A greedy pass, and an assignment on the raw similarity
    # (0.99 + 0.75 > 0.82 + 0.82), would both keep one.
    similarity = np.array([[0.99, 0.82], [0.82, 0.75]])
    result = match_themes(["h1", "h2"], ["s1", "s2"], _embedding_with(similarity, 0.8, 0.8), threshold=0.8)
    assert {(p["human"], p["synthetic"]) for p in result["pairs"]} == {("h1", "s2"), ("h2", "s1")}
    assert [p["similarity"] for p in result["pairs"]] == pytest.approx([0.82, 0.82], abs=1e-4)
    assert result["f1"] == 1.0


def test_blank_and_repeated_themes_are_dropped_and_one_embedding_call_is_made():
    fake_embed.calls.clear()  # type: ignore[attr-defined]
    result = match_themes(["Tastes great", " ", "tastes  great"], ["Tastes great"], fake_embed)
    assert fake_embed.calls == [["Tastes great", "Tastes great"]]  # type: ignore[attr-defined]
    assert result["f1"] == 1.0


def test_no_themes_on_a_side():
    result = match_themes([], ["Tastes great"], fake_embed)
    assert (result["precision"], result["recall"], result["f1"]) == (0.0, 0.0, 0.0)
    assert result["unmatched_synthetic"] == ["Tastes great"]


def test_a_wrong_number_of_embeddings_is_an_error():
    with pytest.raises(ValueError):
        match_themes(["a"], ["b"], lambda texts: np.zeros((1, 3)))
