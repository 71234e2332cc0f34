"""A panel against its target: exact percentages, deviations, "Not stated", warnings, quotas, CSV rows,
and Cramér's V as scipy computes it."""

import numpy as np
import pytest
from scipy.stats import chi2_contingency
from scipy.stats.contingency import association

from panels.composition import CSV_HEADER, WARN_POINTS, composition, composition_csv_rows, cramers_v
from panels.population import Dimension, Population
from panels.quotas import Quota

POPULATION = Population(
    key="toy",
    name="Toy",
    country="",
    dimensions=(
        Dimension(key="gender", label="Gender", shares={"Female": 0.507, "Male": 0.493}, source="Census", year=2010),
        Dimension(key="age", label="Age", shares={"18-34": 0.3, "35-54": 0.4, "55+": 0.3}),
    ),
)
CORES = (
    [{"gender": "Female", "age": "18-34"}] * 2
    + [{"gender": "Female", "age": "35-54"}] * 3
    + [{"gender": "female", "age": "55+"}]  # categories match case-insensitively
    + [{"gender": "Male", "age": "35-54"}, {"gender": "Male", "age": "55+"}, {"gender": "Male", "age": "17"}]
    + [{"age": "18-34"}]  # no gender at all
)


def rows_of(report, key):
    return next(dimension for dimension in report["dimensions"] if dimension["key"] == key)


def test_exact_percentages_counts_and_deviations():
    report = composition(CORES, POPULATION)
    assert report["size"] == 10
    gender = rows_of(report, "gender")
    assert (gender["label"], gender["source"], gender["year"]) == ("Gender", "Census", 2010)
    assert gender["rows"] == [
        {"category": "Female", "target": 50.7, "panel": 60.0, "count": 6, "deviation": 9.3},
        {"category": "Male", "target": 49.3, "panel": 30.0, "count": 3, "deviation": -19.3},
        {"category": "Not stated", "target": 0.0, "panel": 10.0, "count": 1, "deviation": 10.0, "not_stated": True},
    ]
    assert gender["max_deviation"] == 19.3 and gender["warning"] is True
    age = rows_of(report, "age")
    assert age["rows"] == [
        {"category": "18-34", "target": 30.0, "panel": 30.0, "count": 3, "deviation": 0.0},
        {"category": "35-54", "target": 40.0, "panel": 40.0, "count": 4, "deviation": 0.0},
        {"category": "55+", "target": 30.0, "panel": 20.0, "count": 2, "deviation": -10.0},
        {"category": "Not stated", "target": 0.0, "panel": 10.0, "count": 1, "deviation": 10.0, "not_stated": True},
    ]
    assert age["max_deviation"] == 10.0


def test_warnings_over_the_threshold_in_sentences():
    report = composition(CORES, POPULATION)
    assert report["warnings"] == [
        "Gender is off target: Male is 30.0% of the panel against 49.3% in the target (-19.3 points).",
        "Age is off target: 55+ is 20.0% of the panel against 30.0% in the target (-10.0 points).",
    ]
    quiet = composition(CORES, POPULATION, warn_points=19.5)
    assert [d["warning"] for d in quiet["dimensions"]] == [False, False] and quiet["warnings"] == []
    assert WARN_POINTS == 5.0


def test_a_dimension_mostly_not_stated_says_so():
    cores = [{"gender": "Female"}] * 2 + [{"gender": "unknown"}] * 8
    report = composition(cores, POPULATION)
    assert "Gender: 8 of 10 people (80.0%) have no Gender among the target's categories." in report["warnings"]


def test_a_panel_on_target_has_no_warning():
    cores = [{"gender": "Female", "age": "18-34"}] * 30 + [{"gender": "Female", "age": "35-54"}] * 21
    cores += [{"gender": "Male", "age": "35-54"}] * 19 + [{"gender": "Male", "age": "55+"}] * 30
    report = composition(cores, POPULATION)
    assert report["warnings"] == []
    assert rows_of(report, "gender")["max_deviation"] == 0.3
    assert all("not_stated" not in row for d in report["dimensions"] for row in d["rows"])


def test_quotas_met_or_not():
    quotas = [
        Quota(where={"gender": ("Female",), "age": ("18-34", "35-54")}, share=0.5),
        Quota(where={"gender": ("Male",)}, at_least=4),
    ]
    report = composition(CORES, POPULATION, quotas=quotas)
    assert report["quotas"] == [
        {"label": "50% Female, 18-34 or 35-54", "target": 50.0, "panel": 50.0, "count": 5, "met": True},
        {"label": "at least 4 Male", "target": "at least 4", "panel": 30.0, "count": 3, "met": False},
    ]
    assert "The quota “at least 4 Male” is not met: 3 people (30.0%) against at least 4." in report["warnings"]
    off = composition(CORES, POPULATION, quotas=[Quota(where={"gender": ("Female",)}, share=0.8)])
    assert off["quotas"][0]["met"] is False  # 6 of 10 against 8


def test_an_empty_panel():
    report = composition([], POPULATION)
    assert report["size"] == 0
    assert rows_of(report, "gender")["rows"][0] == {
        "category": "Female",
        "target": 50.7,
        "panel": 0.0,
        "count": 0,
        "deviation": -50.7,
    }
    assert [d["warning"] for d in report["dimensions"]] == [False, False]
    assert report["warnings"] == ["There is nobody in the panel yet: nothing to compare with the target."]


def test_csv_rows():
    quotas = [Quota(where={"gender": ("Female",)}, share=0.5), Quota(where={"gender": ("Male",)}, at_least=4)]
    rows = composition_csv_rows(composition(CORES, POPULATION, quotas=quotas))
    assert rows[0] == CSV_HEADER == ["Dimension", "Category", "Target %", "Panel %", "Count", "Deviation (points)"]
    assert rows[1] == ["Gender", "Female", "50.7", "60.0", "6", "9.3"]
    assert rows[2] == ["Gender", "Male", "49.3", "30.0", "3", "-19.3"]
    assert rows[3] == ["Gender", "Not stated", "0.0", "10.0", "1", "10.0"]
    assert rows[4][:2] == ["Age", "18-34"]
    assert rows[-2] == ["Quota", "50% Female", "50.0", "60.0", "6", "10.0"]
    assert rows[-1] == ["Quota", "at least 4 Male", "at least 4", "30.0", "3", ""]
    assert len(rows) == 1 + 3 + 4 + 2


def test_csv_text_cells_cannot_be_formulas():
    population = Population(
        key="x", name="X", country="", dimensions=(Dimension(key="x", label="=cmd", shares={"-1": 0.5, "@a": 0.5}),)
    )
    rows = composition_csv_rows(composition([{"x": "-1"}], population))
    assert rows[1] == ["'=cmd", "'-1", "50.0", "100.0", "1", "50.0"]
    assert rows[2] == ["'=cmd", "'@a", "50.0", "0.0", "0", "-50.0"]


TABLE = [[10, 20, 30], [40, 5, 15]]


def cores_of(table, weights=None):
    cores, core_weights = [], []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            for _ in range(count):
                cores.append({"a": f"A{i}", "b": f"B{j}"})
                core_weights.append(weights[i] if weights else 1)
    return cores, core_weights


def test_cramers_v_equals_scipy_on_a_fixed_table():
    cores, _ = cores_of(TABLE)
    expected = association(np.array(TABLE), method="cramer")
    assert cramers_v(cores, "a", "b") == pytest.approx(expected, abs=1e-12)
    assert 0.4 < expected < 0.6
    # Cores without one of the dimensions are left out.
    assert cramers_v([*cores, {"a": "A0"}, {"b": "B1"}], "a", "b") == pytest.approx(expected, abs=1e-12)


def test_weighted_cramers_v():
    cores, weights = cores_of(TABLE, weights=[2, 1])
    doubled = np.array([[20, 40, 60], [40, 5, 15]])
    assert cramers_v(cores, "a", "b", weights=weights) == pytest.approx(association(doubled, method="cramer"))
    cores, weights = cores_of(TABLE, weights=[0.37, 1.9])
    table = np.array(TABLE, dtype=float) * np.array([[0.37], [1.9]])
    chi2 = chi2_contingency(table, correction=False)[0]
    expected = np.sqrt(chi2 / (table.sum() * (min(table.shape) - 1)))
    assert cramers_v(cores, "a", "b", weights=weights) == pytest.approx(expected, abs=1e-7)


def test_cramers_v_of_independent_or_degenerate_tables():
    cores, _ = cores_of([[10, 20], [20, 40]])
    assert cramers_v(cores, "a", "b") == pytest.approx(0.0, abs=1e-12)
    assert cramers_v([{"a": "x", "b": "y"}] * 5, "a", "b") == 0.0
    cores, _ = cores_of([[10, 0], [0, 10]])
    assert cramers_v(cores, "a", "b") == pytest.approx(1.0)
