"""Target populations: the bundled US adults and uploaded marginals CSVs, with every bad input named."""

import json
import random

import pytest
from surveyweights.census.us_census import US_CENSUS

from cohorta.errors import ApplicationError
from panels.population import (
    BUNDLED,
    MARGINALS_MAX_BYTES,
    Dimension,
    PanelInputError,
    Population,
    bundled_population,
    check_panel_size,
    dimension_key,
    parse_marginals_csv,
    slugify,
)

US = BUNDLED["us_adults"]


def csv_bytes(text: str, encoding: str = "utf-8") -> bytes:
    return "\n".join(line.strip() for line in text.strip().splitlines()).encode(encoding)


def error_of(data: bytes, **kwargs) -> PanelInputError:
    with pytest.raises(PanelInputError) as caught:
        parse_marginals_csv(data, name=kwargs.pop("name", "Test"), **kwargs)
    return caught.value


# --- bundled -------------------------------------------------------------------------------------------


def test_us_adults_has_the_seven_dimensions_in_order_with_human_labels():
    assert US.keys == ("age", "gender", "education", "income", "race", "region", "urban_rural")
    assert [dimension.label for dimension in US.dimensions] == [
        "Age",
        "Gender",
        "Education",
        "Household income",
        "Race/ethnicity",
        "Region",
        "Urban/rural",
    ]
    assert US.country == "US"
    assert "Census 2010" in US.name and "ACS 2019" in US.name
    assert bundled_population("us_adults") is US


def test_us_adults_shares_are_surveyweights_figures_normalised_to_exactly_one():
    for dimension in US.dimensions:
        source = US_CENSUS[dimension.key]
        total = sum(source.values())
        assert set(dimension.shares) == set(source)
        for category, share in dimension.shares.items():
            assert share == pytest.approx(source[category] / total, abs=1e-12)
        assert sum(dimension.shares.values()) == 1.0
    # Not the vote, GSS or ideology items of US_CENSUS.
    assert not {"vote2016", "vote2020", "left_right", "gss_bible", "gss_trust"} & set(US.keys)


def test_us_adults_education_is_listed_from_least_to_most():
    assert US.dimension("education").categories[0] == "Less than high school"
    assert US.dimension("education").categories[-1] == "Completed graduate school"


@pytest.mark.parametrize(
    ("key", "year", "words"),
    [
        ("age", 2010, ["2010 US Census", "c2010br-03.pdf"]),
        ("gender", 2010, ["2010 US Census", "PMC5227946"]),
        ("education", 2019, ["2019 ACS", "educational-attainment"]),
        ("income", 2019, ["2019 ACS", "p60-266.pdf"]),
        ("race", 2019, ["2019 Census estimates", "Race_and_ethnicity"]),
        ("region", 2019, ["2019 Census estimates", "US_REGIONS_MAP", "surveyweights' own"]),
        ("urban_rural", 2018, ["2018 Pew"]),
    ],
)
def test_us_adults_dimensions_say_their_source_and_year(key, year, words):
    dimension = US.dimension(key)
    assert dimension.year == year
    for word in words:
        assert word in dimension.source
    assert "surveyweights 0.6 (MIT)" in dimension.source


def test_an_unknown_bundled_population_or_dimension_is_named():
    with pytest.raises(PanelInputError, match="“uk_adults”"):
        bundled_population("uk_adults")
    with pytest.raises(PanelInputError) as caught:
        US.dimension("religion")
    assert "“religion”" in caught.value.message and "Household income" in caught.value.message


def test_panel_input_error_is_an_application_error_with_the_field():
    error = PanelInputError("Bad.", field="size")
    assert isinstance(error, ApplicationError)
    assert error.status_code == 400 and error.code == "validation_error"
    assert error.extra == {"fields": {"size": ["Bad."]}}
    assert PanelInputError("Big.", code="file_too_large").code == "file_too_large"


@pytest.mark.parametrize(("size", "message"), [(0, "you asked for 0"), (1001, "you asked for 1,001"), (-3, "-3")])
def test_check_panel_size(size, message):
    with pytest.raises(PanelInputError) as caught:
        check_panel_size(size)
    assert "between 1 and 1,000 people" in caught.value.message and message in caught.value.message
    assert check_panel_size(1) == 1 and check_panel_size(1000) == 1000


# --- model -----------------------------------------------------------------------------------------------


def test_dimension_shares_are_normalised_to_sum_exactly_one():
    assert Dimension(key="x", label="X", shares={"a": 2, "b": 1, "c": 1}).shares == {"a": 0.5, "b": 0.25, "c": 0.25}
    rng = random.Random(3)
    for _ in range(3000):
        values = [rng.random() * rng.choice([1, 100, 1e-3]) for _ in range(rng.randint(2, 12))]
        dimension = Dimension(key="x", label="X", shares={f"c{i}": value for i, value in enumerate(values)})
        assert sum(dimension.shares.values()) == 1.0
        assert list(dimension.shares) == [f"c{i}" for i in range(len(values))]  # order kept


def test_population_round_trips_through_json_even_when_object_keys_are_reordered():
    data = json.loads(json.dumps(US.to_json(), sort_keys=True))  # what Postgres jsonb does to key order
    again = Population.from_json(data)
    assert again == US
    assert [list(dimension.shares) for dimension in again.dimensions] == [
        list(dimension.shares) for dimension in US.dimensions
    ]
    assert again.to_json() == US.to_json()


def test_find_dimension_by_key_or_label():
    assert US.find_dimension("Household income").key == "income"
    assert US.find_dimension("urban_rural").key == "urban_rural"
    assert US.find_dimension("SEX").key == "gender"
    assert US.find_dimension("Religion") is None


def test_slugs_and_known_keys():
    assert slugify("Age band") == "age_band"
    assert slugify("  Région / Zone ") == "region_zone"
    assert dimension_key("Age band") == "age_band"
    assert dimension_key("Sex") == "gender"
    assert dimension_key("Race/ethnicity") == "race"
    assert dimension_key("Urban/rural") == "urban_rural"
    assert dimension_key("Household income") == "income"
    assert dimension_key("年齢") == "年齢"


# --- uploaded marginals ----------------------------------------------------------------------------------

GOOD = """
Dimension,Category,Share,Source,Year
Age band,18-34,30%,ONS 2021,2021
Age band,35-54,35%,,
Age band,55+,35%,,
Sex,Female,0.51,ONS mid-year,2022
Sex,Male,0.49,,
Region,North,24.5,,
Region,South,75.0,,
"""


def test_parse_marginals_reads_percent_and_proportions_per_dimension():
    population = parse_marginals_csv(csv_bytes(GOOD), name="UK adults", country="UK")
    assert population.name == "UK adults" and population.key == "uk_adults" and population.country == "UK"
    assert population.keys == ("age_band", "gender", "region")
    age, sex, region = population.dimensions
    assert age.label == "Age band" and sex.label == "Sex"
    assert age.shares == pytest.approx({"18-34": 0.30, "35-54": 0.35, "55+": 0.35})
    assert sex.shares == pytest.approx({"Female": 0.51, "Male": 0.49})
    # 99.5% is within a point of 100: normalised.
    assert region.shares == pytest.approx({"North": 24.5 / 99.5, "South": 75.0 / 99.5})
    assert sum(region.shares.values()) == 1.0
    assert (age.source, age.year) == ("ONS 2021", 2021)
    assert (sex.source, sex.year) == ("ONS mid-year", 2022)
    assert (region.source, region.year) == ("", None)
    assert Population.from_json(json.loads(json.dumps(population.to_json()))) == population


def test_parse_marginals_semicolons_decimal_commas_bom_and_case_insensitive_header():
    text = "\ufeffDIMENSION;category;SHARE\nGender;Female;50,5\nGender;Male;49,5\n"
    population = parse_marginals_csv(text.encode("utf-8"), name="X")
    assert population.dimension("gender").shares == pytest.approx({"Female": 0.505, "Male": 0.495})


def test_parse_marginals_falls_back_to_windows_1252():
    text = "dimension,category,share\nRégion,Île-de-France,19\nRégion,Autres régions,81\n"
    population = parse_marginals_csv(text.encode("cp1252"), name="France")
    assert population.dimensions[0].key == "region"
    assert population.dimensions[0].label == "Région"
    assert list(population.dimensions[0].shares) == ["Île-de-France", "Autres régions"]


def test_parse_marginals_maps_known_names_to_known_keys():
    text = """dimension,category,share
    Race/ethnicity,A,50
    Race/ethnicity,B,50
    Urban/rural,Urban,60
    Urban/rural,Rural,40
    Household income,Low,50
    Household income,High,50
    Education,Low,50
    Education,High,50
    """
    population = parse_marginals_csv(csv_bytes(text), name="X")
    assert population.keys == ("race", "urban_rural", "income", "education")


def test_marginals_that_do_not_add_up_name_the_dimension_and_total():
    text = GOOD.replace("Region,South,75.0", "Region,South,68.5")
    error = error_of(csv_bytes(text))
    assert error.message == "“Region” adds up to 93.0%, not 100%: fix its shares."
    assert error.extra["dimension"] == "region"
    text = """dimension,category,share
    Income,Low,0.5
    Income,High,0.43
    """
    assert error_of(csv_bytes(text)).message == "“Income” adds up to 93.0%, not 100%: fix its shares."
    over = GOOD.replace("Age band,55+,35%", "Age band,55+,37%")
    assert "“Age band” adds up to 102.0%" in error_of(csv_bytes(over)).message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Age,18-24,50\nAge,25+,50\n", ["first row must be a header", "“Age”"]),
        ("dimension,category,percent_x\nAge,18-24,50\n", ["no share column", "“percent_x”"]),
        ("dimension,value\nAge,18-24\n", ["no share column"]),
        ("dimension,category,share\n", ["header but no rows"]),
        ("dimension,category,share\nAge,18-24,\nAge,25+,50\n", ["Row 2", "“Age” / “18-24”", "no share"]),
        ("dimension,category,share\nAge,18-24,50\nAge,25+,lots\n", ["Row 3", "“lots” is not a number"]),
        ("dimension,category,share\nAge,18-24,50\nAge,25+,nan\n", ["Row 3", "“nan” is not a number"]),
        ("dimension,category,share\nAge,18-24,-5\nAge,25+,105\n", ["Row 2", "negative"]),
        ("dimension,category,share\n,18-24,50\n", ["Row 2 has no dimension"]),
        ("dimension,category,share\nAge,,50\n", ["Row 2", "no category"]),
        ("dimension,category,share\nAge,18-24,100\n", ["“Age” has only one category"]),
        (
            "dimension,category,share\nAge,18-24,50\nAge,25+,25\nAge,18-24,25\n",
            ["“Age” has the category “18-24” twice", "rows 2 and 4"],
        ),
        ("dimension,category,share,year\nAge,18-24,50,soon\nAge,25+,50,\n", ["Row 2", "“soon” is not a year"]),
    ],
)
def test_bad_marginals_say_what_and_where(text, words):
    message = error_of(text.encode()).message
    for word in words:
        assert word in message


def test_too_many_dimensions_or_categories():
    rows = ["dimension,category,share"]
    for number in range(13):
        rows += [f"D{number},a,50", f"D{number},b,50"]
    assert "13 dimensions; at most 12" in error_of("\n".join(rows).encode()).message
    rows = ["dimension,category,share"] + [f"Occupation,job {number},{100 / 61}" for number in range(61)]
    assert "“Occupation” has 61 categories; at most 60" in error_of("\n".join(rows).encode()).message


def test_empty_oversized_and_spreadsheet_files():
    assert "empty" in error_of(b"").message
    assert "empty" in error_of(b"  \n\n ").message
    big = b"dimension,category,share\n" + b"Age,18-24,50\n" * (MARGINALS_MAX_BYTES // 12)
    error = error_of(big)
    assert "the limit is 1 MB" in error.message and error.code == "file_too_large"
    assert "Excel" in error_of(b"PK\x03\x04rest-of-a-zip").message


def test_duplicate_dimension_names_by_key_are_one_dimension():
    text = "dimension,category,share\nSex,Female,50\nGender,Male,50\n"
    population = parse_marginals_csv(text.encode(), name="X")
    assert population.keys == ("gender",)
    assert population.dimension("gender").label == "Sex"
