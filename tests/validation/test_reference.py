"""Reading a real survey's CSV and checking the researcher's mapping: every bad input is refused with a message
that names the column, line or question and says what to do."""

import pytest

from validation import reference
from validation.reference import (
    NOT_STATED,
    Mapping,
    ReferenceInputError,
    ReferenceTable,
    demographic_values,
    read_reference_csv,
    responses,
    suggest_mapping,
    validate_mapping,
    weights,
)

SURVEY = (
    "respondent_id,age,sex,degree,spend_health,natfare,comment,wtssall\n"
    "1,34,Male,High school,1,Too little,The government should spend far more on roads and bridges near me,1.2\n"
    "2,51,Female,Bachelor's,3,About right,No opinion really; everything seems fine to me at the moment,0.8\n"
    "3,22,Female,,2,Too much,Healthcare is the biggest problem in this country and nothing is being done,1.0\n"
    "4,45,Male,Graduate,NA,Too little,Too much waste everywhere in the budget; cut it down now please,1.1\n"
    "5,67,Female,High school,IAP,DK,,0.9\n"
)


def _table(text: str = SURVEY) -> ReferenceTable:
    return read_reference_csv(text.encode(), filename="survey.csv")


def _mapping(**changes) -> dict:
    mapping = {
        "questions": [
            {"column": "spend_health", "kind": "scale", "scale": ["1", "2", "3"], "label": "Health spending"},
            {"column": "natfare", "kind": "scale", "scale": ["Too little", "About right", "Too much"]},
            {"column": "comment", "kind": "open"},
        ],
        "demographics": [
            {"column": "age", "dimension": "age"},
            {"column": "sex", "dimension": "gender"},
            {"column": "degree", "dimension": "education"},
        ],
        "ignored": ["respondent_id"],
        "weight": "wtssall",
    }
    mapping.update(changes)
    return mapping


def _error(call, *args, **kwargs) -> ReferenceInputError:
    with pytest.raises(ReferenceInputError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == "validation_error"
    return caught.value


# --- reading -----------------------------------------------------------------------------------------------


def test_reads_columns_rows_and_encoding():
    table = _table()
    assert table.columns[:3] == ["respondent_id", "age", "sex"]
    assert len(table.rows) == 5
    assert table.rows[2]["degree"] == ""
    assert table.rows[1]["degree"] == "Bachelor's"
    assert table.encoding == "utf-8"
    assert table.column_values("natfare") == ["Too little", "About right", "Too much", "Too little", "DK"]


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_sniffs_semicolon_and_tab_delimiters(delimiter):
    lines = [["q1", "region", "note"], ["1", "North, East", "a, b"], ["2", "South", "c"]]
    text = "".join(delimiter.join(cells) + "\n" for cells in lines)
    table = _table(text)
    assert table.columns == ["q1", "region", "note"]
    assert table.delimiter == delimiter
    assert table.rows[0]["region"] == "North, East"


def test_utf8_bom_and_windows_1252_are_decoded():
    bom = read_reference_csv(b"\xef\xbb\xbfname,q1\nZo\xc3\xab,1\n", filename="bom.csv")
    assert bom.columns == ["name", "q1"]
    assert bom.rows[0]["name"] == "Zoë"
    windows = read_reference_csv("name,q1\nJosé,1\nRenée – ok,2\n".encode("cp1252"), filename="win.csv")
    assert windows.encoding == "cp1252"
    assert windows.rows[1]["name"] == "Renée – ok"
    # 0x81 is undefined in Windows-1252: Latin-1 is the last resort.
    latin = read_reference_csv(b"name,q1\nA\x81\xe9,1\n", filename="latin.csv")
    assert latin.encoding == "latin-1"


def test_round_trips_through_json():
    table = _table()
    again = ReferenceTable.from_json(table.to_json())
    assert again == table


def test_empty_file_is_refused():
    assert "empty" in _error(read_reference_csv, b"  \n\n", filename="survey.csv").message


def test_header_without_rows_is_refused():
    message = _error(read_reference_csv, b"q1,q2\n", filename="survey.csv").message
    assert "no respondents" in message


def test_no_header_row_is_refused():
    message = _error(read_reference_csv, b"1,3,2\n2,2,1\n", filename="survey.csv").message
    assert "no header row" in message
    assert "1, 3, 2" in message
    assert "Add a first row naming each column" in message


def test_duplicate_headers_are_refused_naming_them():
    error = _error(read_reference_csv, b"q1,q2,q1\n1,2,3\n", filename="survey.csv")
    assert "“q1” more than once" in error.message
    assert error.extra["columns"] == ["q1"]


def test_blank_header_over_data_is_refused_but_trailing_empty_columns_are_dropped():
    error = _error(read_reference_csv, b"q1,,q3\n1,2,3\n", filename="survey.csv")
    assert "no header for column 2 (B)" in error.message
    table = read_reference_csv(b"q1,q2,,\n1,2,,\n3,4,,\n", filename="survey.csv")
    assert table.columns == ["q1", "q2"]


def test_mixed_encodings_are_refused_naming_the_first_bad_line():
    data = (
        b"name,comment\n"
        + "Zoë,naïve answer\n".encode()  # a UTF-8 line
        + b"Ann,plain\n"
        + "José,café\n".encode("cp1252")  # then a line saved as Windows-1252
    )
    error = _error(read_reference_csv, data, filename="merged.csv")
    assert "mixes text encodings" in error.message
    assert "line 4 is not" in error.message
    assert "line 2 is UTF-8" in error.message
    assert "CSV UTF-8" in error.message
    assert error.extra["line"] == 4


def test_mixed_encodings_within_one_line_are_refused():
    data = b"name,comment\n" + "José".encode("cp1252") + ",it’s fine\n".encode()
    error = _error(read_reference_csv, data, filename="merged.csv")
    assert "mixes text encodings" in error.message
    assert "line 2" in error.message


def test_a_file_over_the_size_limit_is_refused(monkeypatch):
    monkeypatch.setattr(reference, "REFERENCE_MAX_BYTES", 100)
    data = ("q1\n" + "1\n" * 60).encode()
    error = _error(read_reference_csv, data, filename="big.csv")
    assert "“big.csv” is 0.0 MB; the limit is 0.0 MB" in error.message
    assert error.extra == {"size": len(data), "limit": 100}
    assert read_reference_csv(data[:100], filename="small.csv").columns == ["q1"]


def test_the_real_size_limit_is_20_megabytes():
    data = b"q1\n" + b"1\n" * (10 * 1024 * 1024)
    assert len(data) > 20 * 1024 * 1024
    assert "the limit is 20.0 MB" in _error(read_reference_csv, data, filename="big.csv").message


def test_too_many_rows_are_refused(monkeypatch):
    monkeypatch.setattr(reference, "REFERENCE_MAX_ROWS", 3)
    error = _error(read_reference_csv, b"q1\n1\n2\n3\n4\n", filename="survey.csv")
    assert "has 4 respondents; the limit is 3" in error.message
    assert read_reference_csv(b"q1\n1\n2\n3\n", filename="survey.csv").rows[-1] == {"q1": "3"}


def test_a_row_with_too_many_values_names_its_line():
    error = _error(read_reference_csv, b"q1,q2\n1,2\n3,4,5\n", filename="survey.csv")
    assert "Line 3" in error.message
    assert "3 values but the header names 2 columns" in error.message


def test_an_excel_workbook_is_refused():
    assert "Excel" in _error(read_reference_csv, b"PK\x03\x04rest", filename="survey.xlsx").message


# --- suggesting a mapping ----------------------------------------------------------------------------------


def test_suggest_mapping_guesses_questions_demographics_weight_and_ids():
    suggestion = suggest_mapping(_table())
    questions = {q["column"]: q for q in suggestion["questions"]}
    assert questions["spend_health"]["kind"] == "scale"
    assert questions["spend_health"]["scale"] == ["1", "2", "3"]
    assert questions["natfare"]["kind"] == "scale"  # known ordered labels
    assert questions["natfare"]["scale"] == ["Too little", "About right", "Too much"]
    assert questions["comment"]["kind"] == "open"
    dimensions = {d["column"]: d["dimension"] for d in suggestion["demographics"]}
    assert dimensions == {"age": "age", "sex": "gender", "degree": "education"}
    assert suggestion["weight"] == "wtssall"
    assert suggestion["ignored"] == ["respondent_id"]
    # The suggestion, as is, passes the checks.
    validate_mapping(_table(), suggestion)


def test_suggest_mapping_makes_few_valued_text_a_choice():
    rows = "\n".join(f"{i},{['Bus', 'Car', 'Bike'][i % 3]}" for i in range(12))
    suggestion = suggest_mapping(_table("id,commute\n" + rows + "\n"))
    assert suggestion["questions"] == [{"column": "commute", "kind": "choice", "scale": None, "label": "Commute"}]


# --- checking a mapping ------------------------------------------------------------------------------------


def test_validate_mapping_counts_missing_values_and_keeps_the_wording():
    mapping = _mapping()
    mapping["questions"][0]["text"] = "Are we spending too much on health?"
    checked = validate_mapping(_table(), mapping)
    health = checked.question("spend_health")
    assert (health["n_answered"], health["n_missing"]) == (3, 2)  # "NA" and "IAP"
    assert health["text"] == "Are we spending too much on health?"
    assert checked.question("natfare")["n_missing"] == 1  # "DK"
    assert checked.question("natfare")["label"] == "Natfare"
    assert checked.weight == "wtssall"


def test_a_column_not_in_the_file_is_named():
    mapping = _mapping(demographics=[{"column": "income", "dimension": "income"}])
    error = _error(validate_mapping, _table(), mapping)
    assert "“income” is not a column in this file" in error.message


def test_a_column_used_twice_is_refused():
    mapping = _mapping(demographics=[{"column": "spend_health", "dimension": "health"}])
    message = _error(validate_mapping, _table(), mapping).message
    assert "“spend_health” is mapped more than once (a question and a demographic)" in message


def test_no_question_mapped_is_refused():
    assert "No question is mapped" in _error(validate_mapping, _table(), _mapping(questions=[])).message


def test_unmapped_columns_are_fine_unless_strict():
    mapping = _mapping(ignored=[], demographics=[{"column": "age", "dimension": "age"}])
    validate_mapping(_table(), mapping)
    error = _error(validate_mapping, _table(), {**mapping, "strict": True})
    assert "Unmapped columns: respondent_id, sex, degree." in error.message
    assert error.extra["columns"] == ["respondent_id", "sex", "degree"]
    validate_mapping(_table(), {**_mapping(), "strict": True})


def test_scale_values_outside_the_scale_are_named_with_counts():
    text = "spend_health\n" + "\n".join(["1", "2", "8", "3", "9", "8", "DK", "2", "9", "8", "8", "9"]) + "\n"
    mapping = {"questions": [{"column": "spend_health", "kind": "scale", "scale": ["1", "2", "3"]}]}
    error = _error(validate_mapping, _table(text), mapping)
    assert error.message == (
        "“spend_health”: 7 rows have values outside the scale 1–3 (values 8, 9). Mark them missing or fix the scale."
    )
    assert error.extra["rows"] == 7
    # Marking them missing is the fix the message offers.
    mapping["questions"][0]["missing"] = ["8", "9"]
    checked = validate_mapping(_table(text), mapping)
    assert checked.question("spend_health")["n_missing"] == 8
    assert responses(_table(text), checked, "spend_health") == [0, 1, None, 2, None, None, None, 1] + [None] * 4


def test_a_text_scale_value_outside_is_quoted():
    mapping = {"questions": [{"column": "natfare", "kind": "scale", "scale": ["Too little", "Too much"]}]}
    message = _error(validate_mapping, _table(), mapping).message
    assert message.startswith(
        "“natfare”: 1 row has a value outside the scale Too little, Too much (value “About right”). Mark them"
    )


def test_a_choice_with_more_than_30_options_is_refused():
    text = "brand\n" + "\n".join(f"Brand {i}" for i in range(31)) + "\n"
    message = _error(validate_mapping, _table(text), {"questions": [{"column": "brand", "kind": "choice"}]}).message
    assert "has 31 different answers; a choice question can have at most 30" in message
    ok = "brand\n" + "\n".join(f"Brand {i}" for i in range(30)) + "\n"
    assert len(validate_mapping(_table(ok), {"questions": [{"column": "brand", "kind": "choice"}]}).questions) == 1


def test_an_open_question_with_no_text_is_refused():
    text = "q1,why\n1,\n2,NA\n3,\n"
    message = _error(validate_mapping, _table(text), {"questions": [{"column": "why", "kind": "open"}]}).message
    assert "has no text answers: all 3 rows are empty or missing" in message


def test_two_columns_for_one_demographic_are_refused():
    mapping = _mapping(
        demographics=[{"column": "age", "dimension": "age"}, {"column": "degree", "dimension": "Age"}],
        ignored=["respondent_id"],
    )
    assert "(age, degree) are mapped to age" in _error(validate_mapping, _table(), mapping).message


def test_a_weight_that_is_not_a_number_is_refused():
    mapping = _mapping(weight="sex", demographics=[{"column": "age", "dimension": "age"}])
    assert "weight column “sex”" in _error(validate_mapping, _table(), mapping).message


# --- answers through the mapping ---------------------------------------------------------------------------


def test_responses_per_kind_and_from_the_stored_mapping():
    table = _table()
    checked = validate_mapping(table, _mapping())
    assert responses(table, checked, "spend_health") == [0, 2, 1, None, None]
    assert responses(table, checked, "natfare") == [0, 1, 2, 0, None]
    assert responses(table, checked, "comment")[4] is None
    assert responses(table, checked, "comment")[0].startswith("The government")
    stored = checked.to_json()
    assert responses(table, stored, stored["questions"][1]) == [0, 1, 2, 0, None]
    assert Mapping.from_json(stored) == checked


def test_choice_responses_use_the_options_spelling():
    text = "commute\nBus\nbus\nCar\nNA\nBus\n"
    checked = validate_mapping(_table(text), {"questions": [{"column": "commute", "kind": "choice"}]})
    assert checked.question("commute")["options"] == ["Bus", "Car"]  # most common first, case merged
    assert responses(_table(text), checked, "commute") == ["Bus", "Bus", "Car", None, "Bus"]


def test_numeric_scale_matches_whatever_the_number_format():
    text = "q\n1.0\n2\n 3 \n"
    checked = validate_mapping(_table(text), {"questions": [{"column": "q", "kind": "scale", "scale": [1, 2, 3]}]})
    assert responses(_table(text), checked, "q") == [0, 1, 2]


def test_demographic_values_and_weights():
    table = _table()
    checked = validate_mapping(table, _mapping())
    values = demographic_values(table, checked)
    assert values[0] == {"age": "34", "gender": "Male", "education": "High school"}
    assert values[2]["education"] == NOT_STATED
    assert weights(table, checked) == [1.2, 0.8, 1.0, 1.1, 0.9]
    assert demographic_values(table, checked.to_json()) == values
