"""Uploaded microdata: one row per real respondent with a survey weight.

A panel drawn from microdata samples whole rows in proportion to their weights, so the joint structure
of the sample (age × income, …) is kept, not only its marginals. Parsing checks everything a researcher
can get wrong in such a file and says which column and which rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from panels.population import (
    Dimension,
    PanelInputError,
    Population,
    check_upload_size,
    clean_text,
    decode_upload,
    dimension_key,
    parse_number,
    read_rows,
    slugify,
    sniff_delimiter,
)

MICRODATA_MAX_BYTES = 20 * 1024 * 1024
MICRODATA_MAX_ROWS = 100_000
MICRODATA_MIN_ROWS = 30
MAX_CATEGORIES = 40
WEIGHT_NAMES = ("weight", "weights", "wt", "wgt", "pweight", "perwt", "finalwt")
UNKNOWN_VALUES = frozenset({"", "na", "n/a", "null", ".", "?", "-"})
# Identifier columns carry no demographic information: they are left out (and said so).
ID_NAMES = frozenset({"id", "respondent", "respondent_id", "respid", "caseid", "case_id", "serial", "uuid", "row_id"})
AGE_BANDS = (("18-24", 18, 24), ("25-34", 25, 34), ("35-44", 35, 44), ("45-54", 45, 54), ("55-64", 55, 64))
AGE_TOP_BAND = ("65+", 65)
SHOW_ROWS = 5

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_BELOW = re.compile(r"^\s*(under|less than|below|up to|<)", re.IGNORECASE)


def _rows_text(numbers: list[int]) -> str:
    shown = ", ".join(str(number) for number in numbers[:SHOW_ROWS])
    more = len(numbers) - SHOW_ROWS
    return f"{shown} and {more:,} more" if more > 0 else shown


def _first_number(text: str) -> float | None:
    match = _NUMBER.search(text)
    return float(match.group().replace(",", "")) if match else None


def category_order(values) -> list[str]:
    """Display order of a column's categories: age bands and numbers ascending, ranges by their first
    number ("Under $15k" before "$15k-$50k"), anything else alphabetically."""
    values = list(dict.fromkeys(values))
    band_order = [band for band, _, _ in AGE_BANDS] + [AGE_TOP_BAND[0]]
    if all(value in band_order for value in values):
        return [band for band in band_order if band in values]
    numbers = {value: _first_number(value) for value in values}
    if all(number is not None for number in numbers.values()):
        return sorted(values, key=lambda value: (numbers[value], 0 if _BELOW.match(value) else 1, value.casefold()))
    return sorted(values, key=lambda value: (value.casefold(), value))


def age_band(age: float) -> str:
    for band, low, high in AGE_BANDS:
        if low <= age <= high:
            return band
    return AGE_TOP_BAND[0]


@dataclass
class Microdata:
    """Respondents' categorical demographics (``rows``, by column key) and their weights."""

    columns: list[str]
    labels: dict[str, str]
    rows: list[dict[str, str]]
    weights: list[float]
    weight_column: str
    ignored_columns: list[str] = field(default_factory=list)

    def categories(self, key: str) -> list[str]:
        return category_order(row[key] for row in self.rows)

    def to_json(self) -> dict:
        # Lists, not objects: stored as Postgres jsonb, objects lose their key order (and rows as lists are
        # a third of the size).
        return {
            "columns": list(self.columns),
            "labels": [[key, self.labels[key]] for key in self.columns],
            "rows": [[row[key] for key in self.columns] for row in self.rows],
            "weights": list(self.weights),
            "weight_column": self.weight_column,
            "ignored_columns": list(self.ignored_columns),
        }

    @classmethod
    def from_json(cls, data: dict) -> Microdata:
        columns = list(data["columns"])
        labels = data["labels"]
        labels = dict(labels.items() if isinstance(labels, dict) else labels)
        rows = [dict(row) if isinstance(row, dict) else dict(zip(columns, row, strict=True)) for row in data["rows"]]
        return cls(
            columns=columns,
            labels={key: labels.get(key, key) for key in columns},
            rows=rows,
            weights=[float(weight) for weight in data["weights"]],
            weight_column=data["weight_column"],
            ignored_columns=list(data.get("ignored_columns") or []),
        )

    def population(self, *, name: str) -> Population:
        """The weighted marginals of every column, as a target population."""
        total = math.fsum(self.weights)
        dimensions = []
        for key in self.columns:
            sums: dict[str, float] = {}
            for row, weight in zip(self.rows, self.weights, strict=True):
                sums[row[key]] = sums.get(row[key], 0.0) + weight
            dimensions.append(
                Dimension(
                    key=key,
                    label=self.labels[key],
                    shares={category: sums[category] / total for category in self.categories(key)},
                    source=f"Uploaded microdata {name}, weighted by {self.weight_column}",
                )
            )
        name = clean_text(name) or "Uploaded microdata"
        return Population(key=slugify(name) or "microdata", name=name, country="", dimensions=tuple(dimensions))


def _find_weight_column(headers: list[str], weight_column: str | None) -> int:
    slugs = [slugify(header) for header in headers]
    if weight_column:
        wanted = clean_text(weight_column)
        for index, header in enumerate(headers):
            if header == wanted or header.casefold() == wanted.casefold() or slugs[index] == slugify(wanted):
                return index
        raise PanelInputError(
            f"There is no column “{wanted}” in the file. Its columns are: {', '.join(headers)}. Choose the one "
            "with each respondent's survey weight.",
            field="weight_column",
        )
    for name in WEIGHT_NAMES:
        for index, header in enumerate(headers):
            if header.casefold() == name or slugs[index] == name:
                return index
    candidates = [
        index
        for index, header in enumerate(headers)
        if header.casefold().startswith("weight")
        or header.casefold().endswith("weight")
        or slugs[index].startswith("weight")
        or slugs[index].endswith("weight")
    ]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise PanelInputError(
            f"Several columns look like weights ({', '.join(headers[index] for index in candidates)}). Choose "
            "which one is the survey weight.",
            field="weight_column",
        )
    raise PanelInputError(
        f"No weight column found. The columns are: {', '.join(headers)}. A column named “weight” with each "
        "respondent's survey weight is needed (if the sample is unweighted, add a weight column of 1s).",
        field="weight_column",
    )


def parse_microdata_csv(data: bytes, *, filename: str, weight_column: str | None = None) -> Microdata:
    """Microdata from a CSV: a header row, one row per respondent, a weight column (found by name when
    ``weight_column`` is None) and categorical demographic columns (a numeric ``age`` is banded)."""
    what = f"microdata “{filename}”" if filename else "microdata"
    check_upload_size(data, limit=MICRODATA_MAX_BYTES, what=what)
    text = decode_upload(data)
    delimiter = sniff_delimiter(text)
    rows = read_rows(text, delimiter)
    if not rows:
        raise PanelInputError(f"The {what} file is empty. Upload a CSV with a header row and one row per respondent.")
    header_row, raw_headers = rows[0]
    body = rows[1:]
    if len(body) > MICRODATA_MAX_ROWS:
        raise PanelInputError(
            f"The {what} file has {len(body):,} rows; the limit is {MICRODATA_MAX_ROWS:,}. Upload a sample of "
            "at most that many respondents.",
            code="file_too_large",
        )
    if len(body) < MICRODATA_MIN_ROWS:
        raise PanelInputError(
            f"The {what} file has {len(body)} respondent rows; at least {MICRODATA_MIN_ROWS} are needed to "
            "sample a panel from it."
        )
    headers = [clean_text(header) for header in raw_headers]
    while headers and not headers[-1]:
        headers.pop()  # a trailing delimiter
    for index, header in enumerate(headers):
        if not header:
            raise PanelInputError(f"Column {index + 1} has no name in the header row (row {header_row}). Name it.")
    weight_index = _find_weight_column(headers, weight_column)

    keys: dict[int, str] = {}
    ignored: list[str] = []
    seen: dict[str, str] = {}
    for index, header in enumerate(headers):
        if index == weight_index:
            continue
        key = dimension_key(header)
        if key in ID_NAMES or key.endswith("_id"):
            ignored.append(header)
            continue
        if key in seen:
            raise PanelInputError(
                f"The columns “{seen[key]}” and “{header}” are the same dimension ({key}). Keep one of them."
            )
        seen[key] = header
        keys[index] = key
    if not keys:
        raise PanelInputError(
            f"The file has no demographic column besides the weight “{headers[weight_index]}”. Add columns such "
            "as age, gender or region."
        )

    decimal_comma = delimiter != ","
    weights: list[float] = []
    bad_weights: list[int] = []
    values: dict[int, list[str]] = {index: [] for index in keys}
    unknown: dict[int, list[int]] = {index: [] for index in keys}
    canonical: dict[int, dict[str, str]] = {index: {} for index in keys}
    for number, cells in body:
        if len(cells) > len(headers) and any(cells[len(headers) :]):
            raise PanelInputError(
                f"Row {number} has {len(cells)} values but the header has {len(headers)} columns. Check for a "
                "stray delimiter in that row."
            )
        weight_text = cells[weight_index] if weight_index < len(cells) else ""
        weight = parse_number(weight_text, decimal_comma=decimal_comma)
        if weight is None or weight < 0:
            bad_weights.append(number)
            weight = 0.0
        weights.append(weight)
        for index in keys:
            value = clean_text(cells[index]) if index < len(cells) else ""
            if value.casefold() in UNKNOWN_VALUES:
                unknown[index].append(number)
            values[index].append(canonical[index].setdefault(value, value))
    weight_label = headers[weight_index]
    if bad_weights:
        raise PanelInputError(
            f"The weight column “{weight_label}” has {len(bad_weights):,} values that are not numbers of 0 or "
            f"more (rows {_rows_text(bad_weights)}). Fix those weights.",
            field="file",
            extra={"rows": bad_weights[:SHOW_ROWS]},
        )
    if not math.fsum(weights) > 0:
        raise PanelInputError(f"Every weight in “{weight_label}” is 0. Give the respondents their survey weights.")
    problems = [
        f"“{headers[index]}” has {len(numbers):,} unknown values (blank, NA, N/A, null, ., ? or -) in rows "
        f"{_rows_text(numbers)}"
        for index, numbers in unknown.items()
        if numbers
    ]
    if problems:
        raise PanelInputError(
            f"Unknown categories: {'; '.join(problems)}. Fill them in or remove those rows.",
            extra={"columns": [headers[index] for index, numbers in unknown.items() if numbers]},
        )

    for index, key in keys.items():
        column = values[index]
        distinct = set(column)
        numeric = {value: parse_number(value, decimal_comma=decimal_comma) for value in distinct}
        all_numeric = all(number is not None for number in numeric.values())
        if key == "age" and all_numeric:
            young = [number for (number, _), value in zip(body, column, strict=True) if (numeric[value] or 0) < 18]
            if young:
                raise PanelInputError(
                    f"“{headers[index]}” has {len(young):,} respondents under 18 (rows {_rows_text(young)}). Panels "
                    "are of adults: remove those rows."
                )
            bands = {value: age_band(numeric[value] or 0) for value in distinct}
            values[index] = [bands[value] for value in column]
            continue
        if len(distinct) > MAX_CATEGORIES:
            if all_numeric:
                raise PanelInputError(
                    f"“{headers[index]}” has {len(distinct):,} different numbers: it looks continuous; bin it into "
                    f"categories first (at most {MAX_CATEGORIES})."
                )
            raise PanelInputError(
                f"“{headers[index]}” has {len(distinct):,} different values; at most {MAX_CATEGORIES} categories "
                "per column are allowed. Group them first."
            )

    columns = list(keys.values())
    labels = {key: headers[index] for index, key in keys.items()}
    records = [{key: values[index][row] for index, key in keys.items()} for row in range(len(body))]
    return Microdata(
        columns=columns,
        labels=labels,
        rows=records,
        weights=weights,
        weight_column=weight_label,
        ignored_columns=ignored,
    )
