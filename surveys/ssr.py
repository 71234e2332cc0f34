"""Semantic-similarity rating (SSR): a free-text answer becomes a probability over a scale's points.

Following Maier et al. 2025 (arXiv 2510.08338) and pymc-labs/semantic-similarity-rating
(``compute.py::response_embeddings_to_pmf``), for each answer and each set of anchor sentences (one per scale
point, "I would definitely not buy it" … "I would definitely buy it"):

1. similarity to each anchor, ``(1 + cos) / 2``;
2. minus the answer's lowest similarity over the scale's points, so the least similar point gets 0;
3. normalised to sum to 1 (``epsilon`` is added at that minimum, so a row is never all zero);

then the pmfs of the anchor sets are averaged, and a temperature sharpens or flattens the result as
``p ** (1 / T)``, renormalised (not a softmax). A survey's distribution is the mean of its respondents' pmfs.

Skipping step 2 (normalising the raw cosines) is a known broken variant: embeddings of short sentences are all
fairly similar, so every answer comes out near the middle of the scale (≈ 3.0 of 5; tests/surveys/test_ssr.py
shows it). Anchor wording is plain and natural (Vera Pichardo 2026, arXiv 2602.13862: natural wording beats
formal by 29 points), with several sets per scale so no single phrasing decides.
"""

import hashlib
import json
import threading
from collections import OrderedDict

import numpy as np
from django.conf import settings

from llm.gateway import embed, embedding_model_name

FEATURE = "survey_rating"
# Bump when DEFAULT_ANCHOR_SETS change: stored with results, so a rating can be traced to its anchors.
ANCHOR_SETS_VERSION = "2026-12-06"

DEFAULT_ANCHOR_SETS: dict[str, list[list[str]]] = {
    "likert5_agreement": [
        ["I strongly disagree", "I disagree", "I neither agree nor disagree", "I agree", "I strongly agree"],
        [
            "I completely disagree with that",
            "I don't really agree with that",
            "I'm in two minds about that",
            "I mostly agree with that",
            "I completely agree with that",
        ],
        [
            "No, that's not true at all",
            "No, not really",
            "Partly, it's hard to say",
            "Yes, mostly",
            "Yes, absolutely, that's exactly right",
        ],
    ],
    "likert7_agreement": [
        [
            "I strongly disagree",
            "I disagree",
            "I somewhat disagree",
            "I neither agree nor disagree",
            "I somewhat agree",
            "I agree",
            "I strongly agree",
        ],
        [
            "I completely disagree with that",
            "I mostly disagree with that",
            "I slightly disagree with that",
            "I'm in two minds about that",
            "I slightly agree with that",
            "I mostly agree with that",
            "I completely agree with that",
        ],
        [
            "No, that's not true at all",
            "No, that's not really true",
            "Not quite, I'd lean against that",
            "It's hard to say either way",
            "I'd lean towards yes",
            "Yes, that's true",
            "Yes, absolutely, that's exactly right",
        ],
    ],
    "purchase_intent5": [
        [
            "I would definitely not buy it",
            "I probably would not buy it",
            "I might or might not buy it",
            "I would probably buy it",
            "I would definitely buy it",
        ],
        [
            "There's no way I'd buy this",
            "I doubt I'd buy it",
            "I'm not sure whether I'd buy it or not",
            "I'd likely buy it",
            "I'd buy it for sure",
        ],
        [
            "It's not for me, I wouldn't get it",
            "Probably not, I'm not really interested",
            "Maybe, it depends",
            "I'm quite keen, I'd probably get it",
            "I love it, I'd get it straight away",
        ],
        [
            "No, I wouldn't buy it",
            "I'm unlikely to buy it",
            "I could go either way on buying it",
            "I'm likely to buy it",
            "Yes, I'd definitely buy it",
        ],
    ],
    "satisfaction5": [
        [
            "I'm very dissatisfied",
            "I'm somewhat dissatisfied",
            "I'm neither satisfied nor dissatisfied",
            "I'm fairly satisfied",
            "I'm very satisfied",
        ],
        [
            "I'm really unhappy with it",
            "I'm not very happy with it",
            "It's okay, nothing special",
            "I'm happy with it",
            "I'm delighted with it",
        ],
        ["It's terrible", "It's disappointing", "It's alright", "It's good", "It's excellent"],
    ],
    "likelihood5": [
        ["I definitely won't", "I probably won't", "I might or might not", "I probably will", "I definitely will"],
        [
            "There's almost no chance of that",
            "That's unlikely",
            "It's fifty-fifty",
            "That's likely",
            "That's very likely, almost certain",
        ],
        [
            "No, I can't see that happening",
            "I doubt it",
            "Maybe, I'm not sure",
            "I expect so",
            "Yes, I'm sure I will",
        ],
    ],
    "nps11": [
        [
            "I would never recommend it to anyone",
            "I would almost certainly not recommend it",
            "I would very likely not recommend it",
            "I probably would not recommend it",
            "I doubt I would recommend it",
            "I might or might not recommend it",
            "I might recommend it",
            "I would probably recommend it",
            "I would very likely recommend it",
            "I would almost certainly recommend it",
            "I would definitely recommend it to everyone",
        ],
        [
            "I'd tell people to stay away from it",
            "I'd warn friends off it",
            "I'd advise against it",
            "I wouldn't suggest it",
            "I wouldn't really mention it",
            "I wouldn't mind mentioning it, it's fine",
            "I'd mention it if someone asked",
            "I'd suggest it to some friends",
            "I'd recommend it to friends",
            "I'd happily recommend it to anyone",
            "I'd enthusiastically recommend it to everyone I know",
        ],
    ],
}

SCALE_VALUES: dict[str, list[int]] = {
    "likert5_agreement": [1, 2, 3, 4, 5],
    "likert7_agreement": [1, 2, 3, 4, 5, 6, 7],
    "purchase_intent5": [1, 2, 3, 4, 5],
    "satisfaction5": [1, 2, 3, 4, 5],
    "likelihood5": [1, 2, 3, 4, 5],
    "nps11": list(range(11)),
}

# What each point is called on pages and in exports.
SCALE_LABELS: dict[str, list[str]] = {
    "likert5_agreement": ["Strongly disagree", "Disagree", "Neither", "Agree", "Strongly agree"],
    "likert7_agreement": [
        "Strongly disagree",
        "Disagree",
        "Somewhat disagree",
        "Neither",
        "Somewhat agree",
        "Agree",
        "Strongly agree",
    ],
    "purchase_intent5": [
        "Definitely would not buy",
        "Probably would not buy",
        "Might or might not buy",
        "Probably would buy",
        "Definitely would buy",
    ],
    "satisfaction5": ["Very dissatisfied", "Dissatisfied", "Neither", "Satisfied", "Very satisfied"],
    "likelihood5": ["Very unlikely", "Unlikely", "Fifty-fifty", "Likely", "Very likely"],
    "nps11": [str(n) for n in range(11)],
}


def response_pmf(
    answer_embeddings: np.ndarray,
    anchor_sets: list[np.ndarray],
    *,
    temperature: float = 1.0,
    epsilon: float = 0.0,
) -> np.ndarray:
    """Each answer's probability over the scale's points, shape (n_answers, n_points); rows sum to 1.

    ``anchor_sets``: one (n_points, dim) array per set of anchor sentences, every set the same scale.
    ``temperature`` 1 leaves the pmf as measured, < 1 sharpens it, > 1 flattens it, 0 puts all of it on the
    most similar point. An answer exactly as similar to every point (no information) gets a uniform row.
    """
    if temperature < 0:
        raise ValueError("temperature must be 0 or more")
    if epsilon < 0:
        raise ValueError("epsilon must be 0 or more")
    answers = _unit_rows(answer_embeddings, "answer_embeddings")
    if not anchor_sets:
        raise ValueError("at least one anchor set is needed")
    n_points = np.asarray(anchor_sets[0]).shape[0]
    if n_points < 2:
        raise ValueError("a scale needs at least two points")
    pmfs = []
    for anchors in anchor_sets:
        unit = _unit_rows(anchors, "anchor set")
        if unit.shape != (n_points, answers.shape[1]):
            raise ValueError(
                f"every anchor set must be ({n_points}, {answers.shape[1]}): one vector per scale point, "
                f"as long as the answers'; got {unit.shape}"
            )
        similarity = (1 + np.clip(answers @ unit.T, -1.0, 1.0)) / 2
        pmfs.append(_similarity_pmf(similarity, epsilon))
    return _with_temperature(np.mean(pmfs, axis=0), temperature)


def _unit_rows(matrix, name: str) -> np.ndarray:
    array = np.asarray(matrix, dtype=float)
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(f"{name} must be a 2-D array of vectors")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has a number that is not finite")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"{name} has a zero vector: it has no direction to compare")
    return array / norms


def _similarity_pmf(similarity: np.ndarray, epsilon: float) -> np.ndarray:
    lowest = similarity.min(axis=1, keepdims=True)
    numerator = similarity - lowest
    if epsilon > 0:
        numerator[np.arange(len(numerator)), similarity.argmin(axis=1)] += epsilon
    total = numerator.sum(axis=1, keepdims=True)
    uniform = np.full_like(numerator, 1 / numerator.shape[1])
    empty = total[:, 0] <= 0
    return np.where(empty[:, None], uniform, numerator / np.where(total > 0, total, 1))


def _with_temperature(pmf: np.ndarray, temperature: float) -> np.ndarray:
    if temperature == 1.0:
        return pmf
    top = pmf.max(axis=1, keepdims=True)
    if temperature == 0:
        flat = np.all(pmf == top, axis=1)
        one_hot = np.zeros_like(pmf)
        one_hot[np.arange(len(pmf)), pmf.argmax(axis=1)] = 1.0
        return np.where(flat[:, None], pmf, one_hot)
    # Divided by the row's largest value first: the same result once renormalised, and the largest term stays
    # 1, so a low temperature cannot underflow a whole row to zero.
    scaled = (pmf / top) ** (1 / temperature)
    return scaled / scaled.sum(axis=1, keepdims=True)


def expected_value(pmf: np.ndarray, scale_values) -> np.ndarray | float:
    """The mean rating of each pmf row (or of one pmf) on ``scale_values`` (1…5, 0…10)."""
    pmf = np.asarray(pmf, dtype=float)
    values = np.asarray(scale_values, dtype=float)
    if pmf.shape[-1] != values.shape[0]:
        raise ValueError(f"{pmf.shape[-1]} probabilities for {values.shape[0]} scale values")
    result = pmf @ values
    return float(result) if np.ndim(result) == 0 else result


def anchor_sets_fingerprint(anchor_sets: list[list[str]]) -> str:
    """sha256 of the anchor sentences, to store beside results (a changed wording is a different rating)."""
    return hashlib.sha256(json.dumps(anchor_sets, ensure_ascii=False).encode()).hexdigest()


# --- rating answers through the gateway ------------------------------------------------------------------------

_ANCHOR_CACHE_SIZE = 10_000
_anchor_cache: OrderedDict[str, list[float]] = OrderedDict()
_anchor_lock = threading.Lock()


def _anchor_key(model: str, text: str) -> str:
    # The model (and any requested dimensions) is part of the key: another model's vectors are not comparable.
    return hashlib.sha256(f"{model}\0{settings.LLM_EMBEDDING_DIMENSIONS}\0{text}".encode()).hexdigest()


def anchor_cache_clear() -> None:
    with _anchor_lock:
        _anchor_cache.clear()


def _cached_anchors(model: str, texts: list[str]) -> dict[str, list[float]]:
    with _anchor_lock:
        found = {}
        for text in texts:
            key = _anchor_key(model, text)
            if key in _anchor_cache:
                _anchor_cache.move_to_end(key)
                found[text] = _anchor_cache[key]
        return found


def _cache_anchors(model: str, vectors: dict[str, list[float]]) -> None:
    with _anchor_lock:
        for text, vector in vectors.items():
            _anchor_cache[_anchor_key(model, text)] = vector
        while len(_anchor_cache) > _ANCHOR_CACHE_SIZE:
            _anchor_cache.popitem(last=False)


def rate_answers(
    *,
    answers: list[str],
    anchor_sets: list[list[str]],
    user=None,
    temperature: float = 1.0,
    epsilon: float = 0.0,
    job=None,
) -> np.ndarray:
    """Each answer's pmf over the scale (shape (len(answers), n_points)), embedding through the gateway
    (feature ``survey_rating``: metered, quota-checked, offline on the local model).

    The answers and any anchor sentence not yet embedded by this process for this model go in one ``embed``
    call; anchors are then kept in memory by content hash, so a survey's later questions embed only answers.
    """
    [pmfs] = rate_answer_groups(
        groups=[(answers, anchor_sets)], user=user, temperature=temperature, epsilon=epsilon, job=job
    )
    return pmfs


def rate_answer_groups(
    *,
    groups: list[tuple[list[str], list[list[str]]]],
    user=None,
    temperature: float = 1.0,
    epsilon: float = 0.0,
    job=None,
) -> list[np.ndarray]:
    """``rate_answers`` for several questions at once: each group is (answers, that question's anchor sets),
    and every group's answers, with the anchors not cached yet, go in one ``embed`` call (one request up to
    ``LLM_EMBEDDING_BATCH_SIZE`` texts), not one per question. One pmf array per group, in order, the same as
    ``rate_answers`` gives each group alone (a text's embedding does not depend on what it is sent with)."""
    groups = [(list(answers), anchor_sets) for answers, anchor_sets in groups]
    for _, anchor_sets in groups:
        _check_anchor_sets(anchor_sets)
    asked = [(answers, anchor_sets) for answers, anchor_sets in groups if answers]
    if not asked:
        return [np.empty((0, len(anchor_sets[0]))) for _, anchor_sets in groups]
    model = embedding_model_name(FEATURE)
    texts = [text for answers, _ in asked for text in answers]
    unique_anchors = list(
        dict.fromkeys(t for _, anchor_sets in asked for anchor_set in anchor_sets for t in anchor_set)
    )
    cached = _cached_anchors(model, unique_anchors)
    missing = [text for text in unique_anchors if text not in cached]
    vectors = embed(feature=FEATURE, texts=[*texts, *missing], user=user, job=job)
    answer_vectors = np.array(vectors[: len(texts)])
    fresh = dict(zip(missing, vectors[len(texts) :], strict=True))
    anchors = {**cached, **fresh}
    if any(len(vector) != answer_vectors.shape[1] for vector in anchors.values()):
        # Cached under the same model name at another size (the provider changed behind the name): start again.
        anchors = dict(
            zip(unique_anchors, embed(feature=FEATURE, texts=unique_anchors, user=user, job=job), strict=True)
        )
        fresh = anchors
    _cache_anchors(model, fresh)
    results = []
    offset = 0
    for answers, anchor_sets in groups:
        if not answers:
            results.append(np.empty((0, len(anchor_sets[0]))))
            continue
        matrices = [np.array([anchors[text] for text in anchor_set]) for anchor_set in anchor_sets]
        rows = answer_vectors[offset : offset + len(answers)]
        offset += len(answers)
        results.append(response_pmf(rows, matrices, temperature=temperature, epsilon=epsilon))
    return results


def _check_anchor_sets(anchor_sets: list[list[str]]) -> None:
    if not anchor_sets:
        raise ValueError("at least one anchor set is needed")
    n_points = len(anchor_sets[0])
    if n_points < 2 or any(len(anchor_set) != n_points for anchor_set in anchor_sets):
        raise ValueError("every anchor set needs the same number (2 or more) of sentences, one per scale point")
