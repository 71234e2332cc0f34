"""Reading a real survey: a CSV of respondents (one row each, a column per answer or demographic), and
the mapping that says which columns are questions (with their scales), which are demographics, which
one is a weight and which are ignored.

No Django models here: the table is plain data (``ReferenceTable.to_json`` is what gets stored), and every
error is a ``ReferenceInputError`` whose message names the column, the line or the question and says what
to do about it.

Decoding: UTF-8 (with or without a byte-order mark), UTF-16 when it starts with a byte-order mark, else
Windows-1252 and finally Latin-1 (which never fails). A file whose parts were saved in different encodings
(some lines valid UTF-8 with accents, others not) is refused rather than guessed: half of it would come out
garbled whichever way it was read.
"""

import csv
import io
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cohorta.errors import ApplicationError

REFERENCE_MAX_BYTES = 20 * 1024 * 1024
REFERENCE_MAX_ROWS = 50_000
MIN_RESPONDENTS_SPLIT_HALF = 20
CHOICE_MAX_OPTIONS = 30
OPEN_MIN_MEAN_LENGTH = 40  # a text column whose answers average more characters than this is free text
SCALE_MAX_POINTS = 11  # 0–10 is the longest numeric scale suggested
NOT_STATED = "Not stated"
KINDS = ("scale", "choice", "open")
DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}

# Cells that mean "no answer" in survey exports (GSS: IAP = inapplicable, DK = don't know). Compared casefolded.
MISSING_VALUES = frozenset(
    v.casefold() for v in ("", "NA", "N/A", ".", "-", "IAP", "DK", "Don't know", "Don’t know", "NaN")
)

# Ordered answer labels recognised in text columns, so "Too little / About right / Too much" is suggested as a
# scale in that order. The shortest list holding every value seen wins.
KNOWN_SCALES: tuple[tuple[str, ...], ...] = (
    ("Too little", "About right", "Too much"),
    ("Strongly disagree", "Disagree", "Agree", "Strongly agree"),
    ("Strongly disagree", "Disagree", "Neither agree nor disagree", "Agree", "Strongly agree"),
    ("Strongly disagree", "Disagree", "Neutral", "Agree", "Strongly agree"),
    (
        "Strongly disagree",
        "Disagree",
        "Somewhat disagree",
        "Neither agree nor disagree",
        "Somewhat agree",
        "Agree",
        "Strongly agree",
    ),
    ("Poor", "Fair", "Good", "Very good", "Excellent"),
    ("Never", "Rarely", "Sometimes", "Often", "Always"),
    ("Very unlikely", "Unlikely", "Neither likely nor unlikely", "Likely", "Very likely"),
    ("Very dissatisfied", "Dissatisfied", "Neither satisfied nor dissatisfied", "Satisfied", "Very satisfied"),
    ("Not at all important", "Slightly important", "Moderately important", "Very important", "Extremely important"),
)

# Header words that mark a demographic column, and the dimension each one stands for.
DEMOGRAPHIC_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), dimension)
    for pattern, dimension in (
        (r"^(age|ages|agegroup|agecat|ageband|agegrp)$", "age"),
        (r"^(sex|gender)$", "gender"),
        (r"^(educ\w*|degree|schooling|collegeed|edu)$", "education"),
        (r"^(income|inc|rincom\w*|hhinc\w*|faminc\w*|realinc\w*)$", "income"),
        (r"^(race|ethnic\w*|hispanic|racecen\w*)$", "race"),
        (r"^(region|state|province|division|statefip)$", "region"),
        (r"^(party|partyid|pid|pid\d)$", "party"),
        (r"^(ideo\w*|polviews)$", "ideology"),
        (r"^(marital|married|marstat)$", "marital_status"),
        (r"^(relig\w*)$", "religion"),
        (r"^(employ\w*|occupation|wrkstat|occ)$", "employment"),
        (r"^(urban\w*|rural|urbanicity)$", "urbanicity"),
        (r"^(country|nation)$", "country"),
    )
)
DIMENSION_LABELS = {
    "age": "Age",
    "gender": "Gender",
    "education": "Education",
    "income": "Income",
    "race": "Race and ethnicity",
    "region": "Region",
    "party": "Party",
    "ideology": "Ideology",
    "marital_status": "Marital status",
    "religion": "Religion",
    "employment": "Employment",
    "urbanicity": "Urban or rural",
    "country": "Country",
}
_ID_WORDS = frozenset({"id", "respondent", "respid", "caseid", "uuid", "serial", "record", "responseid"})
_WEIGHT_WORDS = re.compile(r"^(weight\w*|wt\w*|wgt\w*|\w*weight)$")

# 3- and 4-byte UTF-8 sequences (curly quotes, dashes, €, emoji): in a Windows-1252 or Latin-1 file they only
# appear as mojibake, so one of them in a file that is not all UTF-8 means parts of it are.
_UTF8_LONG_SEQUENCE = re.compile(
    rb"\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


class ReferenceInputError(ApplicationError):
    """A reference file or mapping the researcher has to fix; the message says what and how."""

    code = "validation_error"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message, code="validation_error", extra=extra)


@dataclass
class ReferenceTable:
    """The respondents of a real survey as read from the file: headers and cells as text (surrounding
    spaces removed), nothing interpreted yet."""

    columns: list[str]
    rows: list[dict[str, str]]
    encoding: str
    delimiter: str = ","

    def to_json(self) -> dict:
        # Rows as lists in column order: a third of the size of a list of dicts once stored.
        return {
            "columns": list(self.columns),
            "rows": [[row.get(c, "") for c in self.columns] for row in self.rows],
            "encoding": self.encoding,
            "delimiter": self.delimiter,
        }

    @classmethod
    def from_json(cls, data: dict) -> "ReferenceTable":
        columns = [str(c) for c in data["columns"]]
        return cls(
            columns=columns,
            rows=[dict(zip(columns, (str(v) for v in values), strict=True)) for values in data["rows"]],
            encoding=str(data.get("encoding") or "utf-8"),
            delimiter=str(data.get("delimiter") or ","),
        )

    def column_values(self, column: str) -> list[str]:
        if column not in self.columns:
            raise ReferenceInputError(_not_a_column(column, self.columns), column=column)
        return [row.get(column, "") for row in self.rows]


@dataclass
class Mapping:
    """A checked mapping. Each question is ``{"column", "kind", "label", "text", "scale", "options", "missing",
    "n_answered", "n_missing"}`` (``text``: the question's wording when given; ``scale`` for a scale question,
    ``options`` for a choice, both ordered; ``missing``: extra codes that mean no answer);
    each demographic ``{"column", "dimension", "label"}``."""

    questions: list[dict]
    demographics: list[dict]
    weight: str | None
    ignored: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "questions": [dict(q) for q in self.questions],
            "demographics": [dict(d) for d in self.demographics],
            "weight": self.weight,
            "ignored": list(self.ignored),
        }

    @classmethod
    def from_json(cls, data: dict) -> "Mapping":
        """A mapping stored from ``to_json`` (already checked: not checked again)."""
        return cls(
            questions=[dict(q) for q in data.get("questions") or []],
            demographics=[dict(d) for d in data.get("demographics") or []],
            weight=data.get("weight") or None,
            ignored=list(data.get("ignored") or []),
        )

    def question(self, column: str) -> dict:
        for question in self.questions:
            if question["column"] == column:
                return question
        raise ReferenceInputError(f"“{column}” is not mapped as a question.", column=column)


# ---------------------------------------------------------------------------------------------------------
# Reading the file


def read_reference_csv(data: bytes, *, filename: str) -> ReferenceTable:
    """The table in an uploaded CSV (comma, semicolon or tab separated; the first row names the columns)."""
    name = filename or "The file"
    if len(data) > REFERENCE_MAX_BYTES:
        raise ReferenceInputError(
            f"“{name}” is {_megabytes(len(data))}; the limit is {_megabytes(REFERENCE_MAX_BYTES)}. "
            "Keep only the answer and demographic columns you need, or a sample of the rows, and upload it again.",
            size=len(data),
            limit=REFERENCE_MAX_BYTES,
        )
    if not data.strip():
        raise ReferenceInputError(f"“{name}” is empty. Export the survey responses as CSV and upload that file.")
    if data.startswith(b"PK\x03\x04"):
        raise ReferenceInputError(
            f"“{name}” is an Excel workbook (or another zip file), not a CSV. "
            "In Excel choose File › Save As › “CSV UTF-8” and upload that file."
        )
    text, encoding = _decode(data, name)
    if "\x00" in text:
        raise ReferenceInputError(
            f"“{name}” is not a text file (it contains binary data). Export the responses as CSV and upload that."
        )
    delimiter = _sniff_delimiter(text)
    records = _records(text, delimiter, name)
    if not records:
        raise ReferenceInputError(f"“{name}” is empty. Export the survey responses as CSV and upload that file.")
    header = records[0][1]
    columns, keep = _header(header, records[1:], name)
    body = records[1:]
    if not body:
        raise ReferenceInputError(
            f"“{name}” has a header row but no respondents below it. Upload the file with one row per respondent."
        )
    if len(body) > REFERENCE_MAX_ROWS:
        raise ReferenceInputError(
            f"“{name}” has {len(body):,} respondents; the limit is {REFERENCE_MAX_ROWS:,}. "
            "Upload a random sample of the rows (a few thousand is plenty for a validation).",
            rows=len(body),
            limit=REFERENCE_MAX_ROWS,
        )
    rows: list[dict[str, str]] = []
    for line, cells in body:
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
            raise ReferenceInputError(
                f"Line {line} of “{name}” has {len(cells)} values but the header names {len(header)} columns. "
                f"A text answer probably contains a {DELIMITER_NAMES[delimiter]} without quotes around it: "
                "fix that line (or re-export with quoted text) and upload again.",
                line=line,
            )
        cells = cells + [""] * (len(header) - len(cells))
        rows.append({column: cells[index].strip() for column, index in zip(columns, keep, strict=True)})
    return ReferenceTable(columns=columns, rows=rows, encoding=encoding, delimiter=delimiter)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _decode(data: bytes, name: str) -> tuple[str, str]:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise ReferenceInputError(
                f"“{name}” starts like UTF-16 text but is not valid UTF-16. Re-save it as “CSV UTF-8” and upload again."
            ) from None
    try:
        if data.startswith(b"\xef\xbb\xbf"):
            return data.decode("utf-8-sig"), "utf-8-sig"
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        first_bad_line = data.count(b"\n", 0, exc.start) + 1
    utf8_line = _first_utf8_accented_line(data)
    if utf8_line is not None or _UTF8_LONG_SEQUENCE.search(data):
        where = f" (line {utf8_line} is UTF-8)" if utf8_line is not None else ""
        raise ReferenceInputError(
            f"“{name}” mixes text encodings: parts of it are UTF-8{where} and line {first_bad_line} is not, "
            "so some accented letters would come out garbled. Open it in a spreadsheet or text editor, "
            "re-save the whole file as “CSV UTF-8” and upload it again.",
            line=first_bad_line,
        )
    for encoding in ("cp1252", "latin-1"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def _first_utf8_accented_line(data: bytes) -> int | None:
    """The first line that is valid UTF-8 and not plain ASCII (a line written by a UTF-8 program)."""
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            continue
        return number
    return None


def _sniff_delimiter(text: str) -> str:
    """The delimiter among , ; tab that splits the first lines into the same number (> 1) of columns,
    the most columns winning a tie; a comma when none does (a one-column file)."""
    sample = text[:65536]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    best, best_score = ",", (0.0, 1)
    for delimiter in DELIMITERS:
        try:
            widths = [len(r) for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if any(r)]
        except csv.Error:
            continue
        widths = widths[:50]
        if not widths or widths[0] < 2:
            continue
        score = (widths.count(widths[0]) / len(widths), widths[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _records(text: str, delimiter: str, name: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every row that is not blank."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records = []
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                records.append((reader.line_num, cells))
    except csv.Error as exc:
        raise ReferenceInputError(
            f"Line {reader.line_num} of “{name}” cannot be read as CSV ({exc}). "
            "Usually a quote is opened and never closed: fix that line and upload again.",
            line=reader.line_num,
        ) from None
    return records


def _header(header: list[str], body: list[tuple[int, list[str]]], name: str) -> tuple[list[str], list[int]]:
    """The column names and the cell index of each; blank trailing columns with no data are dropped."""
    names = [h.strip() for h in header]
    if len(names) > 1 and all(_number(h) is not None for h in names):
        shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
        raise ReferenceInputError(
            f"“{name}” has no header row: the first row is all numbers ({shown}), so it looks like a respondent, "
            "not column names. Add a first row naming each column (e.g. respondent_id, age, q1) and upload again.",
        )
    keep = []
    for index, column in enumerate(names):
        if column:
            keep.append(index)
            continue
        if any(index < len(cells) and cells[index].strip() for _, cells in body):
            raise ReferenceInputError(
                f"“{name}” has no header for column {index + 1} ({_column_letter(index)}), which has answers in it. "
                "The first row must name every column: add a name there and upload again.",
                column_number=index + 1,
            )
    columns = [names[i] for i in keep]
    repeated = [c for c, n in Counter(columns).items() if n > 1]
    if repeated:
        listed = ", ".join(f"“{c}”" for c in repeated)
        raise ReferenceInputError(
            f"The header row of “{name}” names {listed} more than once, so it is not clear which is which "
            "(or the first row is data rather than a header). Give every column a different name and upload again.",
            columns=repeated,
        )
    return columns, keep


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


# ---------------------------------------------------------------------------------------------------------
# Guessing a mapping


def is_missing(value: str, extra: frozenset[str] = frozenset()) -> bool:
    folded = value.strip().casefold()
    return folded in MISSING_VALUES or folded in extra


def _number(value: str) -> float | None:
    try:
        number = float(value.strip().replace(",", ".") if value.count(",") == 1 and "." not in value else value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _words(header: str) -> list[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", header)
    return [w for w in re.split(r"[^0-9a-z]+", spaced.casefold()) if w]


def _demographic_dimension(header: str) -> str | None:
    for word in [header.casefold().replace(" ", "").replace("_", ""), *_words(header)]:
        for pattern, dimension in DEMOGRAPHIC_WORDS:
            if pattern.match(word):
                return dimension
    return None


def _label(header: str) -> str:
    text = " ".join(header.replace("_", " ").split()) or header
    return text[:1].upper() + text[1:]


def _known_scale(values: set[str]) -> list[str] | None:
    folded = {v.casefold() for v in values}
    fits = [s for s in KNOWN_SCALES if folded <= {label.casefold() for label in s}]
    if len(folded) < 2 or not fits:
        return None
    scale = min(fits, key=len)
    seen = {v.casefold(): v for v in values}
    return [seen.get(label.casefold(), label) for label in scale]


def suggest_mapping(table: ReferenceTable) -> dict:
    """A first guess for the researcher to correct: which columns look like questions (and their scales),
    demographics, a weight, and which to ignore (identifiers, constants, columns that fit nothing)."""
    questions: list[dict] = []
    demographics: list[dict] = []
    ignored: list[str] = []
    weight: str | None = None
    used_dimensions: set[str] = set()
    n_rows = len(table.rows)
    for column in table.columns:
        values = [v for v in table.column_values(column) if not is_missing(v)]
        distinct = set(values)
        numbers = [_number(v) for v in values]
        numeric = bool(values) and all(n is not None for n in numbers)
        words = set(_words(column))
        if len(distinct) <= 1 or (words & _ID_WORDS and len(distinct) > 0.9 * len(values)):
            ignored.append(column)
            continue
        if weight is None and numeric and _WEIGHT_WORDS.match(column.casefold().replace(" ", "_")):
            weight = column
            continue
        dimension = _demographic_dimension(column)
        if dimension is not None and dimension not in used_dimensions:
            used_dimensions.add(dimension)
            demographics.append(
                {"column": column, "dimension": dimension, "label": DIMENSION_LABELS.get(dimension, _label(column))}
            )
            continue
        question: dict[str, Any] = {"column": column, "kind": None, "scale": None, "label": _label(column)}
        if numeric:
            integers = [int(n) for n in numbers if n is not None and n == int(n)]
            if len(integers) == len(values) and len(distinct) <= SCALE_MAX_POINTS:
                low, high = min(integers), max(integers)
                if high - low < SCALE_MAX_POINTS:
                    question.update(kind="scale", scale=[str(v) for v in range(low, high + 1)])
        else:
            mean_length = sum(len(v) for v in values) / len(values)
            known = _known_scale(distinct)
            if known is not None:
                question.update(kind="scale", scale=known)
            elif mean_length > OPEN_MIN_MEAN_LENGTH:
                question.update(kind="open")
            elif len({v.casefold() for v in distinct}) <= CHOICE_MAX_OPTIONS and len(distinct) < max(3, n_rows / 2):
                question.update(kind="choice")
        if question["kind"] is None:
            ignored.append(column)
        else:
            questions.append(question)
    return {"questions": questions, "demographics": demographics, "ignored": ignored, "weight": weight}


# ---------------------------------------------------------------------------------------------------------
# Checking a mapping


def _not_a_column(column: str, columns: list[str]) -> str:
    shown = ", ".join(f"“{c}”" for c in columns[:12]) + (", …" if len(columns) > 12 else "")
    return f"“{column}” is not a column in this file (its columns are {shown}). Check the spelling or re-upload."


def _as_text_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ReferenceInputError(f"{what} must be a list.")
    return [str(v).strip() for v in value]


def _shown_values(values: list[str], limit: int = 8) -> str:
    def show(value: str) -> str:
        return value if _number(value) is not None else f"“{value}”"

    ordered = sorted(values, key=lambda v: (_number(v) is None, _number(v) or 0.0, v.casefold()))
    text = ", ".join(show(v) for v in ordered[:limit])
    return text + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def _scale_text(scale: list[str]) -> str:
    numbers = [_number(v) for v in scale]
    if all(n is not None and n == int(n) for n in numbers) and len(scale) > 2:
        ints = [int(n) for n in numbers if n is not None]
        if ints == list(range(ints[0], ints[0] + len(ints))):
            return f"{ints[0]}–{ints[-1]}"
    return ", ".join(scale)


class _Lookup:
    """Finds a cell's position among ordered labels: the same text ignoring case and spaces, or the same number
    (so 2, 2.0 and " 2" are one answer)."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels
        self.text: dict[str, int] = {}
        self.number: dict[float, int] = {}
        for index, label in enumerate(labels):
            self.text.setdefault(label.strip().casefold(), index)
            number = _number(label)
            if number is not None:
                self.number.setdefault(number, index)

    def index(self, value: str) -> int | None:
        found = self.text.get(value.strip().casefold())
        if found is None:
            number = _number(value)
            found = self.number.get(number) if number is not None else None
        return found


def _clean_question(table: ReferenceTable, raw: Any) -> dict:
    if not isinstance(raw, dict) or not str(raw.get("column") or "").strip():
        raise ReferenceInputError("Each question needs the column it comes from.")
    column = str(raw["column"]).strip()
    if column not in table.columns:
        raise ReferenceInputError(_not_a_column(column, table.columns), column=column)
    kind = str(raw.get("kind") or "").strip()
    label = str(raw.get("label") or "").strip() or _label(column)
    if kind not in KINDS:
        raise ReferenceInputError(
            f"Choose what kind of question “{label}” (column “{column}”) is: a rating scale, a choice or open text.",
            column=column,
        )
    missing = _as_text_list(raw.get("missing"), f"The missing values of “{label}”")
    extra_missing = frozenset(v.casefold() for v in missing)
    cells = table.column_values(column)
    answered = [v for v in cells if not is_missing(v, extra_missing)]
    question: dict[str, Any] = {
        "column": column,
        "kind": kind,
        "label": label,
        "text": str(raw.get("text") or "").strip(),
        "scale": None,
        "options": None,
        "missing": missing,
        "n_answered": len(answered),
        "n_missing": len(cells) - len(answered),
    }
    if kind == "open":
        if not answered:
            raise ReferenceInputError(
                f"“{label}” (column “{column}”) has no text answers: all {len(cells)} rows are empty or missing. "
                "Ignore this column or map the column that holds the answers.",
                column=column,
            )
        return question
    if not answered:
        raise ReferenceInputError(
            f"“{label}” (column “{column}”) has no answers: all {len(cells)} rows are empty or missing. "
            "Ignore this column or map another.",
            column=column,
        )
    if kind == "scale":
        scale = _as_text_list(raw.get("scale"), f"The scale of “{label}”")
        if len(scale) < 2 or len({s.casefold() for s in scale}) != len(scale) or not all(scale):
            raise ReferenceInputError(
                f"Give “{label}” (column “{column}”) a scale of at least two different points, lowest first.",
                column=column,
            )
        _check_inside(question, answered, scale, "scale", f"the scale {_scale_text(scale)}")
        question["scale"] = scale
        return question
    options = _as_text_list(raw.get("options"), f"The options of “{label}”")
    if not options:
        first_seen: dict[str, str] = {}
        counts: Counter[str] = Counter()
        for value in answered:
            key = value.strip().casefold()
            first_seen.setdefault(key, value.strip())
            counts[key] += 1
        options = [first_seen[k] for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    if len(options) > CHOICE_MAX_OPTIONS:
        raise ReferenceInputError(
            f"“{label}” (column “{column}”) has {len(options)} different answers; a choice question can have at most "
            f"{CHOICE_MAX_OPTIONS}. Map it as open text, or ignore it.",
            column=column,
        )
    if len(options) < 2:
        raise ReferenceInputError(
            f"Every respondent gave the same answer to “{label}” (column “{column}”), so there is nothing to compare. "
            "Ignore this column.",
            column=column,
        )
    _check_inside(question, answered, options, "options", "its options")
    question["options"] = options
    return question


def _check_inside(question: dict, answered: list[str], labels: list[str], what: str, described: str) -> None:
    lookup = _Lookup(labels)
    outside = [v for v in answered if lookup.index(v) is None]
    if outside:
        rows = "1 row has a value" if len(outside) == 1 else f"{len(outside)} rows have values"
        shown = _shown_values(sorted(set(outside)))
        word = "value" if len(set(outside)) == 1 else "values"
        raise ReferenceInputError(
            f"“{question['column']}”: {rows} outside {described} ({word} {shown}). "
            f"Mark them missing or fix the {'scale' if what == 'scale' else 'options'}.",
            column=question["column"],
            values=sorted(set(outside)),
            rows=len(outside),
        )


def _clean_demographic(table: ReferenceTable, raw: Any) -> dict:
    if not isinstance(raw, dict) or not str(raw.get("column") or "").strip():
        raise ReferenceInputError("Each demographic needs the column it comes from.")
    column = str(raw["column"]).strip()
    if column not in table.columns:
        raise ReferenceInputError(_not_a_column(column, table.columns), column=column)
    dimension = re.sub(r"[^0-9a-z]+", "_", str(raw.get("dimension") or "").strip().casefold()).strip("_")
    if not dimension:
        raise ReferenceInputError(
            f"Say which characteristic the column “{column}” holds (age, gender, education, …).", column=column
        )
    label = str(raw.get("label") or "").strip() or DIMENSION_LABELS.get(dimension, _label(dimension))
    return {"column": column, "dimension": dimension, "label": label}


def validate_mapping(table: ReferenceTable, mapping: dict) -> Mapping:
    """The researcher's mapping, checked against the file (every problem named, with what to do)."""
    if not isinstance(mapping, dict):
        raise ReferenceInputError("The mapping must say which columns are questions and which are demographics.")
    raw_questions = mapping.get("questions") or []
    raw_demographics = mapping.get("demographics") or []
    if not isinstance(raw_questions, list) or not isinstance(raw_demographics, list):
        raise ReferenceInputError("The questions and the demographics of a mapping must be lists.")
    ignored = _as_text_list(mapping.get("ignored"), "The ignored columns")
    weight = str(mapping.get("weight") or "").strip() or None

    uses: list[tuple[str, str]] = []
    for raw in raw_questions:
        uses.append((str(raw.get("column") or "").strip() if isinstance(raw, dict) else "", "a question"))
    for raw in raw_demographics:
        uses.append((str(raw.get("column") or "").strip() if isinstance(raw, dict) else "", "a demographic"))
    uses += [(c, "ignored") for c in ignored]
    if weight:
        uses.append((weight, "the weight"))
    for column, _ in uses:
        if column and column not in table.columns:
            raise ReferenceInputError(_not_a_column(column, table.columns), column=column)
    roles: dict[str, list[str]] = {}
    for column, role in uses:
        roles.setdefault(column, []).append(role)
    for column, listed in roles.items():
        if column and len(listed) > 1:
            raise ReferenceInputError(
                f"The column “{column}” is mapped more than once ({' and '.join(listed)}). Map each column once.",
                column=column,
            )
    if not raw_questions:
        raise ReferenceInputError(
            "No question is mapped. Mark at least one answer column as a question (a rating scale, a choice "
            "or open text) to compare the panel with.",
        )
    if mapping.get("strict"):
        unmapped = [c for c in table.columns if c not in roles]
        if unmapped:
            raise ReferenceInputError(
                f"Unmapped columns: {', '.join(unmapped)}. Map each as a question or demographic, or mark it ignored.",
                columns=unmapped,
            )
    questions = [_clean_question(table, raw) for raw in raw_questions]
    demographics = [_clean_demographic(table, raw) for raw in raw_demographics]
    dimensions = Counter(d["dimension"] for d in demographics)
    for dimension, count in dimensions.items():
        if count > 1:
            columns = [d["column"] for d in demographics if d["dimension"] == dimension]
            raise ReferenceInputError(
                f"{count} columns ({', '.join(columns)}) are mapped to {dimension.replace('_', ' ')}. "
                "Keep one and ignore the others, or give them different characteristics.",
                dimension=dimension,
            )
    if weight:
        bad = [v for v in table.column_values(weight) if not is_missing(v) and ((_number(v) or -1.0) < 0)]
        if bad:
            raise ReferenceInputError(
                f"The weight column “{weight}” has {len(bad)} values that are not numbers of 0 or more "
                f"(e.g. {_shown_values(sorted(set(bad)), 3)}). Choose another column or no weight.",
                column=weight,
            )
    return Mapping(questions=questions, demographics=demographics, weight=weight, ignored=ignored)


# ---------------------------------------------------------------------------------------------------------
# Reading answers through a mapping


def _mapping(mapping: Mapping | dict) -> Mapping:
    return mapping if isinstance(mapping, Mapping) else Mapping.from_json(mapping)


def responses(table: ReferenceTable, mapping: Mapping | dict, question: str | dict) -> list:
    """One answer per row: a scale question gives the 0-based position on its scale, a choice the option's
    text as the mapping spells it, an open question the text; None when the row has no answer.
    ``mapping``: a checked ``Mapping`` or its ``to_json``; ``question``: its column or its dict."""
    mapping = _mapping(mapping)
    column = question["column"] if isinstance(question, dict) else question
    spec = mapping.question(column)
    extra = frozenset(v.casefold() for v in spec.get("missing") or [])
    cells = table.column_values(column)
    if spec["kind"] == "open":
        return [None if is_missing(v, extra) else v for v in cells]
    labels = spec["scale"] if spec["kind"] == "scale" else spec["options"]
    lookup = _Lookup(labels)
    answers: list = []
    for value in cells:
        if is_missing(value, extra):
            answers.append(None)
            continue
        index = lookup.index(value)
        if index is None:
            _check_inside(spec, [value], labels, "scale" if spec["kind"] == "scale" else "options", "the mapping")
        answers.append(index if spec["kind"] == "scale" else labels[index] if index is not None else None)
    return answers


def demographic_values(table: ReferenceTable, mapping: Mapping | dict) -> list[dict[str, str]]:
    """Per row, {dimension: value}; a missing value is "Not stated"."""
    mapping = _mapping(mapping)
    return [
        {
            d["dimension"]: NOT_STATED if is_missing(row.get(d["column"], "")) else row[d["column"]]
            for d in mapping.demographics
        }
        for row in table.rows
    ]


def weights(table: ReferenceTable, mapping: Mapping | dict) -> list[float | None] | None:
    """Per row, the survey weight (None where missing); None when no weight column is mapped."""
    mapping = _mapping(mapping)
    if not mapping.weight:
        return None
    return [None if is_missing(v) else _number(v) for v in table.column_values(mapping.weight)]
