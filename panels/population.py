"""Target populations: the share of each category in each demographic dimension (the marginals).

Pure data and parsing, no Django models: the bundled US adults (from ``surveyweights``, MIT, whose
comments give each figure's source and year) and any population a researcher uploads as a marginals CSV
(``dimension, category, share[, source, year]``). Every bad input raises ``PanelInputError`` with a
message that names what is wrong and says what to do.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from dataclasses import dataclass

from surveyweights.census.us_census import US_CENSUS

from cohorta.errors import ApplicationError

PANEL_MAX_SIZE = 1000
MARGINALS_MAX_BYTES = 1024 * 1024
MAX_DIMENSIONS = 12
MAX_DIMENSION_CATEGORIES = 60
SUM_TOLERANCE_POINTS = 1.0

# Names a researcher may give a dimension (as slugs) -> the key the rest of Cohorta knows.
KNOWN_KEYS = {
    "age": "age",
    "gender": "gender",
    "sex": "gender",
    "education": "education",
    "income": "income",
    "household_income": "income",
    "race": "race",
    "ethnicity": "race",
    "race_ethnicity": "race",
    "region": "region",
    "urban_rural": "urban_rural",
    "urbanicity": "urban_rural",
}
KNOWN_LABELS = {
    "age": "Age",
    "gender": "Gender",
    "education": "Education",
    "income": "Household income",
    "race": "Race/ethnicity",
    "region": "Region",
    "urban_rural": "Urban/rural",
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACES = re.compile(r"\s+")


class PanelInputError(ApplicationError):
    """A target, quota or upload a panel cannot be built from; the message says what to fix.

    ``field`` names the form field the message belongs to (``extra["fields"]``)."""

    status_code = 400
    code = "validation_error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        status_code: int | None = None,
        extra: dict | None = None,
    ) -> None:
        extra = dict(extra or {})
        if field:
            extra["fields"] = {**extra.get("fields", {}), field: [message]}
        super().__init__(message, code=code, status_code=status_code, extra=extra)


def check_panel_size(size) -> int:
    """``size`` as an int from 1 to ``PANEL_MAX_SIZE``, else a ``PanelInputError`` on the size field."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise PanelInputError(
            f"A panel needs a whole number of people between 1 and {PANEL_MAX_SIZE:,}; you gave “{size}”.",
            field="size",
        )
    if not 1 <= size <= PANEL_MAX_SIZE:
        raise PanelInputError(
            f"A panel needs between 1 and {PANEL_MAX_SIZE:,} people; you asked for {size:,}.", field="size"
        )
    return size


def clean_text(value) -> str:
    """A name or category as shown: no control characters, single spaces, no surrounding space."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", str(value))).strip()


def slugify(name: str) -> str:
    """``"Age band"`` -> ``"age_band"``; accents dropped; non-Latin letters kept when nothing else is left."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "_", folded.lower()).strip("_")
    if not slug:
        slug = re.sub(r"[\W_]+", "_", name.lower()).strip("_")
    return slug


def dimension_key(name: str) -> str:
    """The key of a dimension named ``name``: the known key for known names (``"Sex"`` -> ``"gender"``),
    else its slug."""
    slug = slugify(name)
    return KNOWN_KEYS.get(slug, slug)


def normalised(shares: dict[str, float]) -> dict[str, float]:
    """``shares`` divided by their total so that ``sum(result.values()) == 1.0`` exactly (the largest
    share absorbs the rounding); unchanged when they already sum to exactly 1.0."""
    values = [float(value) for value in shares.values()]
    if sum(values) == 1.0:
        return {key: float(value) for key, value in shares.items()}
    total = math.fsum(values)
    if not total > 0:
        return {key: float(value) for key, value in shares.items()}
    result = {key: float(value) / total for key, value in shares.items()}
    largest = max(result, key=lambda key: result[key])
    result[largest] += 1.0 - sum(result.values())
    last = list(result)[-1]
    if sum(result.values()) != 1.0 and result[last] > 0:
        # Summed left to right, 1.0 - (all but the last) added back is 1.0 exactly (or within an ulp); the
        # last share moves by a few 1e-17 at most.
        rest = 1.0 - sum(value for key, value in result.items() if key != last)
        if rest >= 0:
            result[last] = rest
    # Floating-point sums are taken left to right: what is left is a few units in the last place, moved
    # onto one of the larger shares so that ``sum()`` gives exactly 1.0.
    for key in sorted(result, key=lambda key: -result[key])[:3]:
        original = result[key]
        for direction in (math.inf, -math.inf):
            value = original
            for _ in range(4):
                if sum(result.values()) == 1.0:
                    return result
                value = math.nextafter(value, direction)
                result[key] = value
            result[key] = original
    return result


@dataclass(frozen=True)
class Dimension:
    """One demographic dimension of a population: category -> share of the population (sum 1.0)."""

    key: str
    label: str
    shares: dict[str, float]
    source: str = ""
    year: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shares", normalised(self.shares))

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(self.shares)

    def category(self, name: str) -> str | None:
        """The canonical category for ``name`` (exact, else case-insensitive), else None."""
        if name in self.shares:
            return name
        wanted = clean_text(name).casefold()
        for category in self.shares:
            if category.casefold() == wanted:
                return category
        return None

    def to_json(self) -> dict:
        # Shares as a list of pairs: JSON objects stored in Postgres (jsonb) lose their key order.
        return {
            "key": self.key,
            "label": self.label,
            "shares": [[category, share] for category, share in self.shares.items()],
            "source": self.source,
            "year": self.year,
        }

    @classmethod
    def from_json(cls, data: dict) -> Dimension:
        shares = data["shares"]
        pairs = shares.items() if isinstance(shares, dict) else shares
        return cls(
            key=data["key"],
            label=data.get("label") or data["key"],
            shares={str(category): float(share) for category, share in pairs},
            source=data.get("source") or "",
            year=data.get("year"),
        )


@dataclass(frozen=True)
class Population:
    """A named target population: its dimensions in display order."""

    key: str
    name: str
    country: str
    dimensions: tuple[Dimension, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "dimensions", tuple(self.dimensions))

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(dimension.key for dimension in self.dimensions)

    def has(self, key: str) -> bool:
        return any(dimension.key == key for dimension in self.dimensions)

    def dimension(self, key: str) -> Dimension:
        for dimension in self.dimensions:
            if dimension.key == key:
                return dimension
        raise PanelInputError(
            f"“{key}” is not a dimension of {self.name}. Its dimensions are: "
            f"{', '.join(dimension.label for dimension in self.dimensions)}."
        )

    def find_dimension(self, name: str) -> Dimension | None:
        """The dimension called ``name`` by its key or its label, case-insensitively, else None."""
        wanted = clean_text(name).casefold()
        slug = dimension_key(name)
        for dimension in self.dimensions:
            if dimension.key == name or dimension.key == slug or dimension.label.casefold() == wanted:
                return dimension
        return None

    def replace_dimensions(self, dimensions) -> Population:
        return Population(key=self.key, name=self.name, country=self.country, dimensions=tuple(dimensions))

    def to_json(self) -> dict:
        return {
            "key": self.key,
            "name": self.name,
            "country": self.country,
            "dimensions": [dimension.to_json() for dimension in self.dimensions],
        }

    @classmethod
    def from_json(cls, data: dict) -> Population:
        return cls(
            key=data["key"],
            name=data["name"],
            country=data.get("country") or "",
            dimensions=tuple(Dimension.from_json(item) for item in data["dimensions"]),
        )


# --- the bundled populations ----------------------------------------------------------------------------

_VIA = "via surveyweights 0.6 (MIT)"
_US_SOURCES = {
    "age": ("2010 US Census (census.gov/prod/cen2010/briefs/c2010br-03.pdf)", 2010),
    "gender": (
        "2010 US Census (census.gov/prod/cen2010/briefs/c2010br-03.pdf); “Other” from "
        "ncbi.nlm.nih.gov/pmc/articles/PMC5227946/",
        2010,
    ),
    "education": (
        "2019 ACS (census.gov/data/tables/2019/demo/educational-attainment/cps-detailed-tables.html)",
        2019,
    ),
    "income": (
        "2019 ACS, Census report P60-266 p. 34 "
        "(census.gov/content/dam/Census/library/publications/2019/demo/p60-266.pdf)",
        2019,
    ),
    "race": (
        "2019 Census estimates (en.wikipedia.org/wiki/Race_and_ethnicity_in_the_United_States#Racial_categories)",
        2019,
    ),
    "region": (
        "2019 Census estimates of state populations "
        "(en.wikipedia.org/wiki/List_of_states_and_territories_of_the_United_States_by_population), grouped "
        "into surveyweights' own seven regions (US_REGIONS_MAP), not the Census Bureau's four",
        2019,
    ),
    "urban_rural": (
        "2018 Pew Research Center (pewsocialtrends.org/2018/05/22/"
        "demographic-and-economic-trends-in-urban-suburban-and-rural-communities/)",
        2018,
    ),
}
# Display order of the categories where surveyweights' order is not the natural one.
_US_ORDER = {
    "education": (
        "Less than high school",
        "Graduated from high school",
        "Some college, no degree",
        "Graduated from college",
        "Completed graduate school",
    ),
}


def _us_dimension(key: str) -> Dimension:
    shares = dict(US_CENSUS[key])
    order = _US_ORDER.get(key, tuple(shares))
    source, year = _US_SOURCES[key]
    return Dimension(
        key=key,
        label=KNOWN_LABELS[key],
        shares={category: float(shares[category]) for category in order},
        source=f"{source}, {_VIA}",
        year=year,
    )


BUNDLED: dict[str, Population] = {
    "us_adults": Population(
        key="us_adults",
        name="US adults (Census 2010 / ACS 2019)",
        country="US",
        dimensions=tuple(
            _us_dimension(key) for key in ("age", "gender", "education", "income", "race", "region", "urban_rural")
        ),
    ),
}


def bundled_population(key: str) -> Population:
    try:
        return BUNDLED[key]
    except KeyError:
        raise PanelInputError(
            f"There is no built-in population “{key}”. Choose one of: "
            f"{', '.join(population.name for population in BUNDLED.values())}.",
            field="target",
        ) from None


# --- reading CSV uploads (shared with panels.microdata) -------------------------------------------------


def decode_upload(data: bytes) -> str:
    """The text of an uploaded CSV: UTF-8 (with or without BOM), else Windows-1252, else Latin-1."""
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise PanelInputError(
            "This looks like a spreadsheet (Excel) file, not a CSV. In your spreadsheet, use “Save as” → "
            "“CSV” and upload that."
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if b"\x00" in data:
        raise PanelInputError("This is not a text CSV file (it contains binary data). Save it as CSV and upload it.")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def sniff_delimiter(text: str) -> str:
    """``;``, tab or ``,``: whichever the first non-blank line has most of (``,`` on a tie)."""
    for line in text.splitlines():
        if line.strip():
            counts = {delimiter: line.count(delimiter) for delimiter in (",", ";", "\t")}
            best = max(counts, key=lambda delimiter: (counts[delimiter], delimiter == ","))
            return best if counts[best] else ","
    return ","


def read_rows(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """``(row number, cells)`` for every non-blank CSV row; row 1 is the first line of the file."""
    rows = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                rows.append((reader.line_num, [cell.strip() for cell in cells]))
    except csv.Error as exc:
        raise PanelInputError(
            f"The file could not be read as CSV near row {reader.line_num} ({exc}). Check its quotes and save "
            "it again as CSV."
        ) from None
    return rows


def parse_number(text: str, *, decimal_comma: bool = False) -> float | None:
    """``"51.2"``, ``"51,2"`` (with ``decimal_comma``), ``"51.2%"`` -> 51.2; None when not a finite number."""
    cleaned = text.strip().replace("%", "").replace("\u00a0", "").replace(" ", "")
    if decimal_comma and "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def check_upload_size(data: bytes, *, limit: int, what: str) -> None:
    if len(data) > limit:
        raise PanelInputError(
            f"The {what} file is {len(data) / 1024 / 1024:.1f} MB; the limit is {limit / 1024 / 1024:g} MB. "
            "Upload a smaller file.",
            code="file_too_large",
        )
    if not data.strip():
        raise PanelInputError(f"The {what} file is empty. Upload a CSV with a header row and data rows.")


# --- uploaded marginals ---------------------------------------------------------------------------------

_COLUMN_NAMES = {
    "dimension": ("dimension", "variable", "dim"),
    "category": ("category", "value", "level"),
    "share": ("share", "percent", "percentage", "proportion", "%"),
    "source": ("source",),
    "year": ("year",),
}
_REQUIRED = ("dimension", "category", "share")


def _header_index(header: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, cell in enumerate(header):
        name = cell.strip().lstrip("\ufeff").casefold()
        for column, aliases in _COLUMN_NAMES.items():
            if name in aliases and column not in found:
                found[column] = index
    return found


def _format_names(names) -> str:
    return ", ".join(f"“{name}”" for name in names)


def parse_marginals_csv(data: bytes, *, name: str, country: str = "") -> Population:
    """A population from a CSV of marginals: one row per category with columns ``dimension``, ``category``
    and ``share`` (percent such as 51.2 or 51.2%, or proportions such as 0.512: decided per dimension,
    proportions when every share is at most 1), optional ``source`` and ``year``. Shares within 1 point of
    100% are normalised; anything else is an error naming the dimension or row."""
    check_upload_size(data, limit=MARGINALS_MAX_BYTES, what="marginals")
    text = decode_upload(data)
    delimiter = sniff_delimiter(text)
    rows = read_rows(text, delimiter)
    if not rows:
        raise PanelInputError("The marginals file is empty. Upload a CSV with a header row and data rows.")
    header_row, header = rows[0]
    columns = _header_index(header)
    if not any(column in columns for column in _REQUIRED):
        raise PanelInputError(
            "The first row must be a header naming the columns dimension, category and share (optional: source, "
            f"year); row {header_row} has {_format_names(header[:6])}. Add the header row."
        )
    missing = [column for column in _REQUIRED if column not in columns]
    if missing:
        raise PanelInputError(
            f"The header has no {' or '.join(missing)} column (found: {_format_names(header)}). The columns "
            "needed are dimension, category and share."
        )
    if len(rows) == 1:
        raise PanelInputError("The marginals file has a header but no rows. Add one row per category.")

    decimal_comma = delimiter != ","
    dimensions: dict[str, dict] = {}
    for number, cells in rows[1:]:

        def cell(column: str, cells=cells) -> str:
            index = columns.get(column)
            return clean_text(cells[index]) if index is not None and index < len(cells) else ""

        dimension_name, category, share_text = cell("dimension"), cell("category"), cell("share")
        if not dimension_name:
            raise PanelInputError(f"Row {number} has no dimension. Name the dimension (e.g. Age) on every row.")
        if not category:
            raise PanelInputError(f"Row {number} (“{dimension_name}”) has no category. Fill it in or remove the row.")
        where = f"Row {number} (“{dimension_name}” / “{category}”)"
        if not share_text:
            raise PanelInputError(f"{where} has no share. Give its share of the population, e.g. 12.5 or 12.5%.")
        share = parse_number(share_text, decimal_comma=decimal_comma)
        if share is None:
            raise PanelInputError(f"{where}: the share “{share_text}” is not a number. Write it like 12.5 or 12.5%.")
        if share < 0:
            raise PanelInputError(f"{where}: the share {share_text} is negative. Shares are 0 or more.")
        key = dimension_key(dimension_name)
        if not key:
            raise PanelInputError(f"Row {number}: the dimension name “{dimension_name}” needs at least one letter.")
        entry = dimensions.setdefault(
            key, {"label": dimension_name, "shares": {}, "rows": {}, "percent": False, "source": "", "year": None}
        )
        folded = category.casefold()
        if folded in entry["rows"]:
            raise PanelInputError(
                f"“{entry['label']}” has the category “{category}” twice (rows {entry['rows'][folded]} and {number}). "
                "Keep one row per category."
            )
        entry["rows"][folded] = number
        entry["shares"][category] = share
        entry["percent"] = entry["percent"] or "%" in share_text
        if not entry["source"]:
            entry["source"] = cell("source")
        year_text = cell("year")
        if year_text and entry["year"] is None:
            year = parse_number(year_text)
            if year is None or year != int(year) or not 1000 <= year <= 9999:
                raise PanelInputError(f"{where}: the year “{year_text}” is not a year. Write it like 2021.")
            entry["year"] = int(year)

    if len(dimensions) > MAX_DIMENSIONS:
        raise PanelInputError(
            f"The file has {len(dimensions)} dimensions; at most {MAX_DIMENSIONS} are allowed. Keep the ones your "
            "panel needs."
        )
    result = []
    for key, entry in dimensions.items():
        label, shares = entry["label"], entry["shares"]
        if len(shares) < 2:
            raise PanelInputError(
                f"“{label}” has only one category. A dimension needs at least two categories (or remove it)."
            )
        if len(shares) > MAX_DIMENSION_CATEGORIES:
            raise PanelInputError(
                f"“{label}” has {len(shares)} categories; at most {MAX_DIMENSION_CATEGORIES} are allowed. Group "
                "some of them."
            )
        proportions = not entry["percent"] and all(share <= 1 for share in shares.values())
        percent = {category: share * 100 if proportions else share for category, share in shares.items()}
        total = math.fsum(percent.values())
        if abs(total - 100) > SUM_TOLERANCE_POINTS:
            raise PanelInputError(
                f"“{label}” adds up to {total:.1f}%, not 100%: fix its shares.",
                extra={"dimension": key, "total": round(total, 3)},
            )
        result.append(
            Dimension(
                key=key,
                label=label,
                shares={category: share / total for category, share in percent.items()},
                source=entry["source"],
                year=entry["year"],
            )
        )
    name = clean_text(name) or "Uploaded population"
    return Population(key=slugify(name) or "uploaded", name=name, country=clean_text(country), dimensions=tuple(result))
