"""The scorecard's statistics are scipy's, its baselines are computed on the same question (same options, same
number of answers), a panel that copies the humans scores at the ceiling and a uniform one at zero, and the
verdict follows its stated rule."""

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from validation.reference import ReferenceInputError
from validation.scorecard import (
    CATEGORICAL_NOTE,
    RULE,
    js_divergence,
    kendall_tau_b,
    ks_similarity,
    majority_answers,
    measures,
    normalised_score,
    question_card,
    shares,
    split_half,
    subgroup_cards,
    total_variation,
    uniform_answers,
    uniform_baseline,
    variance_ratio,
    verdict,
    welch_t,
)

# Fixed, hand-written answers on a 4-point scale (positions 0..3).
HUMAN = [0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 1, 2, 0, 2, 3]
SYNTHETIC = [1, 1, 2, 2, 2, 2, 3, 3, 2, 1, 2]
K = 4
OPTIONS = ["Never", "Sometimes", "Often", "Always"]


def _population(n: int, *, seed: int, p=(0.45, 0.3, 0.15, 0.1)) -> list[int]:
    """Answers of n people to a 4-point item that leans to the low end (unlike a uniform guess)."""
    return np.random.default_rng(seed).choice(len(p), size=n, p=p).tolist()


# --- each statistic is scipy's -----------------------------------------------------------------------------


def test_ks_similarity_is_one_minus_scipys_statistic_and_the_largest_cdf_gap():
    expected = 1 - stats.ks_2samp(HUMAN, SYNTHETIC).statistic
    assert ks_similarity(HUMAN, SYNTHETIC, K) == pytest.approx(expected, abs=1e-12)
    # With tied answers, the statistic is the largest gap between the cumulative option shares.
    gap = np.max(np.abs(np.cumsum(shares(HUMAN, K)) - np.cumsum(shares(SYNTHETIC, K))))
    assert ks_similarity(HUMAN, SYNTHETIC, K) == pytest.approx(1 - gap, abs=1e-12)
    assert ks_similarity(HUMAN, HUMAN, K) == 1.0


def test_shares_count_every_option_including_unused_ones():
    assert shares([0, 0, 2, 2, 2], 4) == [0.4, 0.0, 0.6, 0.0]


def test_js_divergence_is_scipys_distance_squared_in_bits():
    p, q = shares(HUMAN, K), shares(SYNTHETIC, K)
    assert js_divergence(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2, abs=1e-12)
    assert js_divergence(p, q) == pytest.approx(js_divergence(q, p), abs=1e-12)
    assert js_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)  # disjoint: the maximum, 1 bit


def test_total_variation_is_half_the_l1_distance():
    p, q = [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]
    assert total_variation(p, q) == pytest.approx(0.3)
    assert total_variation([2, 2, 0], [0, 0, 4]) == pytest.approx(1.0)  # counts are normalised


def test_welch_t_is_scipys_with_synthetic_minus_human():
    result = welch_t(HUMAN, SYNTHETIC)
    expected = stats.ttest_ind(SYNTHETIC, HUMAN, equal_var=False)
    assert result["t"] == pytest.approx(expected.statistic, abs=1e-12)
    assert result["p"] == pytest.approx(expected.pvalue, abs=1e-12)
    assert result["mean_difference"] == pytest.approx(np.mean(SYNTHETIC) - np.mean(HUMAN))
    assert result["t"] > 0  # the synthetic side answers higher, and the sign says so
    assert welch_t([1, 1, 1], [1, 1, 1]) == {"t": None, "p": None, "mean_difference": 0.0}


def test_variance_ratio_is_synthetic_over_human_with_ddof_1():
    expected = np.var(SYNTHETIC, ddof=1) / np.var(HUMAN, ddof=1)
    assert variance_ratio(HUMAN, SYNTHETIC) == pytest.approx(expected)
    assert variance_ratio([2, 2, 2], SYNTHETIC) is None  # humans without spread: undefined
    assert variance_ratio(HUMAN, [1]) is None


def test_kendall_tau_b_is_scipys_on_the_option_shares():
    p, q = shares(HUMAN, K), shares(SYNTHETIC, K)
    assert kendall_tau_b(p, q) == pytest.approx(stats.kendalltau(p, q, variant="b").statistic, abs=1e-12)
    assert kendall_tau_b([0.1, 0.2, 0.7], [0.2, 0.3, 0.5]) == pytest.approx(1.0)
    assert kendall_tau_b([0.1, 0.2, 0.7], [0.5, 0.3, 0.2]) == pytest.approx(-1.0)
    assert kendall_tau_b([0.25] * 4, p) is None


def test_the_cards_measures_are_the_same_statistics():
    card = question_card("Q", "scale", HUMAN, SYNTHETIC, K, options=OPTIONS, seed=3)
    got = card["measures"]
    assert got["ks_similarity"] == pytest.approx(ks_similarity(HUMAN, SYNTHETIC, K))
    assert got["jsd"] == pytest.approx(js_divergence(shares(HUMAN, K), shares(SYNTHETIC, K)))
    assert got["tvd"] == pytest.approx(total_variation(shares(HUMAN, K), shares(SYNTHETIC, K)))
    assert got["welch_t"] == pytest.approx(welch_t(HUMAN, SYNTHETIC)["t"])
    assert got["welch_p"] == pytest.approx(welch_t(HUMAN, SYNTHETIC)["p"])
    assert got["mean_human"] == pytest.approx(np.mean(HUMAN))
    assert got["mean_synthetic"] == pytest.approx(np.mean(SYNTHETIC))
    assert got["variance_ratio"] == pytest.approx(variance_ratio(HUMAN, SYNTHETIC))
    assert got["tau_b"] == pytest.approx(kendall_tau_b(shares(HUMAN, K), shares(SYNTHETIC, K)))
    assert card["human_shares"] == shares(HUMAN, K)
    assert (card["n_human"], card["n_synthetic"]) == (len(HUMAN), len(SYNTHETIC))


# --- the baselines -----------------------------------------------------------------------------------------


def test_uniform_and_majority_answerers():
    answers = uniform_answers(5, 20_000, seed=1)
    assert len(answers) == 20_000
    assert set(answers) == {0, 1, 2, 3, 4}
    assert max(shares(answers, 5)) - min(shares(answers, 5)) < 0.03
    assert uniform_answers(5, 50, seed=2) == uniform_answers(5, 50, seed=2)
    assert majority_answers([2, 2, 1, 0, 2], 4) == [2, 2, 2, 2]
    assert majority_answers([1, 0, 0, 1], 2) == [0, 0]  # a tie goes to the lowest option


def test_baselines_are_computed_on_the_same_question_same_k_and_n():
    human = _population(300, seed=1)
    synthetic = _population(37, seed=2)
    card = question_card("Q", "scale", human, synthetic, K, options=OPTIONS, seed=11)
    uniform, majority, ceiling = (card["baselines"][name] for name in ("uniform", "majority", "ceiling"))
    assert (uniform["n"], uniform["k"]) == (37, K)
    assert (majority["n"], majority["k"]) == (37, K)
    assert {k: v for k, v in uniform.items() if k not in ("n", "k")} == uniform_baseline(human, K, 37, seed=11)
    assert {k: v for k, v in majority.items() if k not in ("n", "k")} == measures(human, majority_answers(human, 37), K)
    assert ceiling == split_half(human, seed=11, k=K)
    assert ceiling["half_size"] == 150


def test_the_uniform_baseline_is_close_to_the_exact_uniform_distribution():
    human = _population(2000, seed=4)
    baseline = uniform_baseline(human, K, 2000, seed=5)
    exact_gap = np.max(np.abs(np.cumsum(shares(human, K)) - np.cumsum([0.25] * K)))
    assert baseline["ks_similarity"] == pytest.approx(1 - exact_gap, abs=0.03)
    assert baseline["mean_synthetic"] == pytest.approx(1.5, abs=0.05)


def test_split_half_is_the_humans_agreement_with_themselves():
    human = _population(400, seed=6)
    ceiling = split_half(human, seed=1, k=K)
    assert 0.9 < ceiling["ks_similarity"] < 1.0
    assert ceiling["repeats"] == 50
    assert ceiling["variance_ratio"] == pytest.approx(1.0, abs=0.15)
    assert split_half(human, seed=1, k=K) == ceiling  # seeded
    assert split_half(human, seed=2, k=K) != ceiling


def test_too_few_respondents_for_a_split_half_says_so():
    with pytest.raises(ReferenceInputError) as caught:
        split_half([0, 1, 2] * 4, seed=1, label="Spending on health")
    assert caught.value.message == (
        "Too few respondents for a split-half: 12 answered “Spending on health”; at least 20 are needed."
    )
    assert split_half([0, 1, 2, 3] * 5, seed=1)["half_size"] == 10
    # On a card, the comparison is still made and the note says why there is no normalised score.
    card = question_card("Spending on health", "scale", [0, 1, 2] * 4, [0, 1, 1, 2], 3, options=list("abc"), seed=1)
    assert card["baselines"]["ceiling"] is None
    assert card["normalised"] is None
    assert card["measures"]["ks_similarity"] is not None
    assert any("Too few respondents for a split-half: 12 answered" in note for note in card["notes"])


# --- copies, guesses and one-answer panels -----------------------------------------------------------------


def test_a_panel_that_copies_the_humans_scores_at_the_ceiling():
    human = _population(400, seed=7)
    card = question_card("Q", "scale", human, list(human), K, options=OPTIONS, seed=2)
    assert card["measures"]["ks_similarity"] == 1.0
    assert card["normalised"] >= 0.9
    assert card["normalised_display"] == 1.0  # the raw score is above 1: capped for display only
    assert card["normalised"] > 1.0
    assert card["beats_uniform"] is True


def test_a_uniform_panel_scores_about_zero():
    human = _population(400, seed=8)
    scores = []
    for seed in range(8):
        synthetic = uniform_answers(K, 400, seed=1000 + seed)
        card = question_card("Q", "scale", human, synthetic, K, options=OPTIONS, seed=seed)
        scores.append(card["normalised"])
    assert abs(np.mean(scores)) <= 0.15
    assert max(scores) < 0.5


def test_a_majority_only_panel_has_no_spread():
    human = _population(400, seed=9)
    card = question_card("Q", "scale", human, majority_answers(human, 300), K, options=OPTIONS, seed=1)
    assert card["measures"]["variance_ratio"] == pytest.approx(0.0)
    assert card["baselines"]["majority"]["variance_ratio"] == pytest.approx(0.0)
    assert card["normalised"] < 0


def test_normalised_score_formula_and_undefined_cases():
    assert normalised_score(0.9, 0.8, 0.95) == pytest.approx((0.9 - 0.8) / (0.95 - 0.8))
    assert normalised_score(0.99, 0.8, 0.95) == pytest.approx(0.19 / 0.15)  # not clipped
    assert normalised_score(0.7, 0.8, 0.95) == pytest.approx(-0.1 / 0.15)
    assert normalised_score(0.9, 0.95, 0.95) is None
    assert normalised_score(0.9, 0.96, 0.95) is None
    assert normalised_score(None, 0.8, 0.95) is None


def test_a_choice_question_is_compared_as_categories():
    human = _population(300, seed=10)
    card = question_card("Brand", "choice", human, list(human), K, options=["A", "B", "C", "D"], seed=1)
    for name in ("ks_similarity", "welch_t", "welch_p", "mean_human", "variance_ratio"):
        assert card["measures"][name] is None
        assert card["baselines"]["uniform"][name] is None
    assert card["measures"]["jsd"] == pytest.approx(0.0, abs=1e-12)
    assert card["measures"]["tau_b"] == pytest.approx(1.0)
    assert CATEGORICAL_NOTE in card["notes"]
    assert card["normalised_on"] == "tvd_similarity"
    assert card["normalised"] >= 0.9


def test_a_side_without_answers_is_reported_not_crashed():
    card = question_card("Q", "scale", HUMAN, [None, None], K, options=OPTIONS, seed=1)
    assert card["n_synthetic"] == 0
    assert card["beats_uniform"] is False
    assert card["normalised"] is None
    assert "No synthetic respondents answered “Q”" in card["notes"][-1]


def test_answers_outside_the_options_are_a_programming_error():
    with pytest.raises(ValueError):
        question_card("Q", "scale", [0, 4], [0], K, options=OPTIONS, seed=1)
    with pytest.raises(ValueError):
        question_card("Q", "scale", [0, 1], [0], K, options=OPTIONS[:3], seed=1)


# --- subgroups ---------------------------------------------------------------------------------------------


def test_subgroup_cards_compare_groups_large_enough_on_both_sides():
    human_rows = [("Women", a) for a in _population(40, seed=1)] + [("Men", a) for a in _population(30, seed=2)]
    human_rows += [("Other", 1)] * 5 + [("Men", None)] * 3
    synthetic_rows = [("Women", a) for a in _population(25, seed=3)] + [("Men", a) for a in _population(8, seed=4)]
    synthetic_rows += [("Other", 2)] * 12
    cards = subgroup_cards("Q", "scale", human_rows, synthetic_rows, K, options=OPTIONS, dimension="gender", seed=1)
    assert [(c["value"], c["too_small"]) for c in cards] == [("Women", False), ("Men", True), ("Other", True)]
    women = cards[0]
    assert (women["n_human"], women["n_synthetic"], women["dimension"]) == (40, 25, "gender")
    assert women["measures"]["ks_similarity"] is not None
    assert cards[1]["n_human"] == 30  # missing answers are not counted
    assert "Too few to compare: 30 real and 8 synthetic respondents answered; at least 10" in cards[1]["notes"][0]


# --- the verdict -------------------------------------------------------------------------------------------


def _card(label: str, *, beats: bool = True, normalised: float | None = 0.8, ratio: float | None = 1.0) -> dict:
    return {
        "label": label,
        "kind": "scale",
        "beats_uniform": beats,
        "normalised": normalised,
        "measures": {"variance_ratio": ratio},
    }


def _check(result: dict, start: str) -> dict:
    return next(c for c in result["checks"] if c["label"].startswith(start))


def test_the_rule_is_the_stated_one():
    assert RULE == {"beats_uniform_share": 0.8, "mean_normalised": 0.5, "variance_ratio": (0.7, 1.4)}


def test_verdict_passes_when_every_check_passes():
    cards = [_card(f"Q{i}") for i in range(9)] + [_card("Weak one", beats=False, normalised=-0.2)]
    result = verdict(cards)
    assert result["passed"] is True
    assert [c["passed"] for c in result["checks"]] == [True, True, True]
    assert _check(result, "Beats a uniform guess")["value"] == "9 of 10 (90%)"
    assert _check(result, "Mean normalised")["value"] == "0.70 (over 10 questions)"
    assert result["summary"].startswith("Close to the human answers: the panel beats a uniform guess on 9 of 10")
    assert "“Weak one” (no better than a uniform guess)" in result["summary"]


def test_verdict_fails_when_too_few_questions_beat_uniform():
    cards = [_card(f"Q{i}") for i in range(7)] + [_card(f"Bad {i}", beats=False) for i in range(3)]
    result = verdict(cards)
    assert result["passed"] is False
    assert _check(result, "Beats a uniform guess") == {
        "label": "Beats a uniform guess on at least 80% of questions",
        "value": "7 of 10 (70%)",
        "passed": False,
    }
    assert result["summary"].startswith("Not yet trustworthy for these questions: “Bad 0”")
    assert "beats a uniform guess on only 7 of 10 questions" in result["summary"]


def test_verdict_fails_on_a_low_mean_normalised_score():
    result = verdict([_card("A", normalised=0.3), _card("B", normalised=0.6), _card("C", normalised=0.4)])
    assert result["passed"] is False
    check = _check(result, "Mean normalised")
    assert (check["value"], check["passed"]) == ("0.43 (over 3 questions)", False)
    assert "“A” (normalised score 0.30)" in result["summary"]
    assert "mean normalised score is 0.43" in result["summary"]


def test_one_tiny_denominator_does_not_decide_the_mean():
    # A score of 40 (a ceiling barely above uniform) counts as 1: the mean is (1 + 0 + 0) / 3, not 13.
    result = verdict([_card("A", normalised=40.0), _card("B", normalised=0.0), _card("C", normalised=0.0)])
    assert _check(result, "Mean normalised")["value"] == "0.33 (over 3 questions)"


@pytest.mark.parametrize(("ratios", "word"), [((0.3, 0.5, 1.0), "less"), ((1.6, 2.0, 1.0), "more")])
def test_verdict_fails_when_the_spread_is_off(ratios, word):
    result = verdict([_card(f"Q{i}", ratio=r) for i, r in enumerate(ratios)])
    assert result["passed"] is False
    check = _check(result, "Answers as spread out")
    assert check["passed"] is False
    assert check["value"].startswith(f"median {sorted(ratios)[1]:.2f} over 3 rating questions")
    assert f"its answers are {word} spread out than the humans'" in result["summary"]


def test_verdict_without_a_ceiling_anywhere_fails_and_says_why():
    result = verdict([_card("A", normalised=None), _card("B", normalised=None)])
    assert result["passed"] is False
    assert _check(result, "Mean normalised")["value"].startswith("No question could be scored")


def test_verdict_on_real_cards_copy_passes_uniform_fails():
    humans = [_population(300, seed=20 + i) for i in range(4)]
    copies = [question_card(f"Q{i}", "scale", h, list(h), K, options=OPTIONS, seed=i) for i, h in enumerate(humans)]
    guesses = [
        question_card(f"Q{i}", "scale", h, uniform_answers(K, 300, seed=50 + i), K, options=OPTIONS, seed=i)
        for i, h in enumerate(humans)
    ]
    assert verdict(copies)["passed"] is True
    assert verdict(guesses)["passed"] is False
    assert verdict([])["passed"] is False
