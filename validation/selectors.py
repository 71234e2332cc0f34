"""Reads for validation: a user's reference surveys and validations, and what the pages show of them."""

from collections import Counter

from django.db.models import QuerySet
from django.db.models.fields.json import KeyTransform

from validation.models import Reference, Validation
from validation.reference import is_missing

PREVIEW_VALUES = 8
SEEN_MAX = 30  # a column with at most this many different answers offers them to fill its scale or options


def _seen_order(values: list[str]) -> list[str]:
    """Different answers in a scale's likely order: by number when they are all numbers, else as given."""
    numbers = []
    for value in values:
        try:
            numbers.append(float(value))
        except ValueError:
            return values
    return [value for _, value in sorted(zip(numbers, values, strict=True))]


def reference_list(*, owner) -> QuerySet[Reference]:
    # The rows stay in the database: a list needs the name and the counts, not the respondents.
    return Reference.objects.filter(owner=owner).defer("table", "suggested")


def _listed(validations: QuerySet[Validation]) -> QuerySet[Validation]:
    """For lists: each step's job (for its progress) and the verdict's pass/fail, not the whole scorecard."""
    return (
        validations.select_related("panel__job", "run__job")
        .defer("scorecard", "mapping", "panel__target", "run__questions", "run__themes")
        .annotate(verdict_passed=KeyTransform("passed", KeyTransform("verdict", "scorecard")))
    )


def validation_list(*, owner) -> QuerySet[Validation]:
    return _listed(Validation.objects.filter(owner=owner))


def validations_of(*, reference: Reference) -> QuerySet[Validation]:
    return _listed(Validation.objects.filter(reference=reference))


def column_previews(reference: Reference) -> list[dict]:
    """Per column of the file, in order: how many rows answer it, how many are missing, how many different
    answers there are, and the most common ones (with their counts), as the mapping page shows them."""
    table = reference.table or {}
    columns = [str(c) for c in table.get("columns") or []]
    rows = table.get("rows") or []
    previews = []
    for index, column in enumerate(columns):
        counts: Counter[str] = Counter()
        missing = 0
        for row in rows:
            value = str(row[index]) if index < len(row) else ""
            if is_missing(value):
                missing += 1
            else:
                counts[value] += 1
        common = counts.most_common(PREVIEW_VALUES)
        previews.append(
            {
                "index": index,
                "column": column,
                "answered": len(rows) - missing,
                "missing": missing,
                "distinct": len(counts),
                "values": [{"value": value, "count": count} for value, count in common],
                "more": max(0, len(counts) - len(common)),
                "seen": "\n".join(_seen_order([v for v, _ in counts.most_common()])) if len(counts) <= SEEN_MAX else "",
            }
        )
    return previews
