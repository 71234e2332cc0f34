"""Uploaded microdata: parsing, weights, age bands, its weighted marginals, and every bad file named."""

import json
import random

import pytest

from panels.microdata import (
    MICRODATA_MAX_BYTES,
    MICRODATA_MAX_ROWS,
    Microdata,
    category_order,
    parse_microdata_csv,
)
from panels.population import PanelInputError

HEADER = ["Age", "Sex", "Region", "weight"]


def rows_csv(rows, header=HEADER, delimiter=",") -> bytes:
    lines = [delimiter.join(header)] + [delimiter.join(str(cell) for cell in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def sample_rows(count=40, seed=1):
    rng = random.Random(seed)
    return [
        [rng.randint(18, 90), rng.choice(["Female", "Male"]), rng.choice(["North", "South"]), rng.choice([0.5, 1, 2])]
        for _ in range(count)
    ]


def error_of(data: bytes, **kwargs) -> PanelInputError:
    with pytest.raises(PanelInputError) as caught:
        parse_microdata_csv(data, filename=kwargs.pop("filename", "gss.csv"), **kwargs)
    return caught.value


def test_parse_reads_columns_weights_and_bands_a_numeric_age():
    rows = sample_rows()
    microdata = parse_microdata_csv(rows_csv(rows), filename="gss.csv")
    assert microdata.columns == ["age", "gender", "region"]
    assert microdata.labels == {"age": "Age", "gender": "Sex", "region": "Region"}
    assert microdata.weight_column == "weight"
    assert microdata.weights == [float(row[3]) for row in rows]
    bands = {"18-24", "25-34", "35-44", "45-54", "55-64", "65+"}
    assert {row["age"] for row in microdata.rows} <= bands
    for source, row in zip(rows, microdata.rows, strict=True):
        age = source[0]
        expected = next(
            (band for band, low, high in [("18-24", 18, 24), ("25-34", 25, 34), ("35-44", 35, 44),
             ("45-54", 45, 54), ("55-64", 55, 64)] if low <= age <= high),
            "65+",
        )  # fmt: skip
        assert row == {"age": expected, "gender": source[1], "region": source[2]}


def test_weighted_marginals_become_a_population():
    rows = [[30, "Female", "North", 3]] * 10 + [[70, "Male", "South", 1]] * 30
    microdata = parse_microdata_csv(rows_csv(rows), filename="gss.csv")
    population = microdata.population(name="GSS 2018")
    assert population.name == "GSS 2018" and population.keys == ("age", "gender", "region")
    # 10 women weighing 3 each against 30 men weighing 1: half and half.
    assert population.dimension("gender").shares == {"Female": 0.5, "Male": 0.5}
    assert population.dimension("age").shares == {"25-34": 0.5, "65+": 0.5}
    assert population.dimension("gender").source == "Uploaded microdata GSS 2018, weighted by weight"
    assert population.dimension("gender").label == "Sex"


@pytest.mark.parametrize(
    "name", ["WT", "wgt", "Weights", "PERWT", "finalwt", "pweight", "final_weight", "Weight (final)"]
)
def test_the_weight_column_is_found_by_its_name(name):
    microdata = parse_microdata_csv(rows_csv(sample_rows(), header=["Age", "Sex", "Region", name]), filename="x.csv")
    assert microdata.weight_column == name
    assert microdata.columns == ["age", "gender", "region"]


def test_a_named_weight_column_is_used_and_a_missing_one_is_named():
    header = ["Age", "Sex", "Region", "w_2018"]
    microdata = parse_microdata_csv(rows_csv(sample_rows(), header=header), filename="x.csv", weight_column="W_2018")
    assert microdata.weight_column == "w_2018"
    error = error_of(rows_csv(sample_rows()), weight_column="wt_final")
    assert "no column “wt_final”" in error.message and "Age, Sex, Region, weight" in error.message
    assert error.extra["fields"] == {"weight_column": [error.message]}


def test_no_weight_column_says_which_headers_were_found_and_what_is_needed():
    error = error_of(rows_csv(sample_rows(), header=["Age", "Sex", "Region", "Score"]))
    assert "No weight column found" in error.message
    assert "Age, Sex, Region, Score" in error.message
    assert "named “weight”" in error.message


def test_several_weight_like_columns_must_be_chosen():
    rows = [[*row, 1] for row in sample_rows()]
    error = error_of(rows_csv(rows, header=["Age", "Sex", "Region", "weight_a", "weight_b"]))
    assert "Several columns look like weights (weight_a, weight_b)" in error.message


def test_bad_weights_give_the_count_and_first_five_rows():
    rows = sample_rows()
    for index in (0, 3, 5, 6, 7, 9, 12):
        rows[index][3] = "n/a" if index % 2 else "-1"
    error = error_of(rows_csv(rows))
    assert "“weight” has 7 values that are not numbers of 0 or more" in error.message
    assert "rows 2, 5, 7, 8, 9 and 2 more" in error.message
    zero = [[*row[:3], 0] for row in sample_rows()]
    assert "Every weight in “weight” is 0" in error_of(rows_csv(zero)).message


def test_unknown_categories_name_the_column_count_and_rows():
    rows = sample_rows()
    for index, value in zip((1, 2, 4, 8, 10, 11), ("", "NA", "N/A", "null", ".", "?"), strict=True):
        rows[index][1] = value
    rows[20][2] = "-"
    error = error_of(rows_csv(rows))
    assert "“Sex” has 6 unknown values" in error.message
    assert "rows 3, 4, 6, 10, 12 and 1 more" in error.message
    assert "“Region” has 1 unknown values (blank, NA, N/A, null, ., ? or -) in rows 22" in error.message
    assert "Fill them in or remove those rows" in error.message
    assert error.extra["columns"] == ["Sex", "Region"]


def test_respondents_under_18_are_counted():
    rows = sample_rows()
    rows[4][0] = 16
    rows[9][0] = 17
    error = error_of(rows_csv(rows))
    assert "“Age” has 2 respondents under 18 (rows 6, 11)" in error.message


def test_a_continuous_column_must_be_binned_and_text_columns_have_a_limit():
    rows = [[*row, 1000 + index * 7] for index, row in enumerate(sample_rows(60))]
    error = error_of(rows_csv(rows, header=["Age", "Sex", "Region", "weight", "Income"]))
    assert "“Income” has 60 different numbers: it looks continuous; bin it into categories first" in error.message
    rows = [[*row, f"Job {index}"] for index, row in enumerate(sample_rows(60))]
    error = error_of(rows_csv(rows, header=["Age", "Sex", "Region", "weight", "Occupation"]))
    assert "“Occupation” has 60 different values; at most 40 categories" in error.message


def test_too_large_too_small_and_empty_files():
    big = b"Age,Sex,weight\n" + b"30,Female,1\n" * (MICRODATA_MAX_BYTES // 12 + 1)
    error = error_of(big)
    assert "the limit is 20 MB" in error.message and error.code == "file_too_large"
    many = b"Sex,weight\n" + b"Female,1\n" * (MICRODATA_MAX_ROWS + 1)
    error = error_of(many)
    assert "100,001 rows; the limit is 100,000" in error.message and error.code == "file_too_large"
    assert "29 respondent rows; at least 30" in error_of(rows_csv(sample_rows(29))).message
    assert "empty" in error_of(b"").message


def test_a_file_with_only_a_weight_is_refused():
    data = b"weight\n" + b"1\n" * 40
    assert "no demographic column besides the weight “weight”" in error_of(data).message


def test_identifier_columns_are_left_out():
    rows = [[index, *row] for index, row in enumerate(sample_rows())]
    microdata = parse_microdata_csv(rows_csv(rows, header=["respondent_id", *HEADER]), filename="x.csv")
    assert microdata.columns == ["age", "gender", "region"]
    assert microdata.ignored_columns == ["respondent_id"]


def test_stray_values_and_duplicate_columns_are_named():
    lines = rows_csv(sample_rows()).decode().splitlines()
    lines[5] += ",extra"
    assert "Row 6 has 5 values but the header has 4 columns" in error_of("\n".join(lines).encode()).message
    rows = [[*row[:2], row[1], row[3]] for row in sample_rows()]
    error = error_of(rows_csv(rows, header=["Age", "Sex", "Gender", "weight"]))
    assert "“Sex” and “Gender” are the same dimension" in error.message


def test_semicolons_decimal_commas_and_windows_1252():
    rows = [[30 + index % 40, "Frau" if index % 2 else "Männer", "Süd", "1,5"] for index in range(40)]
    text = rows_csv(rows, delimiter=";").decode().replace("Age;Sex;Region;weight", "Alter;Geschlecht;Region;Gewicht")
    microdata = parse_microdata_csv(text.encode("cp1252"), filename="x.csv", weight_column="Gewicht")
    assert microdata.weights == [1.5] * 40
    assert microdata.columns == ["alter", "geschlecht", "region"]
    assert {row["geschlecht"] for row in microdata.rows} == {"Frau", "Männer"}


def test_microdata_round_trips_through_json():
    microdata = parse_microdata_csv(rows_csv(sample_rows()), filename="x.csv")
    data = json.loads(json.dumps(microdata.to_json(), sort_keys=True))
    assert Microdata.from_json(data) == microdata


def test_category_order():
    assert category_order(["65+", "18-24", "35-44"]) == ["18-24", "35-44", "65+"]
    assert category_order(["$50k-$100k", "Over $100k", "Under $25k", "$25k-$50k"]) == [
        "Under $25k",
        "$25k-$50k",
        "$50k-$100k",
        "Over $100k",
    ]
    assert category_order(["south", "North", "East"]) == ["East", "North", "south"]
