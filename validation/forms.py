"""What the validation pages' forms send, read into what ``validation.services`` takes, and back into what the
forms show again after an error (nothing the user typed is lost).

The mapping page has one block of fields per column of the file, numbered in the file's order (``c0-…``,
``c1-…``): the column's name (hidden), its role, and for a question its label, wording, ordered values and
extra missing codes; for a demographic the characteristic it holds and its label. The rules (a column that
exists, values inside the scale, at least one question…) are ``validation.reference.validate_mapping``'s:
this module only reads the fields, and checks what only the form can get wrong (two weight columns).
"""

import json
import re
from dataclasses import dataclass, field

from panels.models import ProfileDepth
from validation.reference import DIMENSION_LABELS, ReferenceInputError

ROLES = [
    ("scale", "Question: scale"),
    ("choice", "Question: choice"),
    ("open", "Question: open text"),
    ("demographic", "Demographic"),
    ("weight", "Weight"),
    ("ignore", "Ignore"),
]
QUESTION_ROLES = ("scale", "choice", "open")
OTHER_DIMENSION = "__other__"
# The characteristics the mapping page offers by name (any other is typed in).
DIMENSIONS = [(key, label) for key, label in DIMENSION_LABELS.items()]
DEFAULT_SIZE = 200


def fields_of(post) -> dict | object:
    """What the mapping page posted. Its script sends every column's fields as one JSON field, ``fields``
    (a survey export with a few hundred columns would otherwise post more fields than Django accepts); without
    the script they come one by one."""
    raw = post.get("fields")
    if not raw:
        return post
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def split_values(text: str) -> list[str]:
    """Ordered values as typed: one per line, or separated by commas when on one line."""
    text = (text or "").strip()
    if not text:
        return []
    parts = text.splitlines() if "\n" in text else text.split(",")
    return [part.strip() for part in parts if part.strip()]


def join_values(values) -> str:
    return "\n".join(str(value) for value in values or [])


@dataclass
class ColumnInput:
    index: int
    column: str
    role: str = "ignore"
    label: str = ""
    text: str = ""
    values: str = ""  # the scale's points, or a choice's options, one per line
    missing: str = ""  # extra codes that mean "no answer", comma separated
    dimension: str = ""
    dimension_other: str = ""
    demographic_label: str = ""

    @property
    def is_question(self) -> bool:
        return self.role in QUESTION_ROLES

    @property
    def dimension_value(self) -> str:
        return self.dimension_other.strip() if self.dimension == OTHER_DIMENSION else self.dimension

    def question(self) -> dict:
        values = split_values(self.values)
        return {
            "column": self.column,
            "kind": self.role,
            "label": self.label.strip(),
            "text": self.text.strip(),
            "scale": values if self.role == "scale" else None,
            "options": values if self.role == "choice" and values else None,
            "missing": split_values(self.missing.replace("\n", ",")) if self.missing.strip() else [],
        }

    def demographic(self) -> dict:
        return {"column": self.column, "dimension": self.dimension_value, "label": self.demographic_label.strip()}


def _known_dimension(dimension: str) -> tuple[str, str]:
    """(the select's value, the free text) for a stored dimension."""
    if not dimension or dimension in DIMENSION_LABELS:
        return dimension, ""
    return OTHER_DIMENSION, dimension


@dataclass
class MappingInput:
    columns: list[ColumnInput] = field(default_factory=list)

    @classmethod
    def from_mapping(cls, columns: list[str], mapping: dict) -> "MappingInput":
        """The form filled from a mapping (the saved one, or the reader's suggestion); a column the mapping
        does not name is ignored."""
        rows = {name: ColumnInput(index=i, column=name) for i, name in enumerate(columns)}
        for question in mapping.get("questions") or []:
            row = rows.get(str(question.get("column")))
            if row is None or question.get("kind") not in QUESTION_ROLES:
                continue
            row.role = question["kind"]
            row.label = question.get("label") or ""
            row.text = question.get("text") or ""
            row.values = join_values(question.get("scale") if row.role == "scale" else question.get("options"))
            row.missing = ", ".join(question.get("missing") or [])
        for demographic in mapping.get("demographics") or []:
            row = rows.get(str(demographic.get("column")))
            if row is None:
                continue
            row.role = "demographic"
            row.dimension, row.dimension_other = _known_dimension(str(demographic.get("dimension") or ""))
            row.demographic_label = demographic.get("label") or ""
        weight = mapping.get("weight")
        if weight and weight in rows:
            rows[weight].role = "weight"
        return cls(columns=list(rows.values()))

    @classmethod
    def from_post(cls, post, columns: list[str]) -> "MappingInput":
        """The fields as posted: ``request.POST``, or the dict the page's script sends as one JSON field
        (``fields_of``)."""

        def get(key: str, default: str = "") -> str:
            value = post.get(key, default)
            return value if isinstance(value, str) else str(value)

        rows = []
        roles = {value for value, _ in ROLES}
        for index, name in enumerate(columns):
            prefix = f"c{index}-"
            role = get(f"{prefix}role", "ignore")
            rows.append(
                ColumnInput(
                    index=index,
                    column=get(f"{prefix}column", name),
                    role=role if role in roles else "ignore",
                    label=get(f"{prefix}label"),
                    text=get(f"{prefix}text"),
                    values=get(f"{prefix}values"),
                    missing=get(f"{prefix}missing"),
                    dimension=get(f"{prefix}dimension"),
                    dimension_other=get(f"{prefix}dimension_other"),
                    demographic_label=get(f"{prefix}dlabel"),
                )
            )
        return cls(columns=rows)

    def check(self) -> None:
        """What only the form can get wrong: more than one weight column."""
        weights = [row for row in self.columns if row.role == "weight"]
        if len(weights) > 1:
            names = " and ".join(f"“{row.column}”" for row in weights)
            raise ReferenceInputError(
                f"{names} are both marked as the weight; a survey has one weight column. Keep one and ignore "
                "the other.",
                column=weights[1].column,
            )

    def mapping(self) -> dict:
        """The mapping as ``services.reference_map`` takes it."""
        weight = next((row.column for row in self.columns if row.role == "weight"), None)
        return {
            "questions": [row.question() for row in self.columns if row.is_question],
            "demographics": [row.demographic() for row in self.columns if row.role == "demographic"],
            "weight": weight,
            "ignored": [row.column for row in self.columns if row.role == "ignore"],
        }


# --- starting a validation -----------------------------------------------------------------------------


@dataclass
class StartInput:
    size: str = ""
    depth: str = ProfileDepth.LIGHT
    seed: str = ""

    @classmethod
    def initial(cls, row_count: int) -> "StartInput":
        return cls(size=str(max(1, min(DEFAULT_SIZE, row_count))))

    @classmethod
    def from_post(cls, post) -> "StartInput":
        depth = post.get("depth", ProfileDepth.LIGHT)
        return cls(
            size=post.get("size", "").strip(),
            depth=depth if depth in ProfileDepth.values else ProfileDepth.LIGHT,
            seed=post.get("seed", "").strip(),
        )

    def check(self) -> None:
        if self.seed and not re.fullmatch(r"\d{1,12}", self.seed):
            raise ReferenceInputError(
                f"The seed must be a whole number of 0 or more (you typed “{self.seed[:40]}”), or empty for a new "
                "draw.",
                fields={"seed": ["A whole number, or empty."]},
            )

    def service_kwargs(self) -> dict:
        return {"size": self.size, "depth": self.depth, "seed": self.seed or None}
