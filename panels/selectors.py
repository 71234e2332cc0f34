"""Reads for panels: lists, a panel's state and its composition against its target."""

from django.db.models import Count, Q, QuerySet

from panels.composition import composition
from panels.cores import persona_core
from panels.models import MemberState, MicrodataFile, Panel, PanelMember, PopulationFile
from panels.population import BUNDLED, Population
from panels.quotas import parse_quotas
from personas.models import PROFILE_FIELDS, Folder, Persona


def panel_list(*, owner) -> QuerySet[Panel]:
    return (
        Panel.objects.filter(owner=owner)
        .select_related("job", "folder")
        .annotate(written=Count("members", filter=Q(members__state=MemberState.DONE)))
    )


def population_files(*, owner) -> QuerySet[PopulationFile]:
    return PopulationFile.objects.filter(owner=owner)


def microdata_files(*, owner) -> QuerySet[MicrodataFile]:
    return MicrodataFile.objects.filter(owner=owner)


def panel_population(panel: Panel) -> Population:
    return Population.from_json(panel.target)


def panel_composition(panel: Panel, *, written_only: bool = True) -> dict:
    """The panel against its target, dimension by dimension. ``written_only``: the people whose persona
    exists (what a survey on the panel will ask); otherwise every sampled core."""
    population = panel_population(panel)
    members = PanelMember.objects.filter(panel=panel)
    if written_only:
        members = members.filter(state=MemberState.DONE, persona__isnull=False)
    cores = list(members.order_by("position").values_list("core", flat=True))
    quotas = parse_quotas(panel.quotas or [], population, size=panel.size) if panel.quotas else []
    return composition(cores, population, quotas=quotas)


def folder_composition(folder: Folder, population: Population) -> dict:
    """Any folder of personas against a population: sampled personas by their core, the others by
    reading their profile fields into the population's categories (what cannot be read is "Not stated")."""
    cores = []
    for persona in Persona.objects.filter(folder=folder).only("core", *PROFILE_FIELDS):
        mapped = persona_core(persona.profile_data(), population)
        mapped.update({item["key"]: item["value"] for item in persona.core or []})
        cores.append(mapped)
    return composition(cores, population)


def bundled_populations() -> list[Population]:
    return list(BUNDLED.values())
