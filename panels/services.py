"""Writes for panels: uploaded targets (marginals, microdata), building a panel, deleting.

Building answers at once: it checks everything (size, target, quotas), samples the demographic cores
(cheap: no model is asked), reserves the credits (402 before any work when they are short) and creates
the job that has the personas written (panels/runner.py).
"""

import secrets
from contextlib import suppress

from django.db import transaction

from billing.services import credits_spend
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError
from cohorta.jobs.errors import IllegalJobTransition
from cohorta.jobs.models import ACTIVE_STATES, Job
from cohorta.jobs.services import job_cancel, job_create
from panels.microdata import MICRODATA_MAX_BYTES, Microdata, parse_microdata_csv
from panels.models import MicrodataFile, Panel, PanelMember, PopulationFile, ProfileDepth, TargetKind
from panels.population import BUNDLED, PanelInputError, Population, bundled_population, parse_marginals_csv
from panels.quality import running_check
from panels.quotas import Quota, effective_targets, parse_quotas
from panels.runner import reserve_key
from panels.sampling import sample_from_microdata, sample_from_population
from personas.models import Folder

JOB_KIND = "panel_build"
MAX_UPLOAD_NAME = 120
# The whole file is read into memory to be parsed; the readers give the exact limits in their errors.
MARGINALS_MAX_BYTES = 1024 * 1024


def _name(name: str, fallback: str) -> str:
    name = " ".join((name or "").split())[:MAX_UPLOAD_NAME]
    return name or fallback[:MAX_UPLOAD_NAME]


def _read(upload, *, limit: int, what: str) -> bytes:
    if upload is None:
        raise PanelInputError(f"Choose a CSV file of {what} to upload.", code="validation_error")
    if upload.size is not None and upload.size > limit:
        raise PanelInputError(
            f"“{upload.name}” is {upload.size / 1024 / 1024:.1f} MB; {what} files can be at most "
            f"{limit / 1024 / 1024:.0f} MB.",
            code="file_too_large",
        )
    return upload.read()


def population_upload(*, owner, upload, name: str = "", country: str = "") -> PopulationFile:
    """Population marginals from a CSV (dimension, category, share[, source, year])."""
    data = _read(upload, limit=MARGINALS_MAX_BYTES, what="population marginals")
    name = _name(name, (upload.name or "Uploaded population").rsplit(".", 1)[0])
    population = parse_marginals_csv(data, name=name, country=(country or "").strip()[:60])
    return PopulationFile.objects.create(
        owner=owner, name=name, filename=(upload.name or "")[:255], data=population.to_json()
    )


def microdata_upload(*, owner, upload, name: str = "", weight_column: str | None = None) -> MicrodataFile:
    """One row per real respondent with a weight column; panels drawn from it keep its joint structure."""
    data = _read(upload, limit=MICRODATA_MAX_BYTES, what="microdata")
    microdata = parse_microdata_csv(data, filename=upload.name or "microdata.csv", weight_column=weight_column or None)
    return MicrodataFile.objects.create(
        owner=owner,
        name=_name(name, (upload.name or "Uploaded microdata").rsplit(".", 1)[0]),
        filename=(upload.name or "")[:255],
        row_count=len(microdata.rows),
        data=microdata.to_json(),
    )


def population_file_delete(*, population_file: PopulationFile) -> None:
    population_file.delete()  # panels drawn from it keep their own copy of the target


def microdata_file_delete(*, microdata_file: MicrodataFile) -> None:
    microdata_file.delete()


# --- building ------------------------------------------------------------------------------------------


def panel_limits() -> tuple[int, int]:
    return 1, max(1, min(1000, get_app_settings().panel_max_size))


def _check_size(size) -> int:
    low, high = panel_limits()
    try:
        size = int(size)
    except (TypeError, ValueError):
        raise ApplicationError(
            f"How many people? Give a whole number from {low} to {high:,}.",
            code="validation_error",
            extra={"fields": {"size": [f"From {low} to {high:,}."]}},
        ) from None
    if not low <= size <= high:
        raise ApplicationError(
            f"A panel has between {low} and {high:,} people; you asked for {size:,}.",
            code="panel_too_large" if size > high else "validation_error",
            extra={"fields": {"size": [f"From {low} to {high:,}."]}, "limit": high},
        )
    return size


def unit_cost(depth: str) -> int:
    app = get_app_settings()
    return app.persona_credit_cost if depth == ProfileDepth.FULL else app.panel_light_credit_cost


def panel_cost(*, size: int, depth: str) -> int:
    return unit_cost(depth) * size


def target_choices(*, owner) -> list[tuple[str, str]]:
    """Every target a user can build a panel to: ``(value, label)``, values as ``panel_build_start`` takes."""
    choices = [(f"{TargetKind.BUNDLED}:{key}", population.name) for key, population in BUNDLED.items()]
    choices += [
        (f"{TargetKind.MARGINALS}:{item.pk}", f"{item.name} (your marginals)")
        for item in PopulationFile.objects.filter(owner=owner)
    ]
    choices += [
        (f"{TargetKind.MICRODATA}:{item.pk}", f"{item.name} (your microdata, {item.row_count:,} rows)")
        for item in MicrodataFile.objects.filter(owner=owner)
    ]
    return choices


def _target(owner, value: str) -> tuple[str, str, PopulationFile | None, MicrodataFile | None]:
    kind, _, key = (value or "").partition(":")
    unknown = ApplicationError(
        "Choose who the panel should represent: a built-in population or one of your uploads.",
        code="validation_error",
        extra={"fields": {"target": ["Unknown target."]}},
    )
    if kind == TargetKind.BUNDLED:
        if key not in BUNDLED:
            raise unknown
        return kind, key, None, None
    if not key.isdigit():
        raise unknown
    if kind == TargetKind.MARGINALS:
        population_file = PopulationFile.objects.filter(owner=owner, pk=int(key)).first()
        if population_file is None:
            raise unknown
        return kind, "", population_file, None
    if kind == TargetKind.MICRODATA:
        microdata_file = MicrodataFile.objects.filter(owner=owner, pk=int(key)).first()
        if microdata_file is None:
            raise unknown
        return kind, "", None, microdata_file
    raise unknown


def _folder_name(*, owner, name: str) -> str:
    base = name[:90]
    taken = set(Folder.objects.filter(owner=owner, name__startswith=base).values_list("name", flat=True))
    number, candidate = 1, base
    while candidate in taken:
        number += 1
        candidate = f"{base} ({number})"
    return candidate


def _cores(
    *, kind: str, key: str, population_file, microdata_file, quotas_spec, size: int, seed: int
) -> tuple[Population, list[Quota], list[dict]]:
    if kind == TargetKind.MICRODATA:
        microdata = Microdata.from_json(microdata_file.data)
        population = microdata.population(name=microdata_file.name)
        quotas = parse_quotas(quotas_spec, population, size=size)
        cores = sample_from_microdata(microdata, size=size, quotas=quotas, seed=seed)
        return effective_targets(population, quotas, size=size), quotas, cores
    population = bundled_population(key) if kind == TargetKind.BUNDLED else Population.from_json(population_file.data)
    quotas = parse_quotas(quotas_spec, population, size=size)
    cores = sample_from_population(population, size=size, quotas=quotas, seed=seed)
    return effective_targets(population, quotas, size=size), quotas, cores


def _seed(seed) -> int:
    if seed in (None, ""):
        return secrets.randbelow(2**31)
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise ApplicationError("The seed must be a whole number.", code="validation_error") from None
    if not 0 <= seed < 2**63:
        raise ApplicationError("The seed must be a whole number from 0 up.", code="validation_error")
    return seed


def panel_build_start(
    *,
    owner,
    target: str,
    size,
    name: str = "",
    quotas=None,
    depth: str = ProfileDepth.LIGHT,
    seed=None,
    description: str = "",
) -> Panel:
    """Check, sample, reserve, and create the job that writes the personas; raises before any work."""
    size = _check_size(size)
    if depth not in ProfileDepth.values:
        raise ApplicationError("Choose light or full profiles.", code="validation_error")
    if quotas is not None and not isinstance(quotas, list):
        raise ApplicationError("Quotas must be a list.", code="validation_error")
    seed = _seed(seed)
    kind, key, population_file, microdata_file = _target(owner, target)
    population, _quotas, cores = _cores(
        kind=kind,
        key=key,
        population_file=population_file,
        microdata_file=microdata_file,
        quotas_spec=quotas or [],
        size=size,
        seed=seed,
    )
    return panel_create(
        owner=owner,
        population=population,
        cores=cores,
        seed=seed,
        name=name,
        depth=depth,
        description=description,
        target_kind=kind,
        target_key=key,
        population_file=population_file,
        microdata_file=microdata_file,
        quotas=quotas or [],
    )


def panel_create(
    *,
    owner,
    population: Population,
    cores: list[dict],
    seed: int,
    name: str = "",
    depth: str = ProfileDepth.LIGHT,
    description: str = "",
    target_kind: str = TargetKind.REFERENCE,
    target_key: str = "",
    population_file: PopulationFile | None = None,
    microdata_file: MicrodataFile | None = None,
    quotas: list | None = None,
    charge: bool = True,
) -> Panel:
    """A panel of these sampled cores (already checked), its credits reserved and its job created: what
    ``panel_build_start`` ends with, and how a validation builds the panel matched to a real survey's
    respondents (one core per respondent). ``charge=False``: an exact replay the cache answers."""
    size = _check_size(len(cores))
    if depth not in ProfileDepth.values:
        raise ApplicationError("Choose light or full profiles.", code="validation_error")
    name = _name(name, f"{population.name} · {size:,} people")
    description = (description or "").strip()[:2000]
    cost = unit_cost(depth) if charge else 0
    with transaction.atomic():
        folder = Folder.objects.create(owner=owner, name=_folder_name(owner=owner, name=name))
        panel = Panel.objects.create(
            owner=owner,
            name=name,
            size=size,
            seed=seed,
            depth=depth,
            target_kind=target_kind,
            target_key=target_key,
            population_file=population_file,
            microdata_file=microdata_file,
            target=population.to_json(),
            quotas=quotas or [],
            description=description,
            unit_cost=cost,
            folder=folder,
        )
        PanelMember.objects.bulk_create(
            PanelMember(panel=panel, position=index, core=core) for index, core in enumerate(cores)
        )
        if cost:
            credits_spend(
                user=owner,
                amount=cost * size,
                idempotency_key=reserve_key(panel),
                reference=f"panel:{panel.pk}",
                description=f"Panel of {size:,} people: {name}"[:200],
            )
        panel.job = job_create(
            owner=owner,
            kind=JOB_KIND,
            target=panel,
            total=size,
            params={"panel_id": panel.pk},
            message="Waiting to start",
        )
        panel.save(update_fields=["job"])
    return panel


def panel_delete(*, panel: Panel, with_personas: bool = False) -> None:
    """Delete a panel, stopping it first if it is being written (what is not written is refunded). Its
    personas stay in their folder unless ``with_personas``."""
    if panel.job_id is not None:
        job = Job.objects.filter(pk=panel.job_id, state__in=ACTIVE_STATES).first()
        if job is not None:
            with suppress(IllegalJobTransition):  # it finished meanwhile
                job_cancel(job=job, reason="The panel was deleted.")
    check = running_check(panel)
    if check is not None and check.job is not None:  # its personas not yet checked are refunded
        with suppress(IllegalJobTransition):
            job_cancel(job=check.job, reason="The panel was deleted.")
    if with_personas:
        for member in panel.members.select_related("persona").exclude(persona=None):
            if member.persona is not None:
                member.persona.delete()
    panel.delete()
