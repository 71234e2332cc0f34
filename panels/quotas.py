"""Quotas on top of a population's marginals: "40% Female aged 18-24 or 25-44", "at least 250 Northeast".

A quota selects cells (categories of one or two dimensions: OR inside a dimension, AND across them) and
asks for an exact share of the panel or a minimum count. A quota on a single dimension overrides that
category's marginal (the dimension's other categories are rescaled); a quota on two dimensions stays a
constraint on the joint, met by raking (``panels.sampling``). ``parse_quotas`` checks each quota alone,
then against the marginals and the other quotas, and says which quota is impossible or which quotas
contradict each other.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from panels.population import Dimension, PanelInputError, Population, check_panel_size, clean_text

MAX_QUOTAS = 10
MAX_QUOTA_DIMENSIONS = 2
FEASIBILITY_MAX_CELLS = 20_000
_EPSILON = 1e-9


def percent_text(share: float) -> str:
    """0.4 -> "40%", 0.125 -> "12.5%"."""
    value = round(share * 100, 1)
    return f"{value:g}%" if value != int(value) else f"{int(value)}%"


@dataclass(frozen=True)
class Quota:
    """Cells of one or two dimensions and what the panel must hold of them: an exact ``share`` (0-1) or
    ``at_least`` people."""

    where: dict[str, tuple[str, ...]]
    share: float | None = None
    at_least: int | None = None

    def cells_text(self, population: Population | None = None) -> str:
        """The cells in the order the quota names its dimensions: "Female, 18-24 or 25-44"."""
        return ", ".join(" or ".join(categories) for categories in self.where.values())

    def label(self, population: Population | None = None) -> str:
        cells = self.cells_text(population)
        if self.share is not None:
            return f"{percent_text(self.share)} {cells}"
        return f"at least {self.at_least:,} {cells}"

    def matches(self, core: dict[str, str]) -> bool:
        return all(core.get(key) in categories for key, categories in self.where.items())

    @property
    def joint(self) -> bool:
        return len(self.where) > 1

    def minimum(self, size: int) -> float:
        """The fewest people of ``size`` this quota allows in its cells."""
        return self.share * size if self.share is not None else float(self.at_least or 0)

    def maximum(self, size: int) -> float:
        return self.share * size if self.share is not None else float(size)

    def to_json(self) -> dict:
        """In the shape ``parse_quotas`` reads (share in percent)."""
        item: dict = {"where": {key: list(categories) for key, categories in self.where.items()}}
        if self.share is not None:
            item["share"] = round(self.share * 100, 6)
        else:
            item["at_least"] = self.at_least
        return item


def quota_name(index: int, quota: Quota, population: Population) -> str:
    return f"Quota {index + 1} ({quota.label(population)})"


def _list_names(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _number(value, *, what: str, name: str, field: str) -> float:
    if isinstance(value, bool):
        value = None
    if isinstance(value, str):
        try:
            value = float(value.strip().rstrip("%"))
        except ValueError:
            value = None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise PanelInputError(f"{name}: the {what} must be a number.", field=field)
    return float(value)


def _parse_one(position: int, item, population: Population, size: int) -> Quota:
    name = f"Quota {position + 1}"
    field = "quotas"
    if not isinstance(item, dict) or not isinstance(item.get("where"), dict) or not item["where"]:
        raise PanelInputError(
            f'{name}: say which people it is about, e.g. {{"where": {{"gender": "Female"}}, "share": 40}}.',
            field=field,
        )
    where: dict[str, tuple[str, ...]] = {}
    for raw_key, raw_value in item["where"].items():
        dimension = population.find_dimension(str(raw_key))
        if dimension is None:
            raise PanelInputError(
                f"{name}: “{raw_key}” is not a dimension of {population.name}. Use one of: "
                f"{', '.join(dimension.label for dimension in population.dimensions)}.",
                field=field,
            )
        if dimension.key in where:
            raise PanelInputError(f"{name} names {dimension.label} twice. Name each dimension once.", field=field)
        values = raw_value if isinstance(raw_value, list | tuple) else [raw_value]
        chosen = set()
        for value in values:
            category = dimension.category(clean_text(value)) if isinstance(value, str | int | float) else None
            if category is None:
                raise PanelInputError(
                    f"{name}: “{value}” is not a {dimension.label} category. Use one of: "
                    f"{', '.join(dimension.categories)}.",
                    field=field,
                )
            chosen.add(category)
        if not chosen:
            raise PanelInputError(f"{name}: choose at least one {dimension.label} category.", field=field)
        if len(chosen) == len(dimension.categories):
            raise PanelInputError(
                f"{name} lists every {dimension.label} category, so {dimension.label} selects nobody out: "
                f"leave {dimension.label} out of it or choose fewer categories.",
                field=field,
            )
        where[dimension.key] = tuple(category for category in dimension.categories if category in chosen)
    if len(where) > MAX_QUOTA_DIMENSIONS:
        labels = [population.dimension(key).label for key in where]
        raise PanelInputError(
            f"{name} combines {len(where)} dimensions ({', '.join(labels)}); a quota can combine at most "
            f"{MAX_QUOTA_DIMENSIONS}. Split it into quotas on one or two dimensions.",
            field=field,
        )
    cells = Quota(where=where, share=0.5).cells_text(population)
    name = f"Quota {position + 1} ({cells})"
    has_share = item.get("share") not in (None, "")
    has_at_least = item.get("at_least") not in (None, "")
    if has_share == has_at_least:
        raise PanelInputError(
            f"{name} needs either a share (percent of the panel) or an “at least” count, "
            f"{'not both' if has_share else 'and has neither'}.",
            field=field,
        )
    if has_share:
        share = _number(item["share"], what="share", name=name, field=field)
        if not 0 < share <= 100:
            raise PanelInputError(
                f"{name}: a share is a percent of the panel above 0 and at most 100; you gave {share:g}.", field=field
            )
        return Quota(where=where, share=share / 100)
    at_least = _number(item["at_least"], what="“at least” count", name=name, field=field)
    if at_least != int(at_least) or not 1 <= at_least <= size:
        raise PanelInputError(
            f"{name}: “at least” must be a whole number of people from 1 to the panel size ({size:,}); "
            f"you gave {at_least:g}.",
            field=field,
        )
    return Quota(where=where, at_least=int(at_least))


def _count(share: float, size: int) -> int:
    return math.floor(share * size + 0.5)


def _relation(a: Quota, b: Quota) -> str:
    """How the cells of ``a`` and ``b`` relate: "same", "disjoint", "a_in_b", "b_in_a" or "overlap"."""
    for key in set(a.where) & set(b.where):
        if not set(a.where[key]) & set(b.where[key]):
            return "disjoint"
    if a.where == b.where:
        return "same"

    def inside(inner: Quota, outer: Quota) -> bool:
        return all(key in inner.where and set(inner.where[key]) <= set(outer.where[key]) for key in outer.where)

    if inside(a, b):
        return "a_in_b"
    if inside(b, a):
        return "b_in_a"
    return "overlap"


def _check_pairs(quotas: list[Quota], population: Population, size: int) -> None:
    for i, a in enumerate(quotas):
        for j in range(i + 1, len(quotas)):
            b = quotas[j]
            name_a, name_b = quota_name(i, a, population), quota_name(j, b, population)
            relation = _relation(a, b)
            if relation == "same":
                if a == b:
                    raise PanelInputError(
                        f"Quota {j + 1} repeats Quota {i + 1} ({a.label(population)}). Remove one.", field="quotas"
                    )
                if a.share is not None and b.share is not None:
                    raise PanelInputError(
                        f"{name_a} and {name_b} contradict each other: both set the share of "
                        f"{a.cells_text(population)}. Keep one.",
                        field="quotas",
                    )
                if a.at_least is not None and b.at_least is not None:
                    raise PanelInputError(
                        f"{name_a} and {name_b} contradict each other: both set a minimum for "
                        f"{a.cells_text(population)}. Keep one.",
                        field="quotas",
                    )
                exact, minimum = (a, b) if a.share is not None else (b, a)
                exact_name, minimum_name = (name_a, name_b) if exact is a else (name_b, name_a)
                assert exact.share is not None and minimum.at_least is not None
                if minimum.at_least > _count(exact.share, size):
                    raise PanelInputError(
                        f"{exact_name} and {minimum_name} contradict each other: {percent_text(exact.share)} of "
                        f"{size:,} people is {_count(exact.share, size):,}, fewer than at least "
                        f"{minimum.at_least:,}. Change one of them.",
                        field="quotas",
                    )
                continue
            if not a.joint and not b.joint and a.where.keys() == b.where.keys() and relation != "disjoint":
                key = next(iter(a.where))
                shared = [category for category in a.where[key] if category in b.where[key]]
                raise PanelInputError(
                    f"{name_a} and {name_b} both cover {_list_names(shared)}. A "
                    f"{population.dimension(key).label} category can be in only one quota on "
                    f"{population.dimension(key).label} alone: merge them or keep one.",
                    field="quotas",
                )
            if relation in ("a_in_b", "b_in_a"):
                inner, outer = (a, b) if relation == "a_in_b" else (b, a)
                inner_name, outer_name = (name_a, name_b) if inner is a else (name_b, name_a)
                if inner.minimum(size) > outer.maximum(size) + 0.5:
                    raise PanelInputError(
                        f"{inner_name} and {outer_name} contradict each other: the people of {inner_name} are "
                        f"all part of {outer_name}, which allows at most {outer.maximum(size):,.0f} of "
                        f"{size:,}, but {inner_name} needs {inner.minimum(size):,.0f}. Lower {inner_name} or "
                        f"raise {outer_name}.",
                        field="quotas",
                    )
            if relation == "disjoint" and a.minimum(size) + b.minimum(size) > size + 0.5:
                raise PanelInputError(
                    f"{name_a} and {name_b} contradict each other: they are about different people and together "
                    f"need {a.minimum(size) + b.minimum(size):,.0f} of a panel of {size:,}. Lower one of them.",
                    field="quotas",
                )


def _set_share(dimension: Dimension, categories, share: float) -> dict[str, float]:
    """``share`` spread over ``categories`` in proportion to their marginals (equally if those are 0)."""
    base = sum(dimension.shares[category] for category in categories)
    if base > 0:
        return {category: share * dimension.shares[category] / base for category in categories}
    return {category: share / len(categories) for category in categories}


def _effective_dimension(
    dimension: Dimension, indexed: list[tuple[int, Quota]], population: Population, size: int
) -> Dimension:
    def names(items) -> str:
        return _list_names([quota_name(index, quota, population) for index, quota in items])

    exact = [(index, quota) for index, quota in indexed if quota.share is not None]
    minimums = [(index, quota) for index, quota in indexed if quota.at_least is not None]
    shares: dict[str, float] = {}
    for _, quota in exact:
        assert quota.share is not None
        shares.update(_set_share(dimension, quota.where[dimension.key], quota.share))
    remaining = 1.0 - sum(quota.share or 0.0 for _, quota in exact)
    if remaining < -_EPSILON:
        raise PanelInputError(
            f"{names(exact)} contradict each other: together they give {dimension.label} "
            f"{percent_text(1 - remaining)} of the panel, more than 100%. Lower them.",
            field="quotas",
        )
    fixed: dict[int, float] = {}
    while True:
        taken = set(shares) | {c for index, quota in minimums if index in fixed for c in quota.where[dimension.key]}
        free = [category for category in dimension.categories if category not in taken]
        free_base = sum(dimension.shares[category] for category in free)
        rest = remaining - sum(fixed.values())
        newly = None
        for index, quota in minimums:
            if index in fixed:
                continue
            categories = quota.where[dimension.key]
            natural = (sum(dimension.shares[c] for c in categories) * rest / free_base) if free_base > 0 else 0.0
            if natural + _EPSILON < (quota.at_least or 0) / size:
                newly = index
                fixed[index] = (quota.at_least or 0) / size
                break
        if newly is None:
            break
    rest = remaining - sum(fixed.values())
    if rest < -_EPSILON:
        involved = sorted(exact + [(index, quota) for index, quota in minimums if index in fixed])
        raise PanelInputError(
            f"{names(involved)} contradict each other: together they need more than the whole panel of "
            f"{size:,} people in {dimension.label}. Lower them.",
            field="quotas",
        )
    by_index = dict(minimums)
    for index, share in fixed.items():
        shares.update(_set_share(dimension, by_index[index].where[dimension.key], share))
    free = [category for category in dimension.categories if category not in shares]
    if free:
        free_base = sum(dimension.shares[category] for category in free)
        if free_base > 0:
            shares.update({category: dimension.shares[category] * rest / free_base for category in free})
        else:
            shares.update({category: rest / len(free) for category in free})
    elif rest > _EPSILON:
        if not fixed:
            raise PanelInputError(
                f"{names(exact)} contradict each other: they cover every {dimension.label} category but add up "
                f"to {percent_text(1 - rest)}, not 100%. Make them add up to 100% or drop one.",
                field="quotas",
            )
        # Only minimums are left to take the rest: they grow together, in proportion.
        grow = (sum(fixed.values()) + rest) / sum(fixed.values())
        for index in fixed:
            for category in by_index[index].where[dimension.key]:
                shares[category] *= grow
    ordered = {category: max(0.0, shares[category]) for category in dimension.categories}
    return Dimension(
        key=dimension.key, label=dimension.label, shares=ordered, source=dimension.source, year=dimension.year
    )


def effective_targets(population: Population, quotas, *, size: int) -> Population:
    """The marginals after single-dimension quotas: a share quota sets its categories' share, an
    "at least n" quota raises them to at least n/size; the dimension's other categories are rescaled in
    proportion. Quotas on two dimensions are left as constraints (they do not change the marginals)."""
    quotas = list(quotas)
    by_dimension: dict[str, list[tuple[int, Quota]]] = {}
    for index, quota in enumerate(quotas):
        if not quota.joint:
            by_dimension.setdefault(next(iter(quota.where)), []).append((index, quota))
    if not by_dimension:
        return population
    return population.replace_dimensions(
        _effective_dimension(dimension, by_dimension[dimension.key], population, size)
        if dimension.key in by_dimension
        else dimension
        for dimension in population.dimensions
    )


def cells_share(population: Population, key: str, categories) -> float:
    dimension = population.dimension(key)
    return sum(dimension.shares.get(category, 0.0) for category in categories)


def _set_by(key: str, quotas: list[Quota]) -> str:
    for index, quota in enumerate(quotas):
        if not quota.joint and key in quota.where:
            return f" (set by Quota {index + 1})"
    return ""


def _floor(share: float) -> float:
    """``share`` rounded down to a tenth of a point (a bound a researcher can type and still meet)."""
    return math.floor(share * 1000 + 1e-6) / 1000


def _ceil(share: float) -> float:
    return math.ceil(share * 1000 - 1e-6) / 1000


def _check_bounds(quotas: list[Quota], population: Population, size: int) -> None:
    """Joint quotas against the (effective) marginals: the Fréchet bounds of a two-dimension cell, and two
    quotas on different people that need more of a category than the target has."""
    for index, quota in enumerate(quotas):
        if not quota.joint:
            continue
        name = quota_name(index, quota, population)
        parts = []
        for key, categories in quota.where.items():
            share = cells_share(population, key, categories)
            parts.append((share, key, " or ".join(categories)))
        (share_a, _, text_a), (share_b, _, text_b) = parts
        upper = min(share_a, share_b)
        lower = max(0.0, share_a + share_b - 1)
        tight_share, tight_key, tight_text = min(parts)
        tight = f"{percent_text(tight_share)} of the target is {tight_text}{_set_by(tight_key, quotas)}"
        if quota.share is not None and quota.share > upper + 1e-6:
            raise PanelInputError(
                f"{name} is impossible: only {tight}, so at most {percent_text(upper)} can be "
                f"{quota.cells_text(population)}. Lower it to {percent_text(_floor(upper))} or less.",
                field="quotas",
            )
        if quota.share is not None and quota.share < lower - 1e-6:
            raise PanelInputError(
                f"{name} is impossible: with {percent_text(share_a)} {text_a} and {percent_text(share_b)} "
                f"{text_b} in the target, at least {percent_text(lower)} must be both. Raise it to "
                f"{percent_text(_ceil(lower))} or more.",
                field="quotas",
            )
        if quota.at_least is not None and quota.at_least > upper * size + 0.5:
            raise PanelInputError(
                f"{name} is impossible: only {tight}, so at most {math.floor(upper * size + 0.5):,} of "
                f"{size:,} people can be {quota.cells_text(population)}. Lower it.",
                field="quotas",
            )
    for i, a in enumerate(quotas):
        for j in range(i + 1, len(quotas)):
            b = quotas[j]
            if not (a.joint or b.joint) or _relation(a, b) != "disjoint":
                continue
            for key in set(a.where) & set(b.where):
                union = [c for c in population.dimension(key).categories if c in a.where[key] or c in b.where[key]]
                available = cells_share(population, key, union) * size
                needed = a.minimum(size) + b.minimum(size)
                if needed > available + 0.5:
                    raise PanelInputError(
                        f"{quota_name(i, a, population)} and {quota_name(j, b, population)} cannot be met together: "
                        f"between them they need {needed:,.0f} people who are {' or '.join(union)}, but the "
                        f"target has only {available:,.0f} of {size:,} ({percent_text(available / size)}). "
                        "Lower one of them.",
                        field="quotas",
                    )


def _linked_groups(quotas: list[Quota]) -> list[list[int]]:
    """Indexes of the joint quotas, grouped by the dimensions that link them."""
    groups: list[tuple[set[str], list[int]]] = []
    for index, quota in enumerate(quotas):
        if not quota.joint:
            continue
        keys, members = set(quota.where), [index]
        for group in [group for group in groups if group[0] & keys]:
            groups.remove(group)
            keys |= group[0]
            members = group[1] + members
        groups.append((keys, sorted(members)))
    return [members for _, members in groups]


def _check_feasible(quotas: list[Quota], population: Population, size: int) -> None:
    """Whether the joint quotas linked by their dimensions can hold together with the marginals: a linear
    programme over the shares of every combination of those dimensions' categories (exact, and instant
    at this size; raking would only say so after hundreds of iterations)."""
    for members in _linked_groups(quotas):
        keys = [key for key in population.keys if any(key in quotas[index].where for index in members)]
        dimensions = [population.dimension(key) for key in keys]
        cells = list(itertools.product(*[dimension.categories for dimension in dimensions]))
        if len(members) < 2 or len(cells) > FEASIBILITY_MAX_CELLS:
            continue
        equal_rows, equal_values, upper_rows, upper_values = [], [], [], []
        for position, dimension in enumerate(dimensions):
            for category, share in dimension.shares.items():
                equal_rows.append([1.0 if cell[position] == category else 0.0 for cell in cells])
                equal_values.append(share)
        for index in members:
            quota = quotas[index]
            inside = [
                1.0 if all(cell[keys.index(key)] in allowed for key, allowed in quota.where.items()) else 0.0
                for cell in cells
            ]
            if quota.share is not None:
                equal_rows.append(inside)
                equal_values.append(quota.share)
            else:
                upper_rows.append([-value for value in inside])
                upper_values.append(-(quota.at_least or 0) / size)
        result = linprog(
            np.zeros(len(cells)),
            A_ub=np.array(upper_rows) if upper_rows else None,
            b_ub=np.array(upper_values) if upper_values else None,
            A_eq=np.array(equal_rows),
            b_eq=np.array(equal_values),
            bounds=(0, None),
            method="highs",
        )
        if result.status == 2:
            names = [quota_name(index, quotas[index], population) for index in members]
            raise PanelInputError(
                f"{_list_names(names)} cannot all be met: together they need more people in some categories "
                "than the target has. Loosen one of them.",
                field="quotas",
            )


def parse_quotas(spec, population: Population, *, size: int) -> list[Quota]:
    """Quotas from their JSON form (``{"where": {dimension: category or [categories]}, "share": percent}``
    or ``..., "at_least": n``), matched to ``population``'s dimensions and categories by key or label,
    case-insensitively, and checked alone and together. Raises ``PanelInputError`` naming the quota."""
    size = check_panel_size(size)
    if spec in (None, "", []):
        return []
    if not isinstance(spec, list | tuple):
        raise PanelInputError("Quotas must be a list.", field="quotas")
    if len(spec) > MAX_QUOTAS:
        raise PanelInputError(
            f"There are {len(spec)} quotas; at most {MAX_QUOTAS} are allowed. Keep the ones that matter most.",
            field="quotas",
        )
    quotas = [_parse_one(position, item, population, size) for position, item in enumerate(spec)]
    _check_pairs(quotas, population, size)
    effective = effective_targets(population, quotas, size=size)
    _check_bounds(quotas, effective, size)
    _check_feasible(quotas, effective, size)
    return quotas
