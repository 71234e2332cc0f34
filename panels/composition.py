"""A panel (or any set of demographic cores) against its target: per dimension and category, the target
share, the panel's share and count, and the deviation in percentage points; quotas met or not; warnings
in plain sentences; the same as CSV rows; and Cramér's V between two dimensions."""

from __future__ import annotations

import numpy as np
from scipy.stats.contingency import association

from panels.population import Population
from panels.quotas import Quota

WARN_POINTS = 5.0
NOT_STATED = "Not stated"
CSV_HEADER = ["Dimension", "Category", "Target %", "Panel %", "Count", "Deviation (points)"]
# Spreadsheets run cells that start with these as formulas; text cells that do get a leading quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _percent(count: int, size: int) -> float:
    return count / size * 100 if size else 0.0


def _dimension_rows(cores: list[dict], dimension, size: int) -> tuple[list[dict], int]:
    counts = dict.fromkeys(dimension.categories, 0)
    not_stated = 0
    for core in cores:
        value = core.get(dimension.key)
        category = dimension.category(value) if isinstance(value, str) else None
        if category is None:
            not_stated += 1
        else:
            counts[category] += 1
    rows = []
    for category, share in dimension.shares.items():
        target, panel = share * 100, _percent(counts[category], size)
        rows.append(
            {
                "category": category,
                "target": round(target, 1),
                "panel": round(panel, 1),
                "count": counts[category],
                "deviation": round(panel - target, 1),
            }
        )
    if not_stated:
        panel = _percent(not_stated, size)
        rows.append(
            {
                "category": NOT_STATED,
                "target": 0.0,
                "panel": round(panel, 1),
                "count": not_stated,
                "deviation": round(panel, 1),
                "not_stated": True,
            }
        )
    return rows, not_stated


def _canonical(core: dict, population: Population) -> dict:
    """``core`` with its categories spelt as the population spells them (matched case-insensitively)."""
    result = dict(core)
    for dimension in population.dimensions:
        value = core.get(dimension.key)
        if isinstance(value, str):
            result[dimension.key] = dimension.category(value) or value
    return result


def _quota_row(quota: Quota, cores: list[dict], population: Population, size: int) -> dict:
    count = sum(1 for core in cores if quota.matches(core))
    if quota.share is not None:
        met = abs(count - quota.share * size) <= 1 + 1e-9
        target: float | str = round(quota.share * 100, 1)
    else:
        met = count >= (quota.at_least or 0)
        target = f"at least {quota.at_least:,}"
    return {
        "label": quota.label(population),
        "target": target,
        "panel": round(_percent(count, size), 1),
        "count": count,
        "met": bool(met and size > 0),
    }


def composition(
    cores: list[dict[str, str]], population: Population, *, quotas=(), warn_points: float = WARN_POINTS
) -> dict:
    """Every dimension of ``population`` in ``cores``: target vs panel per category (a "Not stated" row for
    cores without a category of that dimension), the largest deviation, a warning over ``warn_points``;
    every quota with whether the panel meets it; and the warnings as sentences."""
    cores = list(cores)
    size = len(cores)
    dimensions, warnings = [], []
    for dimension in population.dimensions:
        rows, not_stated = _dimension_rows(cores, dimension, size)
        max_deviation = max(abs(row["deviation"]) for row in rows) if size else 0.0
        warning = size > 0 and max_deviation > warn_points
        if warning:
            worst = max(rows, key=lambda row: abs(row["deviation"]))
            if worst.get("not_stated"):
                warnings.append(
                    f"{dimension.label}: {not_stated:,} of {size:,} people ({worst['panel']:.1f}%) have no "
                    f"{dimension.label} among the target's categories."
                )
            else:
                warnings.append(
                    f"{dimension.label} is off target: {worst['category']} is {worst['panel']:.1f}% of the panel "
                    f"against {worst['target']:.1f}% in the target ({worst['deviation']:+.1f} points)."
                )
        dimensions.append(
            {
                "key": dimension.key,
                "label": dimension.label,
                "source": dimension.source,
                "year": dimension.year,
                "max_deviation": float(max_deviation),
                "warning": warning,
                "rows": rows,
            }
        )
    canonical = [_canonical(core, population) for core in cores]
    quota_rows = [_quota_row(quota, canonical, population, size) for quota in quotas]
    for row in quota_rows:
        if size and not row["met"]:
            target = row["target"] if isinstance(row["target"], str) else f"{row['target']:.1f}%"
            warnings.append(
                f"The quota “{row['label']}” is not met: {row['count']:,} people ({row['panel']:.1f}%) against "
                f"{target}."
            )
    if not size:
        warnings.append("There is nobody in the panel yet: nothing to compare with the target.")
    return {"size": size, "dimensions": dimensions, "quotas": quota_rows, "warnings": warnings}


def cramers_v(cores: list[dict[str, str]], a: str, b: str, weights=None) -> float:
    """Cramér's V between dimensions ``a`` and ``b`` over the cores that have both (weighted by ``weights``,
    one per core, when given), by scipy's ``association``; 0.0 when either has fewer than two categories."""
    weights = [1.0] * len(cores) if weights is None else [float(weight) for weight in weights]
    rows: dict[str, int] = {}
    columns: dict[str, int] = {}
    cells: list[tuple[int, int, float]] = []
    for core, weight in zip(cores, weights, strict=True):
        if core.get(a) is None or core.get(b) is None or weight <= 0:
            continue
        cells.append((rows.setdefault(core[a], len(rows)), columns.setdefault(core[b], len(columns)), weight))
    table = np.zeros((len(rows), len(columns)), dtype=np.float64)
    for row, column, weight in cells:
        table[row, column] += weight
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return 0.0
    if all(weight == int(weight) for weight in weights):
        observed = table.astype(np.int64)
    else:
        # V depends only on the table's proportions; scipy wants counts, so the weighted table is scaled to
        # a large whole total (exact to about 1e-9).
        observed = np.rint(table / table.sum() * 1e9).astype(np.int64)
    return float(association(observed, method="cramer"))


def _text_cell(value) -> str:
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def composition_csv_rows(comp: dict) -> list[list[str]]:
    """The composition as CSV rows: a header, a row per category of every dimension, then a row per quota."""
    rows = [list(CSV_HEADER)]
    for dimension in comp["dimensions"]:
        for row in dimension["rows"]:
            rows.append(
                [
                    _text_cell(dimension["label"]),
                    _text_cell(row["category"]),
                    f"{row['target']:.1f}",
                    f"{row['panel']:.1f}",
                    str(row["count"]),
                    f"{row['deviation']:.1f}",
                ]
            )
    for quota in comp.get("quotas", []):
        share = not isinstance(quota["target"], str)
        rows.append(
            [
                "Quota",
                _text_cell(quota["label"]),
                f"{quota['target']:.1f}" if share else quota["target"],
                f"{quota['panel']:.1f}",
                str(quota["count"]),
                f"{quota['panel'] - quota['target']:.1f}" if share else "",
            ]
        )
    return rows
