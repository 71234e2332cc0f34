"""Writes for personas: create, edit (each a new version), restore, move, delete; folders."""

import enum
from typing import Final

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F

from cohorta.errors import ApplicationError
from personas.brief_limits import mismatch_after_edit
from personas.models import (
    BIG_FIVE,
    LIST_FIELDS,
    PROFILE_FIELDS,
    Folder,
    Persona,
    PersonaSource,
    PersonaVersion,
)


class Unchanged(enum.Enum):
    """An argument left as it is, where None is a value of its own (no folder)."""

    UNCHANGED = "unchanged"


UNCHANGED: Final = Unchanged.UNCHANGED


def _clean_profile(data: dict) -> dict:
    """Keep only profile fields, normalising lists and scores."""
    cleaned = {}
    for field in PROFILE_FIELDS:
        if field not in data:
            continue
        value = data[field]
        if field in LIST_FIELDS:
            if isinstance(value, str):
                value = [part.strip() for part in value.replace("\n", ",").split(",")]
            value = [str(item).strip() for item in (value or []) if str(item).strip()]
        elif field in BIG_FIVE:
            value = None if value in ("", None) else int(value)
        elif value is None:
            value = ""
        cleaned[field] = value
    return cleaned


def _validated(persona: Persona) -> Persona:
    try:
        persona.full_clean(exclude=["owner", "folder", "brief"])
    except ValidationError as exc:
        problems = exc.message_dict
        field, messages = next(iter(problems.items()))
        message = f"Profile field '{field}' is invalid: {' '.join(messages)}"
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more field{'s' if len(problems) > 2 else ''})"
        raise ApplicationError(message, code="validation_error", extra={"fields": problems}) from None
    return persona


def _snapshot(persona: Persona, *, source: str, note: str) -> PersonaVersion:
    return PersonaVersion.objects.create(
        persona=persona, number=persona.version, data=persona.profile_data(), source=source, note=note[:500]
    )


@transaction.atomic
def persona_create(
    *,
    owner,
    data: dict,
    source: str = PersonaSource.MANUAL,
    folder: Folder | None = None,
    tags: list[str] | None = None,
    brief=None,
    grounding: list[dict] | None = None,
    simulated: bool = False,
    brief_mismatch: str = "",
    note: str = "Created",
    core: list[dict] | None = None,
) -> Persona:
    persona = Persona(
        owner=owner,
        folder=folder,
        tags=sorted({tag.strip() for tag in (tags or []) if tag.strip()}),
        source=source,
        brief=brief,
        grounding=grounding or [],
        simulated=simulated,
        brief_mismatch=brief_mismatch,
        core=core or [],
        version=1,
        **_clean_profile(data),
    )
    _validated(persona).save()
    _snapshot(persona, source=source, note=note)
    return persona


@transaction.atomic
def persona_update(*, persona: Persona, data: dict, source: str | None = None, note: str = "Edited by hand") -> Persona:
    """Apply profile changes as a new version. Changing nothing makes no version."""
    changes = {k: v for k, v in _clean_profile(data).items() if getattr(persona, k) != v}
    if not changes and source is None:
        return persona
    gender_before = persona.gender
    for field, value in changes.items():
        setattr(persona, field, value)
    if persona.brief_id and changes.keys() & {"age", "location", "gender"}:
        # The flag says what is outside the brief now, not what was when it was generated.
        persona.brief_mismatch = mismatch_after_edit(persona, gender_before=gender_before)
    if source is not None:
        persona.source = source
    _validated(persona)
    # F() keeps the version counter right if two edits race.
    Persona.objects.filter(pk=persona.pk).update(version=F("version") + 1)
    persona.refresh_from_db(fields=["version"])
    persona.save()
    _snapshot(persona, source=persona.source, note=note)
    return persona


@transaction.atomic
def persona_restore_version(*, persona: Persona, version: PersonaVersion) -> Persona:
    if version.persona_id != persona.pk:
        raise ApplicationError("That version belongs to another persona.", code="not_found", status_code=404)
    return persona_update(
        persona=persona, data=version.data, source=version.source, note=f"Restored version {version.number}"
    )


@transaction.atomic
def persona_set_meta(
    *, persona: Persona, folder: Folder | Unchanged | None = UNCHANGED, tags: list[str] | None = None
) -> Persona:
    """Folder and tags are filing, not profile: they do not make a version."""
    fields = []
    if folder is not UNCHANGED:
        if folder is not None and folder.owner_id != persona.owner_id:
            raise ApplicationError("No such folder.", code="not_found", status_code=404)
        persona.folder = folder
        fields.append("folder")
    if tags is not None:
        persona.tags = sorted({tag.strip() for tag in tags if tag.strip()})
        fields.append("tags")
    if fields:
        persona.save(update_fields=[*fields, "updated_at"])
    return persona


@transaction.atomic
def personas_move(*, owner, persona_ids: list[int], folder: Folder | None) -> int:
    if folder is not None and folder.owner_id != owner.pk:
        raise ApplicationError("No such folder.", code="not_found", status_code=404)
    return Persona.objects.filter(owner=owner, pk__in=persona_ids).update(folder=folder)


@transaction.atomic
def persona_delete(*, persona: Persona) -> None:
    persona.delete()


@transaction.atomic
def folder_create(*, owner, name: str) -> Folder:
    name = name.strip()
    if not name:
        raise ApplicationError("A folder needs a name.", code="validation_error")
    try:
        with transaction.atomic():
            return Folder.objects.create(owner=owner, name=name[:100])
    except IntegrityError:
        raise ApplicationError(
            f"You already have a folder called “{name}”.", code="folder_exists", status_code=409
        ) from None


@transaction.atomic
def folder_rename(*, folder: Folder, name: str) -> Folder:
    name = name.strip()
    if not name:
        raise ApplicationError("A folder needs a name.", code="validation_error")
    if Folder.objects.filter(owner=folder.owner, name=name).exclude(pk=folder.pk).exists():
        raise ApplicationError(f"You already have a folder called “{name}”.", code="folder_exists", status_code=409)
    folder.name = name[:100]
    folder.save(update_fields=["name"])
    return folder


@transaction.atomic
def folder_delete(*, folder: Folder) -> None:
    """Deleting a folder keeps its personas: they move to “No folder”."""
    folder.delete()
