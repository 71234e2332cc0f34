"""Drawing a panel's demographic cores: raking (``ipfn``) for marginals and quotas, weighted sampling of
microdata rows, then a seeded repair that brings the counts onto their integer targets.

From a population (marginals): the candidate pool is every combination of categories (a pandas frame,
one indicator column per joint quota) whose weights ``ipfn`` rakes to the effective marginals (after
single-dimension quotas) and the joint quotas' shares. Raking from equal weights leaves dimensions that
no joint quota links independent of each other, so the pool is raked in blocks: each group of
dimensions linked by joint quotas is one block, the other dimensions are packed into blocks of at most
``POOL_MAX_ROWS`` combinations (US adults without joint quotas: one block of 37,800), and a person is one
row of every block. That is exactly the raked cross product, without its size.

From microdata: the pool is the respondents, weighted by their weights (raked with ``ipfn`` when there
are quotas), so people come with their real combination of categories.

Then ``size`` people are drawn in proportion to the raked weights with ``numpy``'s PCG64 generator
seeded by ``seed``, and repaired as in the combinatorial optimisation of spatial microsimulation: a
stream of fresh draws from the same pool is offered one by one, and a candidate replaces the panel
member whose swap lowers the error over all constraints (every category's count and every quota; the
squared gap to the integer target, see ``_Constraints``) the most, if it lowers it at all, until no count
is off its target by more than one and every "at least" quota is met (or nothing improves for a long
while). People are only ever whole rows of the pool, never edited field by field, so the raked joint
structure is kept; a 1,000-person panel usually needs about a hundred swaps.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from ipfn import ipfn

from panels.microdata import Microdata
from panels.population import PanelInputError, Population, check_panel_size
from panels.quotas import Quota, effective_targets, quota_name

POOL_MAX_ROWS = 50_000
CANDIDATE_CHUNK = 4096
RAKE_TOLERANCE = 5e-4  # largest gap between a raked share and its target (as a proportion) accepted
RAKE_MAX_ITERATIONS = 500
PATIENCE = 20_000  # candidates offered in a row without an improvement before the repair stops
MAX_CANDIDATES = 400_000
QUOTA_WEIGHT = 3.0
QUOTAS_KEY = "_quotas"  # in target_counts(): not a dimension key (keys never start with "_")


def largest_remainder(shares: list[float], total: int) -> list[int]:
    """Whole numbers proportional to ``shares`` that add up to ``total`` (ties go to the earlier one)."""
    raw = [share * total for share in shares]
    counts = [math.floor(value + 1e-9) for value in raw]
    left = total - sum(counts)
    order = sorted(range(len(raw)), key=lambda index: (-(raw[index] - counts[index]), index))
    for index in order[: max(0, left)]:
        counts[index] += 1
    return counts


def target_counts(population: Population, quotas=(), *, size: int) -> dict[str, dict[str, int]]:
    """The integer targets a panel of ``size`` is repaired to: per dimension, per category (the effective
    marginals after single-dimension quotas, by largest remainder); under ``"_quotas"``, per quota label,
    the exact count of a share quota or the minimum of an "at least" quota."""
    quotas = list(quotas)
    effective = effective_targets(population, quotas, size=size)
    result: dict[str, dict[str, int]] = {}
    for dimension in effective.dimensions:
        counts = largest_remainder(list(dimension.shares.values()), size)
        result[dimension.key] = dict(zip(dimension.categories, counts, strict=True))
    if quotas:
        result[QUOTAS_KEY] = {quota.label(population): _quota_target(quota, size) for quota in quotas}
    return result


def _quota_target(quota: Quota, size: int) -> int:
    if quota.share is not None:
        return largest_remainder([quota.share, 1 - quota.share], size)[0]
    return int(quota.at_least or 0)


# --- constraints and the repair -------------------------------------------------------------------------


class _Constraints:
    """Every category of every dimension, then every quota, as columns with integer targets. People are
    rows of category codes (one per dimension, indexing ``population.dimension(key).categories``)."""

    def __init__(self, population: Population, quotas: list[Quota], size: int) -> None:
        self.keys = list(population.keys)
        self.categories = [list(dimension.categories) for dimension in population.dimensions]
        sizes = [len(categories) for categories in self.categories]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.width = int(sum(sizes))
        targets = target_counts(population, quotas, size=size)
        cell_targets = [
            targets[key][category] for key, cats in zip(self.keys, self.categories, strict=True) for category in cats
        ]
        quota_targets = [_quota_target(quota, size) for quota in quotas]
        self.targets = np.array(cell_targets + quota_targets, dtype=np.float64)
        self.one_sided = np.array([False] * self.width + [quota.at_least is not None for quota in quotas])
        # The error is squared: a swap that takes a count 4 off its target to 3 is worth making one elsewhere
        # 1 off (with dimensions as associated as age and income, no swap can move one without the other).
        # A quota weighs QUOTA_WEIGHT times a category: moving someone into or out of a quota's cells
        # usually puts one of its dimensions 1 off in two categories, which the next swaps repair.
        # A shortfall under a minimum weighs more than any swap can cost elsewhere.
        self.weights = np.array([1.0] * self.width + [QUOTA_WEIGHT] * len(quotas))
        self.penalty = 10.0 * size * (len(self.keys) + QUOTA_WEIGHT * len(quotas) + 1)
        index = {key: position for position, key in enumerate(self.keys)}
        self.quota_masks = []
        for quota in quotas:
            masks = []
            for key, allowed in quota.where.items():
                position = index[key]
                masks.append((position, np.array([category in allowed for category in self.categories[position]])))
            self.quota_masks.append(masks)

    def cells(self, codes: np.ndarray) -> np.ndarray:
        """Column index of each person's category in each dimension: (n, dimensions)."""
        return codes + self.offsets[None, :]

    def members(self, codes: np.ndarray) -> np.ndarray:
        """Whether each person is in each quota: (n, quotas) as floats."""
        result = np.ones((codes.shape[0], len(self.quota_masks)), dtype=np.float64)
        for column, masks in enumerate(self.quota_masks):
            for position, mask in masks:
                result[:, column] *= mask[codes[:, position]]
        return result

    def counts(self, codes: np.ndarray) -> np.ndarray:
        cells = np.bincount(self.cells(codes).ravel(), minlength=self.width).astype(np.float64)
        return np.concatenate([cells, self.members(codes).sum(axis=0)])

    def cost(self, counts: np.ndarray) -> np.ndarray:
        gap = counts - self.targets
        return np.where(self.one_sided, self.penalty * np.maximum(0.0, -gap), self.weights * gap * gap)

    def satisfied(self, counts: np.ndarray) -> bool:
        gap = counts - self.targets
        return bool(np.all(np.where(self.one_sided, gap >= 0, np.abs(gap) <= 1)))


class _Stream:
    """Fresh draws from the pool, as one fixed sequence (drawn in fixed chunks from the generator)."""

    def __init__(self, draw) -> None:
        self.draw = draw
        self.buffer = np.empty((0, 0), dtype=np.int64)
        self.position = 0
        self.used = 0

    def peek(self, count: int) -> np.ndarray:
        while self.buffer.shape[0] - self.position < count:
            fresh = self.draw(CANDIDATE_CHUNK)
            rest = self.buffer[self.position :] if self.buffer.size else fresh[:0]
            self.buffer = np.concatenate([rest, fresh])
            self.position = 0
        return self.buffer[self.position : self.position + count]

    def advance(self, count: int) -> None:
        self.position += count
        self.used += count


def _repair(panel: np.ndarray, stream: _Stream, constraints: _Constraints) -> np.ndarray:
    """Swap panel members for candidates from ``stream`` while that lowers the error (``_Constraints.cost``).

    Candidates are considered strictly in stream order: each replaces the member whose removal gives the
    lowest error (the first such member on a tie) if that error is lower than now. Batches only compute
    many candidates at once; the result is the same as one at a time."""
    panel = panel.copy()
    cells = constraints.cells(panel)
    members = constraints.members(panel)
    counts = constraints.counts(panel)
    width = constraints.width
    batch, misses = 16, 0
    while not constraints.satisfied(counts) and misses < PATIENCE and stream.used < MAX_CANDIDATES:
        base = constraints.cost(counts)
        up = constraints.cost(counts + 1) - base  # cost change of one more person in a column
        down = constraints.cost(counts - 1) - base  # ... of one fewer
        both = up + down
        candidates = stream.peek(batch)
        candidate_cells = constraints.cells(candidates)
        candidate_members = constraints.members(candidates)
        gain_in = up[candidate_cells].sum(axis=1) + candidate_members @ up[width:]
        loss_out = down[cells].sum(axis=1) + members @ down[width:]
        overlap = (candidate_members * both[width:]) @ members.T
        for position in range(cells.shape[1]):
            same = candidate_cells[:, position, None] == cells[None, :, position]
            overlap += same * both[candidate_cells[:, position]][:, None]
        delta = gain_in[:, None] + loss_out[None, :] - overlap
        best = delta.argmin(axis=1)
        improving = np.flatnonzero(delta[np.arange(len(best)), best] < -1e-9)
        if improving.size == 0:
            stream.advance(batch)
            misses += batch
            batch = min(batch * 2, 512)
            continue
        chosen = int(improving[0])
        person = int(best[chosen])
        counts[cells[person]] -= 1
        counts[width:] -= members[person]
        panel[person] = candidates[chosen]
        cells[person] = candidate_cells[chosen]
        members[person] = candidate_members[chosen]
        counts[cells[person]] += 1
        counts[width:] += members[person]
        stream.advance(chosen + 1)
        misses = 0
        batch = max(16, 2 * (chosen + 1))
    return panel


def _unmet_minimums(panel: np.ndarray, constraints: _Constraints, quotas: list[Quota], population) -> None:
    counts = constraints.counts(panel)
    for index, quota in enumerate(quotas):
        if quota.at_least is not None and counts[constraints.width + index] < quota.at_least:
            raise PanelInputError(
                f"{quota_name(index, quota, population)} could not be met together with the other targets: the "
                f"panel has only {int(counts[constraints.width + index]):,}. Lower it or loosen the other quotas.",
                field="quotas",
            )


# --- raking ---------------------------------------------------------------------------------------------


@dataclass
class _Block:
    positions: list[int]  # dimensions (positions in the population) this block fixes
    codes: np.ndarray  # (rows, len(positions)) category codes
    probabilities: np.ndarray  # raked weights, summing to 1


def _rake(frame: pd.DataFrame, aggregates: list[tuple[str, dict]], labels: dict[str, str]) -> pd.DataFrame:
    """``frame``'s ``w`` raked by ipfn so that, for each ``(column, {value: share})``, the weight of each
    value of the column is its share. Raises naming the constraints (``labels``) it could not meet."""
    series, dimensions = [], []
    for column, shares in aggregates:
        present = set(frame[column].unique().tolist())
        for value, share in shares.items():
            if value not in present and share > 1e-12:
                raise PanelInputError(
                    f"{labels.get(column, column)} cannot be met: nobody in the pool can be in it. Loosen it.",
                    field="quotas",
                )
        kept = {value: share for value, share in shares.items() if value in present}
        item = pd.Series(kept, dtype="float64")
        item.index.name = column
        series.append(item)
        dimensions.append([column])
    total = float(frame["w"].sum())
    frame = frame.copy()
    frame["w"] = frame["w"] / total
    frame["_row"] = np.arange(len(frame))
    rows = len(frame)
    if any(frame[column].value_counts().min() < 2 for column, _ in aggregates):
        # ipfn's frame mode fails on a value found in a single row (pandas hands it a number, not rows):
        # every row is raked as two halves, which changes nothing else.
        frame = pd.concat([frame, frame], ignore_index=True)
        frame["w"] = frame["w"] / 2
    # ipfn prints its convergence to stdout, divides 0 by 0 for empty cells and uses pandas' deprecated
    # ``inplace=``; none of it is ours to see.
    with (
        contextlib.redirect_stdout(io.StringIO()),
        np.errstate(divide="ignore", invalid="ignore"),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", message="The inplace keyword", category=Warning)
        raked, converged = ipfn.ipfn(
            frame,
            series,
            dimensions,
            weight_col="w",
            convergence_rate=1e-6,
            rate_tolerance=1e-9,
            max_iteration=RAKE_MAX_ITERATIONS,
            verbose=1,
        ).iteration()
    # Back in the frame's row order (halves added up again), whatever ipfn did to it.
    weights = np.bincount(raked["_row"].to_numpy(dtype=np.int64), weights=raked["w"].to_numpy(), minlength=rows)
    raked = frame.iloc[:rows].drop(columns="_row").reset_index(drop=True)
    raked["w"] = weights
    off = []
    raked_total = float(raked["w"].sum())
    for column, shares in aggregates:
        achieved = raked.groupby(column)["w"].sum() / raked_total if raked_total > 0 else None
        for value, share in shares.items():
            got = float(achieved.get(value, 0.0)) if achieved is not None else 0.0
            if abs(got - share) > RAKE_TOLERANCE:
                off.append(column)
                break
    if off or not converged or not raked_total > 0:
        # The quotas raked together here are the ones that cannot all hold.
        named = [label for column, label in labels.items() if column.startswith("quota_")]
        if len(named) > 1:
            raise PanelInputError(
                f"{', '.join(named[:-1])} and {named[-1]} cannot be met together with the target's shares. "
                "Loosen one of them.",
                field="quotas",
            )
        if named:
            raise PanelInputError(f"{named[0]} cannot be met with the target's shares. Loosen it.", field="quotas")
        raise PanelInputError("The target's shares could not be matched. Check the population's shares.")
    return raked


def _component_groups(population: Population, joint: list[tuple[int, Quota]]) -> list[list[int]]:
    """Dimensions linked by joint quotas, grouped (positions, in population order)."""
    parent = list(range(len(population.dimensions)))

    def root(position: int) -> int:
        while parent[position] != position:
            parent[position] = parent[parent[position]]
            position = parent[position]
        return position

    index = {key: position for position, key in enumerate(population.keys)}
    for _, quota in joint:
        first, *others = [index[key] for key in quota.where]
        for other in others:
            parent[root(other)] = root(first)
    linked = {index[key] for _, quota in joint for key in quota.where}
    groups: dict[int, list[int]] = {}
    for position in sorted(linked):
        groups.setdefault(root(position), []).append(position)
    return list(groups.values())


def _positive_codes(population: Population, position: int) -> list[int]:
    dimension = population.dimensions[position]
    return [code for code, share in enumerate(dimension.shares.values()) if share > 0]


def _population_blocks(population: Population, quotas: list[Quota], size: int) -> list[_Block]:
    joint = [(index, quota) for index, quota in enumerate(quotas) if quota.joint]
    groups = _component_groups(population, joint)
    linked = {position for group in groups for position in group}
    for group in groups:
        rows = math.prod(len(_positive_codes(population, position)) for position in group)
        if rows > POOL_MAX_ROWS:
            labels = ", ".join(population.dimensions[position].label for position in group)
            raise PanelInputError(
                f"The quotas link {labels}: {rows:,} combinations of categories, more than {POOL_MAX_ROWS:,}. "
                "Use fewer dimensions in quotas on two dimensions.",
                field="quotas",
            )
    packed: list[list[int]] = []
    current: list[int] = []
    rows = 1
    for position in range(len(population.dimensions)):
        if position in linked:
            continue
        count = len(_positive_codes(population, position))
        if current and rows * count > POOL_MAX_ROWS:
            packed.append(current)
            current, rows = [], 1
        current.append(position)
        rows *= count
    if current:
        packed.append(current)
    blocks = []
    for group in sorted(groups + packed):
        group_quotas = [
            (index, quota) for index, quota in joint if population.keys.index(next(iter(quota.where))) in group
        ]
        blocks.append(_rake_block(population, group, group_quotas, size))
    return blocks


def _rake_with_quotas(
    frame: pd.DataFrame, population: Population, quotas: list[tuple[int, Quota]], size: int
) -> pd.DataFrame:
    """``frame`` (one column of category codes per dimension it covers, weights in ``w``) raked by ipfn
    to those dimensions' shares and to ``quotas`` (joint quotas on them, each as an indicator column).
    An "at least" quota the raking leaves short is added as a share (its minimum) and the frame raked
    again."""
    frame = frame.copy()
    keys = [column for column in frame.columns if column != "w"]
    labels = {}
    for index, quota in quotas:
        inside = np.ones(len(frame), dtype=bool)
        for key, allowed in quota.where.items():
            categories = population.dimension(key).categories
            codes = [code for code, category in enumerate(categories) if category in allowed]
            inside &= frame[key].isin(codes).to_numpy()
        frame[f"quota_{index}"] = inside
        labels[f"quota_{index}"] = quota_name(index, quota, population)
    aggregates: dict[str, dict] = {}
    for key in keys:
        dimension = population.dimension(key)
        labels[key] = dimension.label
        aggregates[key] = {code: share for code, share in enumerate(dimension.shares.values()) if share > 0}
    for index, quota in quotas:
        if quota.share is not None:
            aggregates[f"quota_{index}"] = {False: 1 - quota.share, True: quota.share}
    raked = _rake(frame, list(aggregates.items()), labels)
    for _ in range(len(quotas)):
        short = [
            (index, quota)
            for index, quota in quotas
            if quota.at_least is not None
            and f"quota_{index}" not in aggregates
            and raked.loc[raked[f"quota_{index}"], "w"].sum() < quota.at_least / size - 1e-9
        ]
        if not short:
            break
        for index, quota in short:
            share = (quota.at_least or 0) / size
            aggregates[f"quota_{index}"] = {False: 1 - share, True: share}
        raked = _rake(frame, list(aggregates.items()), labels)
    return raked


def _rake_block(population: Population, positions: list[int], quotas: list[tuple[int, Quota]], size: int) -> _Block:
    keys = [population.keys[position] for position in positions]
    combos = list(itertools.product(*[_positive_codes(population, position) for position in positions]))
    frame = pd.DataFrame(combos, columns=keys, dtype="int64")
    frame["w"] = 1.0
    raked = _rake_with_quotas(frame, population, quotas, size)
    weights = raked["w"].to_numpy(dtype=np.float64)
    return _Block(
        positions=list(positions),
        codes=raked[keys].to_numpy(dtype=np.int64),
        probabilities=weights / weights.sum(),
    )


def _draw_blocks(blocks: list[_Block], dimensions: int, rng: np.random.Generator):
    def draw(count: int) -> np.ndarray:
        codes = np.zeros((count, dimensions), dtype=np.int64)
        for block in blocks:
            rows = rng.choice(len(block.probabilities), size=count, p=block.probabilities)
            codes[:, block.positions] = block.codes[rows]
        return codes

    return draw


def raked_pool(population: Population, quotas=(), *, size: int) -> pd.DataFrame:
    """The raked candidate pool as one frame (every combination of categories, its probability in ``w``):
    the blocks' cross product. For inspection and tests; sampling never builds it."""
    quotas = list(quotas)
    effective = effective_targets(population, quotas, size=size)
    blocks = _population_blocks(effective, quotas, size)
    frame = pd.DataFrame({"w": [1.0]})
    for block in blocks:
        keys = [effective.keys[position] for position in block.positions]
        part = pd.DataFrame(
            {
                key: [effective.dimensions[position].categories[code] for code in block.codes[:, column]]
                for column, (position, key) in enumerate(zip(block.positions, keys, strict=True))
            }
        )
        part["w_block"] = block.probabilities
        frame = frame.merge(part, how="cross")
        frame["w"] = frame["w"] * frame.pop("w_block")
    return frame[[*effective.keys, "w"]]


# --- sampling -------------------------------------------------------------------------------------------


def _cores(codes: np.ndarray, population: Population) -> list[dict[str, str]]:
    categories = [dimension.categories for dimension in population.dimensions]
    keys = population.keys
    return [
        {key: categories[position][code] for position, (key, code) in enumerate(zip(keys, row, strict=True))}
        for row in codes.tolist()
    ]


def _generator(seed: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise PanelInputError(f"The seed must be a whole number from 0 up; got “{seed}”.", field="seed")
    return np.random.Generator(np.random.PCG64(seed))


def sample_from_population(
    population: Population, *, size: int, quotas: list[Quota] | tuple = (), seed: int
) -> list[dict[str, str]]:
    """``size`` cores ``{dimension key: category}`` drawn from ``population``'s raked pool and repaired
    onto the integer targets; the same inputs and seed always give the same list."""
    size = check_panel_size(size)
    quotas = list(quotas)
    rng = _generator(seed)
    effective = effective_targets(population, quotas, size=size)
    blocks = _population_blocks(effective, quotas, size)
    draw = _draw_blocks(blocks, len(effective.dimensions), rng)
    panel = draw(size)
    constraints = _Constraints(population, quotas, size)
    panel = _repair(panel, _Stream(draw), constraints)
    _unmet_minimums(panel, constraints, quotas, population)
    # The repair swaps people in the order it finds them; shuffled, any first part of the panel (what is
    # written first, or all there is if it stops early) is as representative as the whole.
    return _cores(rng.permutation(panel, axis=0), effective)


def _microdata_codes(microdata: Microdata, population: Population) -> np.ndarray:
    codes = np.zeros((len(microdata.rows), len(microdata.columns)), dtype=np.int64)
    for position, key in enumerate(microdata.columns):
        lookup = {category: code for code, category in enumerate(population.dimension(key).categories)}
        codes[:, position] = [lookup[row[key]] for row in microdata.rows]
    return codes


def _rake_microdata(
    codes: np.ndarray, weights: np.ndarray, population: Population, quotas: list[Quota], size: int
) -> np.ndarray:
    """The respondents' weights raked by ipfn to the effective marginals and the joint quotas. Rows with
    the same categories are raked as one group (the constraints cannot tell them apart)."""
    groups, inverse = np.unique(codes, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    group_weights = np.bincount(inverse, weights=weights, minlength=len(groups))
    frame = pd.DataFrame(groups, columns=list(population.keys), dtype="int64")
    frame["w"] = group_weights
    joint = [(index, quota) for index, quota in enumerate(quotas) if quota.joint]
    raked = _rake_with_quotas(frame, population, joint, size)
    before = group_weights / group_weights.sum()
    factor = np.divide(raked["w"].to_numpy(), before, where=before > 0, out=np.zeros(len(groups)))
    return weights * factor[inverse]


def sample_from_microdata(
    microdata: Microdata, *, size: int, quotas: list[Quota] | tuple = (), seed: int
) -> list[dict[str, str]]:
    """``size`` cores drawn from the microdata's respondents in proportion to their weights (raked to the
    quotas when there are any) and repaired onto the weighted marginals' integer targets."""
    size = check_panel_size(size)
    quotas = list(quotas)
    rng = _generator(seed)
    population = microdata.population(name="microdata")
    effective = effective_targets(population, quotas, size=size)
    codes = _microdata_codes(microdata, population)
    weights = np.array(microdata.weights, dtype=np.float64)
    # Respondents with no weight, or in a category a quota sets to 0, cannot be drawn.
    usable = weights > 0
    for position, dimension in enumerate(effective.dimensions):
        shares = np.array(list(dimension.shares.values()))
        usable &= shares[codes[:, position]] > 0
    for position, dimension in enumerate(effective.dimensions):
        present = set(codes[usable, position].tolist())
        for code, (category, share) in enumerate(dimension.shares.items()):
            if share > 0 and code not in present:
                raise PanelInputError(
                    f"Nobody in the microdata who can be drawn is “{category}” ({dimension.label}), but the quotas "
                    f"give it {share * 100:.1f}% of the panel. Drop or change the quota on {dimension.label}.",
                    field="quotas",
                )
    codes, weights = codes[usable], weights[usable]
    if quotas:
        weights = _rake_microdata(codes, weights, effective, quotas, size)
    probabilities = weights / weights.sum()

    def draw(count: int) -> np.ndarray:
        return codes[rng.choice(len(probabilities), size=count, p=probabilities)]

    panel = draw(size)
    constraints = _Constraints(population, quotas, size)
    panel = _repair(panel, _Stream(draw), constraints)
    _unmet_minimums(panel, constraints, quotas, population)
    # The repair swaps people in the order it finds them; shuffled, any first part of the panel (what is
    # written first, or all there is if it stops early) is as representative as the whole.
    return _cores(rng.permutation(panel, axis=0), effective)
