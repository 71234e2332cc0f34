"""Panels and populations written out as data: the targets a user can draw from (for the builder and the
API), the example marginals CSV, a panel as one JSON document, and a composition shaped for the page."""

import json

from django.core.cache import cache

from panels import selectors, services
from panels.composition import WARN_POINTS
from panels.microdata import Microdata
from panels.models import MicrodataFile, Panel, PopulationFile, TargetKind
from panels.population import BUNDLED, Population
from panels.quality_report import quality_document

MARGINALS_HEADER = ["dimension", "category", "share", "source", "year"]
# A microdata file's population is its weighted marginals: summing up to 100,000 rows is kept for a day
# (an upload never changes; a deleted one's id is never reused).
MICRODATA_CACHE_SECONDS = 24 * 3600


def percent(share: float) -> float:
    return round(share * 100, 1)


def population_data(population: Population) -> dict:
    """A population as the builder, the pages and the API show it: shares in percent."""
    return {
        "name": population.name,
        "country": population.country,
        "dimensions": [
            {
                "key": dimension.key,
                "label": dimension.label,
                "source": dimension.source,
                "year": dimension.year,
                "categories": [
                    {"name": category, "share": percent(share)} for category, share in dimension.shares.items()
                ],
            }
            for dimension in population.dimensions
        ],
    }


def bundled(key: str) -> Population | None:
    return BUNDLED.get(key)


def population_of_file(population_file: PopulationFile) -> Population:
    return Population.from_json(population_file.data)


def population_of_microdata(microdata_file: MicrodataFile) -> Population:
    key = f"panels:microdata-population:{microdata_file.pk}"
    stored = cache.get(key)
    if stored is None:
        population = Microdata.from_json(microdata_file.data).population(name=microdata_file.name)
        cache.set(key, population.to_json(), MICRODATA_CACHE_SECONDS)
        return population
    return Population.from_json(stored)


def _option(value: str, kind: str, label: str, population: Population, item=None) -> dict:
    option: dict = {"value": value, "kind": kind, "label": label}
    if item is not None:
        option.update({"id": item.pk, "filename": item.filename, "created_at": item.created_at})
    if isinstance(item, MicrodataFile):
        option["row_count"] = item.row_count
    return {**option, **population_data(population)}


def target_options(*, owner) -> list[dict]:
    """Every population the user can draw a panel from, with its dimensions: the built-in ones first,
    then their uploads, newest first. ``value`` is what ``services.panel_build_start`` takes as ``target``."""
    labels = dict(services.target_choices(owner=owner))
    options = []
    for key, population in BUNDLED.items():
        value = f"{TargetKind.BUNDLED}:{key}"
        options.append(_option(value, TargetKind.BUNDLED, labels.get(value, population.name), population))
    for item in selectors.population_files(owner=owner):
        value = f"{TargetKind.MARGINALS}:{item.pk}"
        label = labels.get(value, item.name)
        options.append(_option(value, TargetKind.MARGINALS, label, population_of_file(item), item))
    for microdata in selectors.microdata_files(owner=owner):
        value = f"{TargetKind.MICRODATA}:{microdata.pk}"
        label = labels.get(value, microdata.name)
        options.append(_option(value, TargetKind.MICRODATA, label, population_of_microdata(microdata), microdata))
    return options


def upload_option(item: PopulationFile | MicrodataFile) -> dict:
    """One upload as a target (what the API answers after an upload)."""
    kind = TargetKind.MICRODATA if isinstance(item, MicrodataFile) else TargetKind.MARGINALS
    value = f"{kind}:{item.pk}"
    label = dict(services.target_choices(owner=item.owner)).get(value, item.name)
    if isinstance(item, MicrodataFile):
        return _option(value, kind, label, population_of_microdata(item), item)
    return _option(value, kind, label, population_of_file(item), item)


def example_marginals_rows() -> list[list]:
    """The built-in US adults as a marginals CSV: what an upload looks like."""
    population = BUNDLED["us_adults"]
    return [
        [dimension.label, category, percent(share), dimension.source, dimension.year or ""]
        for dimension in population.dimensions
        for category, share in dimension.shares.items()
    ]


# --- compositions --------------------------------------------------------------------------------------


def composition_page(comp: dict, *, partial: bool = False) -> dict:
    """A composition with what the bars need: each row's widths against the dimension's largest share
    (so a dimension of small categories is still readable) and whether the row is off by much.
    ``partial``: a panel still being written, whose quotas (for the whole panel) cannot be judged yet."""
    dimensions = []
    for dimension in comp.get("dimensions", []):
        rows = dimension.get("rows", [])
        top = max([row["target"] for row in rows] + [row["panel"] for row in rows] + [0.0001])
        dimensions.append(
            {
                **dimension,
                "rows": [
                    {
                        **row,
                        "target_width": round(100 * row["target"] / top, 1),
                        "panel_width": round(100 * row["panel"] / top, 1),
                        "off": abs(row["deviation"]) > WARN_POINTS,
                    }
                    for row in rows
                ],
            }
        )
    size = comp.get("size", 0)
    warnings = comp.get("warnings", []) if size else []  # an empty panel has its own message on the page
    if partial:
        unmet = tuple(f"The quota “{quota['label']}” is not met" for quota in comp.get("quotas", []))
        warnings = [warning for warning in warnings if not warning.startswith(unmet)]
    quotas = [
        {**quota, "target_text": quota["target"] if isinstance(quota["target"], str) else f"{quota['target']:.1f}%"}
        for quota in comp.get("quotas", [])
    ]
    return {
        **comp,
        "dimensions": dimensions,
        "quotas": quotas,
        "warnings": warnings,
        "warn_points": WARN_POINTS,
        "partial": partial,
    }


# --- a panel as one document ---------------------------------------------------------------------------


def panel_document(panel: Panel) -> dict:
    """Everything needed to read (or rebuild) a panel: what it was drawn from, its quotas and seed, each
    member's sampled core and persona, and its composition against the target."""
    members = panel.members.select_related("persona").order_by("position")
    return {
        "panel": {
            "id": panel.pk,
            "name": panel.name,
            "size": panel.size,
            "depth": panel.depth,
            "seed": panel.seed,
            "description": panel.description,
            "target_kind": panel.target_kind,
            "target_key": panel.target_key,
            "created_at": panel.created_at.isoformat(),
            "folder_id": panel.folder_id,
            "credits_per_person": panel.unit_cost,
        },
        "target": population_data(selectors.panel_population(panel)),
        "quotas": panel.quotas,
        "seed": panel.seed,
        "members": [
            {
                "position": member.position + 1,
                "core": member.core,
                "state": member.state,
                "persona": {"id": member.persona.pk, "name": member.persona.name} if member.persona else None,
                "error": member.error,
            }
            for member in members
        ],
        "composition": selectors.panel_composition(panel),
        # The latest quality check: every persona's probe answers, Big Five items and scores, and the
        # panel's diversity (panels/quality_report.py); null when the panel was never checked.
        "quality": quality_document(panel),
    }


def json_bytes(data) -> bytes:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str).encode()
