"""Reads for personas, always scoped to their owner. One object by its id: ``personas/access.py``."""

from django.db.models import Count, Q, QuerySet

from cohorta.jobs.models import ACTIVE_STATES
from cohorta.jobs.selectors import jobs_for_target
from personas.models import Folder, Persona, PersonaVersion


def folders_for_user(*, user) -> QuerySet[Folder]:
    return Folder.objects.filter(owner=user).annotate(persona_count=Count("personas")).order_by("name")


def folder_choices_for_user(*, user) -> QuerySet[Folder]:
    """The user's folders for a form's folder field."""
    return Folder.objects.filter(owner=user).order_by("name")


def personas_for_user(
    *,
    user,
    q: str = "",
    folder: str | int | None = None,
    source: str = "",
    age_min: int | None = None,
    age_max: int | None = None,
    location: str = "",
    occupation: str = "",
    tag: str = "",
) -> QuerySet[Persona]:
    """The library with its search and filters. ``folder="none"`` means personas in no folder."""
    qs = Persona.objects.filter(owner=user).select_related("folder")
    if q:
        qs = qs.filter(
            Q(name__icontains=q) | Q(occupation__icontains=q) | Q(location__icontains=q) | Q(backstory__icontains=q)
        )
    if folder == "none":
        qs = qs.filter(folder__isnull=True)
    elif folder is not None and folder != "":
        qs = qs.filter(folder_id=folder)
    if source:
        qs = qs.filter(source=source)
    if age_min is not None:
        qs = qs.filter(age__gte=age_min)
    if age_max is not None:
        qs = qs.filter(age__lte=age_max)
    if location:
        qs = qs.filter(location__icontains=location)
    if occupation:
        qs = qs.filter(occupation__icontains=occupation)
    if tag:
        # JSON containment is not portable to SQLite; tags are short lists, so match the text.
        qs = qs.filter(tags__icontains=f'"{tag}"')
    return qs.order_by("name", "id")


def persona_versions(*, persona: Persona) -> list[dict]:
    """Each version with what changed from the one before it (newest first)."""
    versions = list(PersonaVersion.objects.filter(persona=persona).order_by("number"))
    rows = []
    previous: dict | None = None
    for version in versions:
        changes = []
        if previous is not None:
            for field, value in version.data.items():
                if previous.get(field) != value:
                    changes.append({"field": field, "before": previous.get(field), "after": value})
        rows.append({"version": version, "changes": changes, "is_current": version.number == persona.version})
        previous = version.data
    return list(reversed(rows))


def persona_modify_in_progress(*, persona: Persona):
    """The oldest unfinished "Modify with AI" job on this persona, or None."""
    return (
        jobs_for_target(target=persona, kind="persona_modify")
        .filter(state__in=ACTIVE_STATES)
        .order_by("created_at")
        .first()
    )


def existing_names(*, user) -> set[str]:
    return set(Persona.objects.filter(owner=user).values_list("name", flat=True))


def persona_count_for_user(*, user) -> int:
    return Persona.objects.filter(owner=user).count()


def library_counts_for_user(*, user) -> dict:
    """``total`` personas and how many are in no folder (``unfiled``)."""
    return Persona.objects.filter(owner=user).aggregate(
        total=Count("pk"), unfiled=Count("pk", filter=Q(folder__isnull=True))
    )
