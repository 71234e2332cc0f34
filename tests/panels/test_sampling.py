"""Sampling panels: from the bundled US marginals (raked with ipfn, repaired onto integer targets), with
quotas, and from microdata (weighted rows, joint structure kept). The issue's acceptance lives here."""

import itertools
import random

import numpy as np
import pandas as pd
import pytest
from ipfn import ipfn as ipfn_module

from panels import sampling
from panels.composition import composition, cramers_v
from panels.microdata import parse_microdata_csv
from panels.population import BUNDLED, Dimension, PanelInputError, Population
from panels.quotas import Quota, effective_targets, parse_quotas
from panels.sampling import raked_pool, sample_from_microdata, sample_from_population, target_counts

US = BUNDLED["us_adults"]
YOUNG = ("18-24", "25-44")
YOUNG_WOMEN = {"where": {"gender": "Female", "age": list(YOUNG)}, "share": 40}
NORTHEAST = {"where": {"region": "Northeast"}, "at_least": 250}


def shares(cores, key) -> dict[str, float]:
    counts: dict[str, int] = {}
    for core in cores:
        counts[core[key]] = counts.get(core[key], 0) + 1
    return {category: count / len(cores) for category, count in counts.items()}


def assert_within(cores, population, points):
    for dimension in population.dimensions:
        panel = shares(cores, dimension.key)
        assert set(panel) <= set(dimension.categories)
        for category, target in dimension.shares.items():
            assert abs(panel.get(category, 0.0) - target) * 100 <= points, (dimension.key, category)


def young_women(cores) -> int:
    return sum(1 for core in cores if core["gender"] == "Female" and core["age"] in YOUNG)


@pytest.fixture(scope="module")
def us_panel():
    return sample_from_population(US, size=1000, seed=2024)


@pytest.fixture(scope="module")
def us_quotas():
    return parse_quotas([YOUNG_WOMEN, NORTHEAST], US, size=1000)


@pytest.fixture(scope="module")
def quota_panel(us_quotas):
    return sample_from_population(US, size=1000, quotas=us_quotas, seed=2024)


# --- acceptance: US marginals ----------------------------------------------------------------------------


def test_a_1000_panel_from_us_adults_has_every_category_within_2_points(us_panel):
    assert len(us_panel) == 1000
    for core in us_panel:
        assert list(core) == list(US.keys)
    assert_within(us_panel, US, points=2)
    # What the repair promises: every count within one person of its integer target.
    for key, targets in target_counts(US, size=1000).items():
        counts = {category: round(share * 1000) for category, share in shares(us_panel, key).items()}
        for category, target in targets.items():
            assert abs(counts.get(category, 0) - target) <= 1, (key, category)


def test_the_same_seed_gives_the_same_panel_and_another_seed_another(us_panel):
    np.random.seed(99)  # the global generators play no part
    random.seed(99)
    assert sample_from_population(US, size=1000, seed=2024) == us_panel
    other = sample_from_population(US, size=1000, seed=2025)
    assert other != us_panel
    assert sum(1 for a, b in zip(us_panel, other, strict=True) if a != b) > 500
    assert_within(other, US, points=2)


def test_with_quotas_the_quotas_are_met_and_the_other_marginals_hold(quota_panel, us_quotas):
    assert abs(young_women(quota_panel) - 400) <= 1
    assert sum(1 for core in quota_panel if core["region"] == "Northeast") >= 250
    effective = effective_targets(US, us_quotas, size=1000)
    assert_within(quota_panel, effective, points=2)
    report = composition(quota_panel, effective, quotas=us_quotas)
    assert [quota["met"] for quota in report["quotas"]] == [True, True]
    assert report["warnings"] == []
    assert sample_from_population(US, size=1000, quotas=us_quotas, seed=2024) == quota_panel


def test_raking_moves_the_joint_to_the_quota_while_the_marginals_hold(us_panel, quota_panel):
    plain = raked_pool(US, size=1000)
    quotas = parse_quotas([YOUNG_WOMEN], US, size=1000)
    raked = raked_pool(US, quotas, size=1000)
    assert len(plain) == len(raked) == 4 * 3 * 5 * 6 * 5 * 7 * 3
    assert raked["w"].sum() == pytest.approx(1.0)

    def joint(frame):
        return frame.loc[(frame["gender"] == "Female") & frame["age"].isin(YOUNG), "w"].sum()

    female, young = US.dimension("gender").shares["Female"], sum(US.dimension("age").shares[age] for age in YOUNG)
    assert joint(plain) == pytest.approx(female * young, abs=1e-4)  # independent: 24.4%
    assert joint(raked) == pytest.approx(0.40, abs=1e-4)
    for dimension in US.dimensions:
        margins = raked.groupby(dimension.key)["w"].sum()
        for category, share in dimension.shares.items():
            assert margins[category] == pytest.approx(share, abs=1e-4)
    # The panels follow: about a quarter young women without the quota, 40% with it.
    assert abs(young_women(us_panel) / 1000 - female * young) < 0.05
    assert young_women(quota_panel) / 1000 == pytest.approx(0.40, abs=0.001)


def test_the_raking_goes_through_ipfn(monkeypatch):
    calls = []

    class Spy(ipfn_module.ipfn):
        def iteration(self):
            calls.append(self.dimensions)
            return super().iteration()

    monkeypatch.setattr(ipfn_module, "ipfn", Spy)
    quotas = parse_quotas([YOUNG_WOMEN], US, size=50)
    sample_from_population(US, size=50, quotas=quotas, seed=1)
    assert any(["quota_0"] in dimensions for dimensions in calls)
    assert {key for dimensions in calls for [key] in dimensions} >= set(US.keys)


@pytest.mark.filterwarnings("ignore:The inplace keyword")  # ipfn on pandas 3.1, called directly here
def test_raking_in_blocks_equals_raking_the_whole_cross_product():
    rng = random.Random(5)
    dimensions = []
    for key, count in (("a", 3), ("b", 4), ("c", 2), ("d", 3)):
        weights = [rng.uniform(1, 5) for _ in range(count)]
        dimensions.append(Dimension(key=key, label=key.upper(), shares={f"{key}{i}": w for i, w in enumerate(weights)}))
    population = Population(key="toy", name="Toy", country="", dimensions=tuple(dimensions))
    quotas = parse_quotas([{"where": {"a": "a0", "b": ["b1", "b2"]}, "share": 25}], population, size=100)
    blocked = raked_pool(population, quotas, size=100)

    full = pd.DataFrame(list(itertools.product(*[d.categories for d in dimensions])), columns=list("abcd"))
    full["quota"] = (full["a"] == "a0") & full["b"].isin(["b1", "b2"])
    full["w"] = 1.0
    aggregates, columns = [], []
    for dimension in dimensions:
        series = pd.Series(dimension.shares)
        series.index.name = dimension.key
        aggregates.append(series)
        columns.append([dimension.key])
    quota = pd.Series({False: 0.75, True: 0.25})
    quota.index.name = "quota"
    aggregates.append(quota)
    columns.append(["quota"])
    raked, converged = ipfn_module.ipfn(
        full, aggregates, columns, weight_col="w", convergence_rate=1e-10, verbose=1
    ).iteration()
    assert converged
    merged = raked.merge(blocked, on=list("abcd"), suffixes=("_full", "_blocked"))
    assert len(merged) == len(full) == len(blocked)
    assert np.abs(merged["w_full"] / merged["w_full"].sum() - merged["w_blocked"]).max() < 1e-6


def test_a_joint_minimum_is_honoured():
    quotas = parse_quotas([{"where": {"gender": "Female", "age": "18-24"}, "at_least": 120}], US, size=1000)
    cores = sample_from_population(US, size=1000, quotas=quotas, seed=5)
    assert sum(1 for core in cores if core["gender"] == "Female" and core["age"] == "18-24") >= 120
    assert_within(cores, US, points=2)


def test_small_panels():
    for size in (1, 2, 7):
        cores = sample_from_population(US, size=size, seed=3)
        assert len(cores) == size
        for core in cores:
            assert list(core) == list(US.keys)
            assert all(core[d.key] in d.categories for d in US.dimensions)


@pytest.mark.parametrize(("size", "shown"), [(0, "0"), (1001, "1,001"), (-2, "-2")])
def test_a_panel_of_0_or_over_the_limit_is_refused(size, shown):
    with pytest.raises(PanelInputError) as caught:
        sample_from_population(US, size=size, seed=1)
    assert caught.value.message == f"A panel needs between 1 and 1,000 people; you asked for {shown}."
    assert caught.value.extra["fields"] == {"size": [caught.value.message]}


def test_a_negative_seed_is_refused():
    with pytest.raises(PanelInputError, match="seed"):
        sample_from_population(US, size=5, seed=-1)


def test_quotas_the_raking_cannot_meet_are_named(monkeypatch):
    monkeypatch.setattr(sampling, "RAKE_MAX_ITERATIONS", 30)  # it would give up later, with the same answer
    quotas = [
        Quota(where={"gender": ("Female",), "age": YOUNG}, share=0.30),
        Quota(where={"gender": ("Male",), "age": ("18-24",)}, share=0.10),
        Quota(where={"gender": ("Male",), "age": ("25-44",)}, share=0.10),
    ]
    with pytest.raises(PanelInputError) as caught:
        sample_from_population(US, size=1000, quotas=quotas, seed=1)
    assert (
        "Quota 1 (30% Female, 18-24 or 25-44), Quota 2 (10% Male, 18-24) and Quota 3 (10% Male, 25-44) cannot be "
        "met together" in caught.value.message
    )


def test_target_counts_are_largest_remainder_integers(us_quotas):
    targets = target_counts(US, size=1000)
    # 130.4, 350.5, 347.8, 171.3: the two largest remainders round up.
    assert targets["age"] == {"18-24": 130, "25-44": 351, "45-64": 348, "65+": 171}
    assert all(sum(counts.values()) == 1000 for counts in targets.values())
    with_quotas = target_counts(US, us_quotas, size=1000)
    assert with_quotas["_quotas"] == {"40% Female, 18-24 or 25-44": 400, "at least 250 Northeast": 250}
    assert with_quotas["region"]["Northeast"] == 250


def test_an_uploaded_population_with_many_dimensions_is_sampled_in_blocks():
    rng = random.Random(12)
    dimensions = tuple(
        Dimension(key=f"d{index}", label=f"D{index}", shares={f"c{c}": rng.uniform(0.5, 3) for c in range(5)})
        for index in range(12)
    )  # 5^12 = 244 million combinations: never built
    population = Population(key="wide", name="Wide", country="", dimensions=dimensions)
    quotas = parse_quotas([{"where": {"d0": "c0", "d11": "c1"}, "share": 10}], population, size=300)
    cores = sample_from_population(population, size=300, quotas=quotas, seed=4)
    assert len(cores) == 300
    for key, targets in target_counts(population, quotas, size=300).items():
        if key == "_quotas":
            continue
        for category, target in targets.items():
            assert abs(sum(1 for core in cores if core[key] == category) - target) <= 1
    assert abs(sum(1 for core in cores if core["d0"] == "c0" and core["d11"] == "c1") - 30) <= 1


# --- acceptance: microdata -------------------------------------------------------------------------------

AGE_BANDS = [(18, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 90)]
INCOMES = ["Under $25k", "$25k-$50k", "$50k-$100k", "Over $100k"]
# Income by age band: the young poor, the middle-aged rich, the old in between. A strong association.
INCOME_BY_AGE = [
    [0.60, 0.30, 0.08, 0.02],
    [0.25, 0.45, 0.25, 0.05],
    [0.10, 0.25, 0.45, 0.20],
    [0.05, 0.15, 0.40, 0.40],
    [0.10, 0.20, 0.40, 0.30],
    [0.30, 0.40, 0.25, 0.05],
]


def survey_csv(count=3000, seed=17) -> bytes:
    rng = random.Random(seed)
    lines = ["respondent_id,age,gender,income,region,weight"]
    for number in range(count):
        band = rng.choices(range(6), weights=[12, 18, 17, 17, 16, 20])[0]
        age = rng.randint(*AGE_BANDS[band])
        income = rng.choices(INCOMES, weights=INCOME_BY_AGE[band])[0]
        gender = rng.choice(["Female", "Male"])
        region = rng.choices(["North", "South", "East", "West"], weights=[1, 4, 2, 3])[0]
        # Unequal weights: women were under-sampled, the young over-sampled.
        weight = rng.uniform(0.3, 2.0) * (2.0 if gender == "Female" else 1.0) * (0.5 if band == 0 else 1.0)
        lines.append(f"{number},{age},{gender},{income},{region},{weight:.5f}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def survey():
    return parse_microdata_csv(survey_csv(), filename="survey.csv")


@pytest.fixture(scope="module")
def survey_panel(survey):
    return sample_from_microdata(survey, size=1000, seed=8)


def test_a_panel_from_microdata_keeps_the_age_income_association(survey, survey_panel):
    sample_v = cramers_v(survey.rows, "age", "income", weights=survey.weights)
    assert sample_v > 0.3  # a real association to keep
    panel_v = cramers_v(survey_panel, "age", "income")
    assert abs(panel_v - sample_v) <= 0.05
    # Not only the marginals: a panel with the same marginals and no association would be near 0.
    rng = random.Random(1)
    incomes = [core["income"] for core in survey_panel]
    rng.shuffle(incomes)
    shuffled = [{**core, "income": income} for core, income in zip(survey_panel, incomes, strict=True)]
    assert cramers_v(shuffled, "age", "income") < 0.1


def test_a_panel_from_microdata_follows_the_weighted_marginals(survey, survey_panel):
    population = survey.population(name="Survey")
    assert len(survey_panel) == 1000
    assert_within(survey_panel, population, points=2)
    # The weights matter: women are about a third of the rows but two thirds of the weight.
    raw_women = sum(1 for row in survey.rows if row["gender"] == "Female") / len(survey.rows)
    assert abs(population.dimension("gender").shares["Female"] - raw_women) > 0.1
    assert shares(survey_panel, "gender")["Female"] == pytest.approx(
        population.dimension("gender").shares["Female"], abs=0.002
    )


def test_microdata_people_are_real_respondents_and_the_seed_decides(survey, survey_panel):
    respondents = {tuple(row[key] for key in survey.columns) for row in survey.rows}
    assert all(tuple(core[key] for key in survey.columns) in respondents for core in survey_panel)
    assert sample_from_microdata(survey, size=1000, seed=8) == survey_panel
    assert sample_from_microdata(survey, size=1000, seed=9) != survey_panel


def test_microdata_with_quotas(survey):
    population = survey.population(name="Survey")
    quotas = parse_quotas(
        [
            {"where": {"gender": "Female", "age": ["18-24", "25-34"]}, "share": 15},
            {"where": {"region": "North"}, "at_least": 200},
        ],
        population,
        size=1000,
    )
    cores = sample_from_microdata(survey, size=1000, quotas=quotas, seed=3)
    assert abs(sum(1 for core in cores if quotas[0].matches(core)) - 150) <= 1
    assert sum(1 for core in cores if core["region"] == "North") >= 200
    assert_within(cores, effective_targets(population, quotas, size=1000), points=2)


def test_zero_weight_respondents_are_never_drawn_and_a_quota_on_them_is_refused():
    lines = ["gender,region,weight"] + [f"{g},{r},1" for g in ("Female", "Male") for r in ("North", "South")] * 10
    lines += ["Other,North,0"] * 5
    microdata = parse_microdata_csv(("\n".join(lines) + "\n").encode(), filename="x.csv")
    cores = sample_from_microdata(microdata, size=200, seed=1)
    assert "Other" not in {core["gender"] for core in cores}
    population = microdata.population(name="x")
    quotas = parse_quotas([{"where": {"gender": "Other"}, "share": 10}], population, size=100)
    with pytest.raises(PanelInputError) as caught:
        sample_from_microdata(microdata, size=100, quotas=quotas, seed=1)
    assert "Nobody in the microdata who can be drawn is “Other” (gender)" in caught.value.message
