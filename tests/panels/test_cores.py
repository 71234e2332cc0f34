"""Between sampled cores and persona fields: what a core fixes, how it is stored, how any persona is read
back into a population's categories, and how a changed core field is caught."""

import random

import pytest

from panels.cores import (
    CORE_FIELDS,
    age_bounds,
    core_mismatches,
    core_record,
    income_bounds,
    persona_core,
    persona_fields,
)
from panels.population import BUNDLED, Dimension, Population
from panels.sampling import sample_from_population

US = BUNDLED["us_adults"]
CORE = {
    "age": "25-44",
    "gender": "Female",
    "education": "Graduated from college",
    "income": "Between $50,000 and $74,999",
    "race": "Hispanic or Latino",
    "region": "Midwest",
    "urban_rural": "Suburban",
}


def test_persona_fields_from_a_full_core():
    fields = persona_fields(CORE, US, rng=random.Random(1))
    assert set(fields) == set(CORE_FIELDS)
    assert 25 <= fields["age"] <= 44
    assert fields["gender"] == "Female"
    assert fields["education"] == "Graduated from college"
    assert fields["income_bracket"] == "Between $50,000 and $74,999"
    assert fields["location"] == "Suburban, Midwest (US)"
    assert "race" not in fields  # only in the core


def test_ages_are_drawn_uniformly_inside_the_band():
    seen = {band: set() for band in ("18-24", "25-44", "45-64", "65+")}
    rng = random.Random(7)
    for _ in range(2000):
        for band in seen:
            seen[band].add(persona_fields({"age": band}, US, rng=rng)["age"])
    assert seen["18-24"] == set(range(18, 25))
    assert seen["25-44"] == set(range(25, 45))
    assert seen["45-64"] == set(range(45, 65))
    assert seen["65+"] == set(range(65, 86))
    without = {persona_fields({"gender": "Male"}, US, rng=rng)["age"] for _ in range(2000)}
    assert without == set(range(25, 65))


def test_persona_fields_are_deterministic_for_an_rng_state():
    first = [persona_fields(CORE, US, rng=random.Random("42:7")) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    rng = random.Random(5)
    a = [persona_fields(CORE, US, rng=rng)["age"] for _ in range(20)]
    rng = random.Random(5)
    assert [persona_fields(CORE, US, rng=rng)["age"] for _ in range(20)] == a


def test_other_gender_partial_cores_and_no_country():
    fields = persona_fields({"gender": "Other", "region": "South"}, US, rng=random.Random(1))
    assert fields["gender"] == "Non-binary"
    assert fields["location"] == "South (US)"
    assert "education" not in fields and "income_bracket" not in fields
    nowhere = Population(key="x", name="X", country="", dimensions=US.dimensions)
    assert persona_fields({"urban_rural": "Rural"}, nowhere, rng=random.Random(1))["location"] == "Rural"
    assert persona_fields({}, US, rng=random.Random(1)) == {"age": persona_fields({}, US, rng=random.Random(1))["age"]}


def test_long_categories_fit_the_persona_fields():
    core = {"gender": "G" * 50, "income": "I " * 40, "region": "R" * 100, "urban_rural": "Urban"}
    fields = persona_fields(core, US, rng=random.Random(1))
    assert len(fields["gender"]) <= 40 and len(fields["income_bracket"]) <= 60 and len(fields["location"]) <= 120
    assert fields["income_bracket"] == fields["income_bracket"].strip()


@pytest.mark.parametrize(
    ("category", "bounds"),
    [
        ("18-24", (18, 24)),
        ("25–44", (25, 44)),
        ("45 to 64", (45, 64)),
        ("65+", (65, None)),
        ("75 and over", (75, None)),
        ("Under 25", (18, 24)),
        ("Aged 30-39", (30, 39)),
        ("Young adults", None),
    ],
)
def test_age_bounds(category, bounds):
    assert age_bounds(category) == bounds


def test_core_record_in_dimension_order_with_labels():
    shuffled = dict(reversed(list(CORE.items())))
    record = core_record({**shuffled, "pet": "Cat"}, US)
    assert [item["key"] for item in record] == [*US.keys, "pet"]
    assert record[3] == {"key": "income", "label": "Household income", "value": "Between $50,000 and $74,999"}
    assert record[-1] == {"key": "pet", "label": "Pet", "value": "Cat"}
    assert core_record({"region": "South"}, US) == [{"key": "region", "label": "Region", "value": "South"}]


# --- persona_core -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ({"age": 19}, {"age": "18-24"}),
        ({"age": "44"}, {"age": "25-44"}),
        ({"age": 97}, {"age": "65+"}),
        ({"age": 16}, {}),
        ({"gender": "woman"}, {"gender": "Female"}),
        ({"gender": "F"}, {"gender": "Female"}),
        ({"gender": "Male (he/him)"}, {"gender": "Male"}),
        ({"gender": "m"}, {"gender": "Male"}),
        ({"gender": "Non-binary"}, {"gender": "Other"}),
        ({"gender": "genderqueer"}, {"gender": "Other"}),
        ({"gender": "prefers not to say"}, {}),
        ({"education": "graduated from college"}, {"education": "Graduated from college"}),
        ({"education": "Bachelor's degree in Marketing"}, {"education": "Graduated from college"}),
        ({"education": "MBA, Wharton"}, {"education": "Completed graduate school"}),
        ({"education": "Associate degree"}, {"education": "Some college, no degree"}),
        ({"education": "High school diploma"}, {"education": "Graduated from high school"}),
        ({"education": "Did not finish high school"}, {"education": "Less than high school"}),
        ({"income_bracket": "$60,000"}, {"income": "Between $50,000 and $74,999"}),
        ({"income_bracket": "around 60k a year"}, {"income": "Between $50,000 and $74,999"}),
        ({"income_bracket": "$12,500"}, {"income": "Under $15,000"}),
        ({"income_bracket": "$250k+"}, {"income": "Over $150,000"}),
        ({"income_bracket": "$150,000"}, {"income": "Between $100,000 and $150,000"}),
        ({"income_bracket": "$49,999.50"}, {"income": "Between $15,000 and $49,999"}),
        ({"income_bracket": "$80,000–$95,000"}, {"income": "Between $75,000 and $99,999"}),
        ({"income_bracket": "Middle income"}, {}),
        ({"location": "Austin, Texas"}, {"region": "South"}),
        ({"location": "Kansas City, Missouri"}, {"region": "South"}),
        ({"location": "Columbia, South Carolina"}, {"region": "Southeast"}),
        ({"location": "Portland, OR"}, {"region": "Pacific"}),
        ({"location": "Washington, DC"}, {"region": "Northeast", "urban_rural": None}),
        ({"location": "Seattle, Washington"}, {"region": "Pacific"}),
        ({"location": "Suburban, Midwest (US)"}, {"region": "Midwest", "urban_rural": "Suburban"}),
        ({"location": "A farm outside Boise, Idaho"}, {"region": "Mountains", "urban_rural": "Rural"}),
        ({"location": "Downtown Chicago, Illinois"}, {"region": "Midwest", "urban_rural": "Urban"}),
        (
            {"location": "An apartment in the city, Boston, Massachusetts"},
            {"region": "Northeast", "urban_rural": "Urban"},
        ),
        ({"location": "Lyon, France"}, {}),
        ({"location": "Flat", "household": "Lives in a small town with her parents"}, {"urban_rural": "Rural"}),
    ],
)
def test_persona_core_reads_fields_into_categories(profile, expected):
    expected = {key: value for key, value in expected.items() if value is not None}
    assert persona_core(profile, US) == expected


def test_persona_core_of_an_uploaded_population():
    population = Population(
        key="uk",
        name="UK",
        country="UK",
        dimensions=(
            Dimension(key="age_band", label="Age band", shares={"18-34": 1, "35+": 1}),
            Dimension(key="region", label="Region", shares={"North": 1, "South": 1}),
            Dimension(key="income", label="Income", shares={"Under £20k": 1, "£20k-£40k": 1, "Over £40k": 1}),
            Dimension(key="tenure", label="Tenure", shares={"Owner": 1, "Renter": 1}),
        ),
    )
    profile = {"age": 30, "location": "Leeds, North of England", "income_bracket": "£25,000", "tenure": "renter"}
    # age_band is not "age": nothing reads it from the persona's age.
    assert persona_core(profile, population) == {"region": "North", "income": "£20k-£40k", "tenure": "Renter"}


def test_a_sampled_panel_reads_back_to_its_own_cores():
    cores = sample_from_population(US, size=200, seed=3)
    rng = random.Random(0)
    for core in cores:
        fields = persona_fields(core, US, rng=rng)
        read = persona_core(fields, US)
        assert read == {key: value for key, value in core.items() if key != "race"}


def test_income_bounds():
    assert income_bounds("Under $15,000") == (0.0, 14999.99)
    assert income_bounds("Between $15,000 and $49,999") == (15000.0, 49999.0)
    assert income_bounds("Over $150,000") == (150000.01, float("inf"))
    assert income_bounds("$50k-$75k") == (50000.0, 75000.0)
    assert income_bounds("$100,000 or more") == (100000.0, float("inf"))
    assert income_bounds("Prefer not to say") is None


# --- core_mismatches --------------------------------------------------------------------------------------


def test_core_mismatches():
    expected = persona_fields(CORE, US, rng=random.Random(3))
    profile = {**expected, "name": "Ana", "occupation": "Nurse"}
    assert core_mismatches(profile, expected) == []
    assert core_mismatches({**profile, "age": str(expected["age"])}, expected) == []
    assert core_mismatches({**profile, "age": expected["age"] + 1, "gender": "Male"}, expected) == ["age", "gender"]
    assert core_mismatches({**profile, "location": "Urban, Midwest (US)"}, expected) == ["location"]
    missing = {key: value for key, value in profile.items() if key != "income_bracket"}
    assert core_mismatches(missing, expected) == ["income_bracket"]
    assert core_mismatches({**profile, "age": None}, expected) == ["age"]
    # Fields the core did not fix are the model's to write.
    partial = persona_fields({"age": "18-24"}, US, rng=random.Random(3))
    assert core_mismatches({**profile, "age": partial["age"], "gender": "Anything"}, partial) == []
