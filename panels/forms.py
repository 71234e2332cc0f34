"""What the panel builder's form sends, read into what ``services.panel_build_start`` takes, and back into
what the form shows again after an error (nothing the user typed is lost).

The rules (sizes, quotas, targets) are the services' and the quota parser's: this module only reads the
fields. Each quota row is one or two conditions (a dimension and one or more of its categories) and either
a share of the panel in percent or a least number of people.
"""

from dataclasses import dataclass, field

from panels.models import ProfileDepth
from panels.population import PanelInputError

MAX_QUOTAS = 10
MAX_CONDITIONS = 2
DEFAULT_SIZE = 300
DEFAULT_TARGET = "bundled:us_adults"
QUOTA_KINDS = [("share", "% of the panel"), ("at_least", "at least (people)")]


@dataclass
class QuotaRow:
    dims: list[str] = field(default_factory=lambda: [""] * MAX_CONDITIONS)
    cats: list[list[str]] = field(default_factory=lambda: [[] for _ in range(MAX_CONDITIONS)])
    kind: str = "share"
    value: str = ""

    @property
    def is_blank(self) -> bool:
        return not any(self.dims) and not any(self.cats) and not self.value.strip()

    @property
    def conditions(self) -> list[tuple[str, list[str]]]:
        """(dimension, categories) for each condition of the row, as the form shows them."""
        return list(zip(self.dims, self.cats, strict=True))

    def spec(self) -> dict:
        """The row as ``panels.quotas.parse_quotas`` reads it. A dimension without a category, or a share
        that is not a number, is passed on as it is: the parser says what is wrong, with the quota's number."""
        where: dict[str, str | list[str]] = {}
        for dim, cats in self.conditions:
            if dim:
                where[dim] = cats[0] if len(cats) == 1 else list(cats)
        value = self.value.strip()
        number: float | int | str | None = None
        if value:
            try:
                number = int(value) if self.kind == "at_least" and value.isdigit() else float(value.rstrip("%"))
            except ValueError:
                number = value
        return {"where": where, ("at_least" if self.kind == "at_least" else "share"): number}


@dataclass
class BuilderInput:
    name: str = ""
    target: str = DEFAULT_TARGET
    size: str = str(DEFAULT_SIZE)
    depth: str = ProfileDepth.LIGHT
    description: str = ""
    seed: str = ""
    quotas: list[QuotaRow] = field(default_factory=list)

    @classmethod
    def from_post(cls, post) -> "BuilderInput":
        rows = []
        for index in range(MAX_QUOTAS):
            prefix = f"q{index}-"
            row = QuotaRow(
                dims=[post.get(f"{prefix}dim{n}", "").strip() for n in range(1, MAX_CONDITIONS + 1)],
                cats=[[c for c in post.getlist(f"{prefix}cat{n}") if c] for n in range(1, MAX_CONDITIONS + 1)],
                kind="at_least" if post.get(f"{prefix}kind") == "at_least" else "share",
                value=post.get(f"{prefix}value", ""),
            )
            if not row.is_blank:
                rows.append(row)
        return cls(
            name=post.get("name", "").strip(),
            target=post.get("target", "") or DEFAULT_TARGET,
            size=post.get("size", "").strip(),
            depth=post.get("depth", ProfileDepth.LIGHT),
            description=post.get("description", ""),
            seed=post.get("seed", "").strip(),
            quotas=rows,
        )

    def check(self) -> None:
        """What only the form can get wrong: a quota row with a number but no dimension (the parser's own
        message for it is worded for the API)."""
        for number, row in enumerate(self.quotas, start=1):
            if not any(row.dims):
                raise PanelInputError(
                    f"Quota {number}: choose who it is about (a dimension and at least one of its categories), "
                    "or remove it.",
                    field="quotas",
                )

    def service_kwargs(self) -> dict:
        return {
            "target": self.target,
            "size": self.size,
            "name": self.name,
            "quotas": [row.spec() for row in self.quotas],
            "depth": self.depth,
            "seed": self.seed or None,
            "description": self.description,
        }

    def rows(self) -> list[QuotaRow]:
        """Every row the form has: the filled ones first, then blank ones up to the limit."""
        return self.quotas + [QuotaRow() for _ in range(MAX_QUOTAS - len(self.quotas))]
