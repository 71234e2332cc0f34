"""``personas/access.py``: the one way views and API views turn an id into a user's persona, folder, version
or brief. Another user's object, a missing one and a malformed id are the same 404. (A selection of
persona ids, all or nothing, is checked by the move and export pages and endpoints: see their tests.)

The pages and endpoints themselves answering 404 to another user are in ``test_library.py``,
``test_api.py`` and ``test_generation.py``; the gaps they leave are at the end of this file."""

import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404
from rest_framework.test import APIClient

from billing.services import credits_grant
from personas.access import (
    get_brief_for_user,
    get_folder_for_user,
    get_persona_for_user,
    get_persona_version_for_user,
)
from personas.models import GenerationBrief, Persona
from personas.services import persona_update
from tests.personas.factories import FolderFactory, PersonaFactory

pytestmark = pytest.mark.django_db

GETTERS = {
    "persona": (get_persona_for_user, lambda owner: PersonaFactory(owner=owner)),
    "folder": (get_folder_for_user, lambda owner: FolderFactory(owner=owner)),
    "brief": (
        get_brief_for_user,
        lambda owner: GenerationBrief.objects.create(owner=owner, description="Night-shift nurses", count=2),
    ),
}


@pytest.mark.parametrize("kind", GETTERS)
def test_the_owner_gets_the_object(owner, kind):
    get, make = GETTERS[kind]
    mine = make(owner)
    assert get(owner, mine.pk) == mine
    assert get(owner, str(mine.pk)) == mine  # ids from a URL or a query string are text


@pytest.mark.parametrize("kind", GETTERS)
def test_another_users_object_is_404(owner, other_user, kind):
    get, make = GETTERS[kind]
    theirs = make(other_user)
    with pytest.raises(Http404):
        get(owner, theirs.pk)


@pytest.mark.parametrize("kind", GETTERS)
@pytest.mark.parametrize("bad_id", ["abc", "-1", "0", "", None, "1.5"])
def test_a_malformed_id_is_404(owner, kind, bad_id):
    get, make = GETTERS[kind]
    make(owner)
    with pytest.raises(Http404):
        get(owner, bad_id)


@pytest.mark.parametrize("kind", GETTERS)
def test_a_missing_id_is_404(owner, kind):
    get, make = GETTERS[kind]
    gone = make(owner)
    pk = gone.pk
    gone.delete()
    with pytest.raises(Http404):
        get(owner, pk)


@pytest.mark.parametrize("kind", GETTERS)
def test_an_inactive_owner_gets_nothing(owner, kind):
    get, make = GETTERS[kind]
    mine = make(owner)
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    with pytest.raises(Http404):
        get(owner, mine.pk)


@pytest.mark.parametrize("kind", GETTERS)
def test_an_anonymous_user_gets_nothing(owner, kind):
    get, make = GETTERS[kind]
    mine = make(owner)
    with pytest.raises(Http404):
        get(AnonymousUser(), mine.pk)


def test_a_folder_comes_with_its_persona_count(owner):
    folder = FolderFactory(owner=owner)
    PersonaFactory.create_batch(2, owner=owner, folder=folder)
    PersonaFactory(owner=owner)
    assert get_folder_for_user(owner, folder.pk).persona_count == 2


# --- versions: by number within one of the user's personas --------------------------------------------


def test_a_version_is_found_by_its_number_with_its_persona(owner):
    persona = PersonaFactory(owner=owner, age=30)
    persona_update(persona=persona, data={"age": 31})
    version = get_persona_version_for_user(owner, 1, persona_id=persona.pk)
    assert version.number == 1 and version.data["age"] == 30
    assert version.persona == persona and version.persona.version == 2
    assert get_persona_version_for_user(owner, "2", persona_id=str(persona.pk)).data["age"] == 31


@pytest.mark.parametrize("number", [3, 0, -1, "abc"])
def test_a_version_number_that_does_not_exist_is_404(owner, number):
    persona = PersonaFactory(owner=owner)
    persona_update(persona=persona, data={"age": persona.age + 1})
    with pytest.raises(Http404):
        get_persona_version_for_user(owner, number, persona_id=persona.pk)


def test_another_users_version_is_404(owner, other_user):
    theirs = PersonaFactory(owner=other_user)
    with pytest.raises(Http404):
        get_persona_version_for_user(owner, 1, persona_id=theirs.pk)


def test_a_version_under_another_persona_id_is_404(owner, other_user):
    """Version 2 of one of my personas is not reachable through another user's persona id, nor the reverse."""
    mine = PersonaFactory(owner=owner)
    persona_update(persona=mine, data={"age": mine.age + 1})
    theirs = PersonaFactory(owner=other_user)
    with pytest.raises(Http404):
        get_persona_version_for_user(owner, 2, persona_id=theirs.pk)
    with pytest.raises(Http404):
        get_persona_version_for_user(other_user, 2, persona_id=mine.pk)


def test_an_inactive_owner_gets_no_version(owner):
    persona = PersonaFactory(owner=owner)
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    with pytest.raises(Http404):
        get_persona_version_for_user(owner, 1, persona_id=persona.pk)


# --- pages and endpoints the other 404 tests leave out ------------------------------------------------


def test_generate_api_into_another_users_folder_is_404_and_starts_nothing(owner, other_user):
    credits_grant(user=owner, amount=100, idempotency_key="test:access-fund")
    theirs = FolderFactory(owner=other_user)
    api = APIClient()
    api.force_authenticate(owner)
    response = api.post(
        "/api/v1/personas/generate/",
        {"description": "Night-shift nurses in Leeds", "count": 1, "folder_id": theirs.pk},
        format="json",
    )
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert not GenerationBrief.objects.exists() and not Persona.objects.exists()


def _selected_folder(html: str) -> str:
    """The value of the folder option the page preselects ("" is "No folder")."""
    select = re.search(r'<select name="folder".*?</select>', html, re.S).group(0)
    chosen = re.search(r'<option value="(\d*)"[^>]*selected', select)
    return chosen.group(1) if chosen else ""


def test_new_persona_page_preselects_only_ones_own_folder(client, owner, other_user):
    """``?folder=`` is only a preselection: someone else's folder (or junk) is not preselected, not shown,
    and not a 404."""
    mine = FolderFactory(owner=owner, name="My segment")
    theirs = FolderFactory(owner=other_user, name="Their secret segment")
    client.force_login(owner)
    page = client.get(f"/personas/new/?folder={mine.pk}")
    assert page.status_code == 200 and _selected_folder(page.content.decode()) == str(mine.pk)
    for value in (theirs.pk, "abc", "-1"):
        page = client.get(f"/personas/new/?folder={value}")
        assert page.status_code == 200 and _selected_folder(page.content.decode()) == ""
        assert b"Their secret segment" not in page.content


def test_forms_offer_only_ones_own_folders(client, owner, other_user):
    """The create, import and generate forms take a folder from the user's own list; another user's is refused."""
    credits_grant(user=owner, amount=100, idempotency_key="test:access-fund")
    FolderFactory(owner=owner, name="My segment")
    theirs = FolderFactory(owner=other_user, name="Their secret segment")
    client.force_login(owner)
    for url in ("/personas/new/", "/personas/import/", "/personas/generate/"):
        page = client.get(url)
        assert page.status_code == 200 and b"My segment" in page.content
        assert b"Their secret segment" not in page.content, url

    created = client.post("/personas/new/", {"name": "Amal", "age": "29", "folder": theirs.pk})
    upload = SimpleUploadedFile("p.csv", b"name,age\nAmal,29\n", content_type="text/csv")
    imported = client.post("/personas/import/", {"file": upload, "folder": theirs.pk})
    generated = client.post(
        "/personas/generate/", {"description": "Night-shift nurses in Leeds", "count": 1, "folder": theirs.pk}
    )
    for response in (created, imported, generated):
        assert response.status_code in (200, 400) and b"Select a valid choice" in response.content
    assert not Persona.objects.exists() and not GenerationBrief.objects.exists()
    assert theirs.personas.count() == 0


@pytest.mark.parametrize("value", ["abc", "-1", "0"])
def test_a_malformed_folder_in_the_library_filter_is_404(client, owner, value):
    FolderFactory(owner=owner)
    client.force_login(owner)
    assert client.get(f"/personas/?folder={value}").status_code == 404
