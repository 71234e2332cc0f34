"""Quotas: parsed against a population's dimensions and categories, checked alone and together; the
effective marginals after single-dimension quotas."""

import pytest

from panels.population import BUNDLED, PanelInputError
from panels.quotas import MAX_QUOTAS, Quota, effective_targets, parse_quotas

US = BUNDLED["us_adults"]
YOUNG = ["18-24", "25-44"]


def error_of(spec, size=1000, population=US) -> str:
    with pytest.raises(PanelInputError) as caught:
        parse_quotas(spec, population, size=size)
    fields = caught.value.extra["fields"]
    assert fields.get("quotas", fields.get("size")) == [caught.value.message]
    return caught.value.message


def test_parse_matches_dimensions_and_categories_by_key_or_label_case_insensitively():
    quotas = parse_quotas(
        [
            {"where": {"Gender": "female", "AGE": ["25-44", "18-24", "18-24"]}, "share": 40},
            {"where": {"region": "NORTHEAST"}, "at_least": 100},
            {"where": {"Household income": "over $150,000"}, "share": "20%"},
        ],
        US,
        size=300,
    )
    female_young, northeast, rich = quotas
    # Canonical names, categories in the dimension's order, dimensions in the order the quota names them.
    assert female_young == Quota(where={"gender": ("Female",), "age": ("18-24", "25-44")}, share=0.4)
    assert northeast == Quota(where={"region": ("Northeast",)}, at_least=100)
    assert rich.where == {"income": ("Over $150,000",)} and rich.share == pytest.approx(0.2)
    assert female_young.label(US) == "40% Female, 18-24 or 25-44"
    assert northeast.label(US) == "at least 100 Northeast"
    assert female_young.joint and not northeast.joint


def test_quota_matches_cores():
    quota = Quota(where={"gender": ("Female",), "age": ("18-24", "25-44")}, share=0.4)
    assert quota.matches({"gender": "Female", "age": "25-44", "region": "South"})
    assert not quota.matches({"gender": "Female", "age": "45-64"})
    assert not quota.matches({"gender": "Male", "age": "18-24"})
    assert not quota.matches({"age": "18-24"})


def test_no_quotas():
    assert parse_quotas([], US, size=10) == []
    assert parse_quotas(None, US, size=10) == []


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (
            {"where": {"Religion": "None"}, "share": 10},
            ["Quota 1", "“Religion” is not a dimension", "Household income"],
        ),
        ({"where": {"gender": "Femal"}, "share": 10}, ["Quota 1", "“Femal” is not a Gender category", "Female, Male"]),
        ({"where": {"gender": "Female"}}, ["Quota 1 (Female)", "either a share", "has neither"]),
        ({"where": {"gender": "Female"}, "share": 40, "at_least": 5}, ["Quota 1 (Female)", "not both"]),
        ({"where": {"gender": "Female"}, "share": 0}, ["Quota 1 (Female)", "above 0 and at most 100", "gave 0"]),
        ({"where": {"gender": "Female"}, "share": 100.5}, ["Quota 1 (Female)", "gave 100.5"]),
        ({"where": {"gender": "Female"}, "share": "lots"}, ["Quota 1 (Female)", "share must be a number"]),
        ({"where": {"gender": "Female"}, "at_least": 0}, ["Quota 1 (Female)", "from 1 to the panel size (1,000)"]),
        ({"where": {"gender": "Female"}, "at_least": 1001}, ["Quota 1 (Female)", "gave 1001"]),
        ({"where": {"gender": "Female"}, "at_least": 2.5}, ["Quota 1 (Female)", "whole number"]),
        ({"where": {}, "share": 10}, ["Quota 1", "which people"]),
        ({"share": 10}, ["Quota 1", "which people"]),
        ({"where": {"gender": []}, "share": 10}, ["Quota 1", "at least one Gender category"]),
        ({"where": {"gender": "Female", "Gender": "Male"}, "share": 10}, ["Quota 1 names Gender twice"]),
        (
            {"where": {"gender": "Female", "age": "18-24", "region": "South"}, "share": 5},
            ["Quota 1 combines 3 dimensions (Gender, Age, Region)", "at most 2"],
        ),
        ({"where": {"gender": ["Female", "Male", "Other"]}, "share": 10}, ["Quota 1 lists every Gender category"]),
    ],
)
def test_a_bad_quota_is_named_with_what_is_wrong(spec, words):
    message = error_of([{"where": {"region": "South"}, "share": 20}, spec])
    words = [word.replace("Quota 1", "Quota 2") for word in words]
    for word in words:
        assert word in message


def test_more_than_ten_quotas_and_bad_shapes():
    spec = [{"where": {"region": "South"}, "at_least": 1}] * (MAX_QUOTAS + 1)
    assert "11 quotas; at most 10" in error_of(spec)
    assert "must be a list" in error_of({"where": {"region": "South"}, "share": 5})
    assert "between 1 and 1,000 people" in error_of([], size=0)


# --- impossible -------------------------------------------------------------------------------------------


def test_a_joint_share_above_the_smaller_marginal_is_impossible():
    message = error_of([{"where": {"gender": "Female", "age": "18-24"}, "share": 20}])
    assert message.startswith("Quota 1 (20% Female, 18-24) is impossible")
    assert "only 13% of the target is 18-24" in message
    assert "Lower it to 13% or less" in message


def test_a_joint_share_below_what_the_marginals_force_is_impossible():
    # Female 50.7% and 18-64 82.9%: at least 33.6% are both.
    message = error_of([{"where": {"gender": "Female", "age": ["18-24", "25-44", "45-64"]}, "share": 10}])
    assert "Quota 1 (10% Female, 18-24 or 25-44 or 45-64) is impossible" in message
    assert "at least 33.6% must be both" in message and "Raise it to 33.6% or more" in message


def test_a_joint_minimum_above_what_is_possible_is_impossible():
    message = error_of([{"where": {"gender": "Female", "age": "18-24"}, "at_least": 150}])
    assert "Quota 1 (at least 150 Female, 18-24) is impossible" in message
    assert "at most 130 of 1,000" in message
    parse_quotas([{"where": {"gender": "Female", "age": "18-24"}, "at_least": 130}], US, size=1000)


def test_a_single_dimension_share_overrides_the_marginal_and_a_joint_quota_is_checked_against_it():
    quotas = parse_quotas([{"where": {"gender": "Female"}, "share": 30}], US, size=1000)
    gender = effective_targets(US, quotas, size=1000).dimension("gender")
    assert gender.shares["Female"] == pytest.approx(0.30)
    assert gender.shares["Male"] == pytest.approx(0.70 * 0.487 / 0.493)
    assert gender.shares["Other"] == pytest.approx(0.70 * 0.006 / 0.493)
    # 25-44 set to 10% leaves 18-24 or 25-44 at 28.1% (18-24 grows to 18.1%): too few for 30% young women.
    message = error_of(
        [{"where": {"age": "25-44"}, "share": 10}, {"where": {"gender": "Female", "age": YOUNG}, "share": 30}]
    )
    assert "Quota 2 (30% Female, 18-24 or 25-44) is impossible" in message
    assert "28.1% of the target is 18-24 or 25-44 (set by Quota 1)" in message
    assert "Lower it to 28% or less" in message


def test_a_joint_quota_inside_a_single_dimension_quota_cannot_need_more():
    message = error_of(
        [{"where": {"gender": "Female"}, "share": 30}, {"where": {"gender": "Female", "age": YOUNG}, "share": 40}]
    )
    assert "Quota 2 (40% Female, 18-24 or 25-44) and Quota 1 (30% Female) contradict each other" in message
    assert "at most 300 of 1,000" in message and "needs 400" in message


def test_effective_targets_for_minimums():
    quotas = parse_quotas([{"where": {"region": "Northeast"}, "at_least": 250}], US, size=1000)
    region = effective_targets(US, quotas, size=1000).dimension("region")
    assert region.shares["Northeast"] == pytest.approx(0.25)
    rest = 1 - US.dimension("region").shares["Northeast"]
    assert region.shares["South"] == pytest.approx(0.75 * US.dimension("region").shares["South"] / rest)
    # A minimum the marginal already gives changes nothing.
    quotas = parse_quotas([{"where": {"region": "Northeast"}, "at_least": 100}], US, size=1000)
    assert effective_targets(US, quotas, size=1000).dimension("region") == US.dimension("region")


def test_joint_quotas_leave_the_marginals_and_effective_targets_are_stable():
    quotas = parse_quotas([{"where": {"gender": "Female", "age": YOUNG}, "share": 40}], US, size=500)
    assert effective_targets(US, quotas, size=500) == US
    spec = [{"where": {"gender": "Female"}, "share": 45}, {"where": {"region": "Northeast"}, "at_least": 120}]
    effective = effective_targets(US, parse_quotas(spec, US, size=500), size=500)
    # A panel stores the effective target and its quotas; parsing them again against it changes nothing.
    again = effective_targets(effective, parse_quotas(spec, effective, size=500), size=500)
    for dimension, same in zip(effective.dimensions, again.dimensions, strict=True):
        assert same.shares == pytest.approx(dimension.shares, abs=1e-12)


# --- contradictions ---------------------------------------------------------------------------------------


def test_two_shares_for_the_same_cells_contradict():
    message = error_of(
        [
            {"where": {"gender": "Female", "age": YOUNG}, "share": 40},
            {"where": {"age": YOUNG, "gender": "female"}, "share": 30},
        ]
    )
    assert "Quota 1 (40% Female, 18-24 or 25-44) and Quota 2 (30% 18-24 or 25-44, Female) contradict" in message


def test_a_share_and_a_larger_minimum_for_the_same_cells_contradict():
    message = error_of(
        [{"where": {"region": "Northeast"}, "at_least": 100}, {"where": {"region": "Northeast"}, "share": 10}],
        size=300,
    )
    assert "Quota 2 (10% Northeast) and Quota 1 (at least 100 Northeast) contradict each other" in message
    assert "10% of 300 people is 30" in message
    # A compatible pair is fine.
    parse_quotas(
        [{"where": {"region": "Northeast"}, "at_least": 30}, {"where": {"region": "Northeast"}, "share": 10}],
        US,
        size=300,
    )


def test_a_repeated_quota_is_named():
    spec = {"where": {"region": "Northeast"}, "share": 10}
    assert "Quota 2 repeats Quota 1 (10% Northeast)" in error_of([spec, spec])


def test_single_dimension_shares_over_100_percent_contradict():
    message = error_of([{"where": {"gender": "Female"}, "share": 60}, {"where": {"gender": "Male"}, "share": 50}])
    assert "Quota 1 (60% Female) and Quota 2 (50% Male)" in message
    assert "110%" in message or "together need" in message


def test_single_dimension_shares_covering_every_category_must_add_up():
    message = error_of(
        [
            {"where": {"gender": "Female"}, "share": 40},
            {"where": {"gender": "Male"}, "share": 40},
            {"where": {"gender": "Other"}, "share": 5},
        ]
    )
    assert "Quota 1 (40% Female), Quota 2 (40% Male) and Quota 3 (5% Other) contradict" in message
    assert "add up to 85%, not 100%" in message


def test_minimums_in_one_dimension_over_the_panel_contradict():
    message = error_of(
        [{"where": {"region": "South"}, "at_least": 600}, {"where": {"region": "Midwest"}, "at_least": 500}]
    )
    assert "Quota 1 (at least 600 South) and Quota 2 (at least 500 Midwest) contradict" in message
    message = error_of(
        [{"where": {"region": "South"}, "at_least": 70}, {"where": {"region": "Midwest"}, "share": 80}], size=100
    )
    assert "Quota 1 (at least 70 South) and Quota 2 (80% Midwest) contradict" in message


def test_overlapping_quotas_on_one_dimension_are_refused():
    message = error_of(
        [{"where": {"region": ["Northeast", "South"]}, "share": 40}, {"where": {"region": "South"}, "at_least": 10}]
    )
    assert "Quota 1 (40% Northeast or South) and Quota 2 (at least 10 South) both cover South" in message


def test_a_quota_inside_another_cannot_need_more():
    message = error_of(
        [
            {"where": {"gender": "Female", "age": YOUNG}, "share": 20},
            {"where": {"gender": "Female", "age": "18-24"}, "at_least": 250},
        ]
    )
    assert "Quota 2 (at least 250 Female, 18-24) and Quota 1 (20% Female, 18-24 or 25-44) contradict" in message


def test_two_quotas_on_different_people_that_need_more_than_the_target_has():
    message = error_of(
        [
            {"where": {"gender": "Female", "age": YOUNG}, "share": 40},
            {"where": {"gender": "Male", "age": YOUNG}, "share": 40},
        ]
    )
    assert (
        "Quota 1 (40% Female, 18-24 or 25-44) and Quota 2 (40% Male, 18-24 or 25-44) cannot be met together" in message
    )
    assert "800 people who are 18-24 or 25-44" in message and "only 481 of 1,000" in message


def test_quotas_that_only_fail_together_are_found_before_any_raking():
    spec = [
        {"where": {"gender": "Female", "age": YOUNG}, "share": 30},
        {"where": {"gender": "Male", "age": "18-24"}, "share": 10},
        {"where": {"gender": "Male", "age": "25-44"}, "share": 10},
    ]
    message = error_of(spec)
    assert "Quota 1 (30% Female, 18-24 or 25-44), Quota 2 (10% Male, 18-24) and Quota 3 (10% Male, 25-44)" in message
    assert "cannot all be met" in message
    # With 25% of young women, 20% young men and 50.7% women leave 54.4% older men and women: more than
    # the 51.9% older people there are. At 28% it fits.
    spec[0]["share"] = 25
    assert "cannot all be met" in error_of(spec)
    spec[0]["share"] = 28
    assert len(parse_quotas(spec, US, size=1000)) == 3


def test_quota_to_json_round_trips_through_parse():
    quotas = parse_quotas(
        [{"where": {"gender": "Female", "age": YOUNG}, "share": 12.5}, {"where": {"region": "South"}, "at_least": 9}],
        US,
        size=100,
    )
    assert parse_quotas([quota.to_json() for quota in quotas], US, size=100) == quotas
