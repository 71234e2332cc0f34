"""Getting a persona, a folder, a version or a generation brief for a user: not theirs → 404
(see ``cohorta/access.py``).

Nothing in personas is read-only, so ``for_write`` changes nothing here; it is taken for the one shape.
"""

from django.db.models import Count

from cohorta.access import owned_or_404
from personas.models import Folder, GenerationBrief, Persona, PersonaVersion


def get_persona_for_user(user, pk, *, for_write: bool = False) -> Persona:
    return owned_or_404(Persona.objects.select_related("folder"), user=user, pk=pk, what="persona")


def get_persona_version_for_user(user, pk, *, persona_id, for_write: bool = False) -> PersonaVersion:
    """``pk`` is the version's number within the persona (``versions/<number>/``), not its row id."""
    persona = get_persona_for_user(user, persona_id, for_write=for_write)
    version = owned_or_404(
        PersonaVersion.objects.filter(persona=persona),
        user=user,
        pk=pk,
        owner_field="persona__owner",
        field="number",
        what="version",
    )
    version.persona = persona  # callers need both; this spares them fetching the persona again
    return version


def get_folder_for_user(user, pk, *, for_write: bool = False) -> Folder:
    """With ``persona_count``, as the folder list shows it."""
    return owned_or_404(Folder.objects.annotate(persona_count=Count("personas")), user=user, pk=pk, what="folder")


def get_brief_for_user(user, pk, *, for_write: bool = False) -> GenerationBrief:
    return owned_or_404(GenerationBrief.objects.select_related("job", "folder"), user=user, pk=pk, what="brief")
