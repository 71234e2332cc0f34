"""Survey statistics: intervals that cover the truth as often as they say, seeded, and segment comparisons
in plain words."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from surveys.stats import (
    DEFAULT_RESAMPLES,
    bootstrap_mean_ci,
    compare_segments,
    distribution_ci,
    format_p,
    top_box,
)

TRUTH = np.array([0.10, 0.20, 0.30, 0.25, 0.15])  # a known survey distribution over a 5-point scale
POINTS = np.arange(1, 6)
PANELS = 1000
PANEL_SIZE = 150
# Production intervals use DEFAULT_RESAMPLES (2,000); each of the 1,000 simulated panels here uses 1,000
# resamples (still the >= 1,000 a 95% interval needs) to keep the test to a few seconds.
COVERAGE_RESAMPLES = 1000


def _panels():
    """1,000 seeded panels of respondents' pmfs, each drawn from a Dirichlet whose mean is TRUTH."""
    rng = np.random.default_rng(2026)
    for index in range(PANELS):
        yield index, rng.dirichlet(4 * TRUTH, size=PANEL_SIZE)


def test_production_default_is_at_least_1000_resamples():
    assert DEFAULT_RESAMPLES >= 1000


def test_mean_interval_covers_the_truth_about_95_percent_of_the_time():
    truth = float(TRUTH @ POINTS)
    covered = 0
    for index, pmfs in _panels():
        _, low, high = bootstrap_mean_ci(pmfs @ POINTS, seed=index, resamples=COVERAGE_RESAMPLES)
        covered += low <= truth <= high
    assert 0.93 <= covered / PANELS <= 0.97, covered


def test_distribution_intervals_cover_each_point_about_95_percent_of_the_time():
    covered = np.zeros(len(TRUTH))
    for index, pmfs in _panels():
        _, low, high = distribution_ci(pmfs, seed=index, resamples=COVERAGE_RESAMPLES)
        covered += (low <= TRUTH) & (high >= TRUTH)
    assert np.all((covered / PANELS >= 0.93) & (covered / PANELS <= 0.97)), covered


def test_top_box_interval_covers_the_truth_about_95_percent_of_the_time():
    truth = float(TRUTH[-2:].sum())
    covered = 0
    for index, pmfs in _panels():
        _, low, high = top_box(pmfs, k=2, seed=index, resamples=COVERAGE_RESAMPLES)
        covered += low <= truth <= high
    assert 0.93 <= covered / PANELS <= 0.97, covered


def test_same_seed_same_interval_other_seed_other_interval():
    values = np.random.default_rng(1).normal(3, 1, size=50)
    assert bootstrap_mean_ci(values, seed=5) == bootstrap_mean_ci(values, seed=5)
    assert bootstrap_mean_ci(values, seed=5) != bootstrap_mean_ci(values, seed=6)
    mean, low, high = bootstrap_mean_ci(values, seed=5)
    assert mean == pytest.approx(values.mean()) and low < mean < high


def test_percentile_method_matches_scipy():
    values = np.random.default_rng(2).normal(3, 1, size=40)
    _, low, high = bootstrap_mean_ci(values, seed=9, resamples=1500, method="percentile")
    expected = scipy_stats.bootstrap(
        (values,), np.mean, n_resamples=1500, method="percentile", rng=np.random.default_rng(9)
    ).confidence_interval
    assert (low, high) == pytest.approx((expected.low, expected.high))


def test_degenerate_panels_give_a_point_not_nan():
    assert bootstrap_mean_ci(np.full(30, 4.0), seed=1) == (4.0, 4.0, 4.0)
    pmfs = np.tile([0.0, 0.0, 0.5, 0.5, 0.0], (20, 1))
    pmfs[::2] = [0.0, 0.1, 0.4, 0.5, 0.0]  # points 1 and 5 are 0 for everyone: no spread to resample
    mean, low, high = distribution_ci(pmfs, seed=3)
    assert np.all(np.isfinite(low)) and np.all(np.isfinite(high))
    assert (low[0], high[0], low[4], high[4]) == (0.0, 0.0, 0.0, 0.0)
    assert np.all(low <= mean) and np.all(mean <= high)


def test_one_respondent_has_no_interval_and_none_is_an_error():
    mean, low, high = bootstrap_mean_ci(np.array([3.5]), seed=1)
    assert mean == 3.5 and math.isnan(low) and math.isnan(high)
    with pytest.raises(ValueError):
        bootstrap_mean_ci(np.array([]), seed=1)
    with pytest.raises(ValueError):
        top_box(np.full((3, 5), 0.2), k=6)


def test_top_box_is_the_share_in_the_top_points():
    pmfs = np.array([[0, 0, 0, 0.5, 0.5], [0.5, 0.5, 0, 0, 0], [0, 0, 0.5, 0.5, 0]])
    share, low, high = top_box(pmfs, k=2, seed=1)
    assert share == pytest.approx(0.5) and low <= share <= high
    assert top_box(pmfs, k=1, seed=1)[0] == pytest.approx(1 / 6)


def test_a_clear_difference_is_said_in_words_with_both_tests():
    rng = np.random.default_rng(3)
    a, b = rng.normal(4.0, 0.6, size=60), rng.normal(3.2, 0.6, size=60)
    result = compare_segments(a, b, label_a="Parents", label_b="Students")
    welch = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert result["welch_p"] == pytest.approx(welch.pvalue) and result["welch_t"] == pytest.approx(welch.statistic)
    assert result["mann_whitney_p"] == pytest.approx(scipy_stats.mannwhitneyu(a, b).pvalue)
    assert result["significant"] and result["cohens_d"] > 0.8 and 0 < result["rank_biserial"] <= 1
    assert result["verdict"].startswith("Parents rates higher than Students (")
    assert "a large difference, p < 0.001" in result["verdict"]
    flipped = compare_segments(b, a, label_a="Students", label_b="Parents")
    assert flipped["verdict"].startswith("Parents rates higher than Students (")
    assert flipped["difference"] == pytest.approx(-result["difference"])


def test_no_clear_difference():
    rng = np.random.default_rng(4)
    a, b = rng.normal(3.5, 1, size=40), rng.normal(3.5, 1, size=40)
    result = compare_segments(a, b)
    assert not result["significant"]
    assert result["verdict"] == f"No clear difference ({format_p(result['welch_p'])})."
    assert result["verdict"].startswith("No clear difference (p = 0.")


def test_too_few_or_identical_respondents():
    assert compare_segments([3.0], [4.0, 5.0])["verdict"].startswith("Too few respondents")
    same = compare_segments([3.0, 3.0], [3.0, 3.0, 3.0])
    assert same["verdict"].startswith("No difference") and not same["significant"]


@pytest.mark.parametrize(
    ("p", "text"), [(0.41, "p = 0.41"), (0.0312, "p = 0.03"), (0.004, "p = 0.004"), (1e-6, "p < 0.001")]
)
def test_p_values_read_as_people_write_them(p, text):
    assert format_p(p) == text
