"""The personas and folders API under /api/v1/."""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from personas.models import PROFILE_FIELDS, Folder, Persona, PersonaSource, PersonaVersion
from personas.services import persona_update
from tests.personas.factories import FolderFactory, PersonaFactory

pytestmark = pytest.mark.django_db

NEW_PERSONA = {
    "name": "Kofi Mensah",
    "age": 45,
    "occupation": "Bus driver",
    "location": "Croydon",
    "openness": 55,
    "values": ["Punctuality", "Family"],
    "tech_savviness": "medium",
    "quote": "Just tell me when it arrives.",
    "tags": ["transport"],
}


# --- list and create -------------------------------------------------------------------------------


def test_list_is_paginated_and_only_mine(owner_api, owner, other_user):
    PersonaFactory.create_batch(3, owner=owner)
    PersonaFactory(owner=other_user, name="Secret Sam")
    body = owner_api.get("/api/v1/personas/?page_size=2").json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]
    assert "Secret Sam" not in json.dumps(body)
    first = body["results"][0]
    assert set(PROFILE_FIELDS) <= set(first) and {"id", "folder", "tags", "source", "version"} <= set(first)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=harbour", {"Harriet Harbour"}),
        ("age_min=30&age_max=40", {"Will Welder"}),
        ("occupation=welder", {"Will Welder"}),
        ("location=hull", {"Harriet Harbour"}),
        ("source=imported", {"Harriet Harbour"}),
        ("tag=vip", {"Harriet Harbour"}),
        ("folder=none", {"Will Welder"}),
    ],
)
def test_list_filters(owner_api, owner, query, expected):
    PersonaFactory(
        owner=owner,
        name="Harriet Harbour",
        age=66,
        location="Hull",
        source=PersonaSource.IMPORTED,
        tags=["vip"],
        folder=FolderFactory(owner=owner),
    )
    PersonaFactory(owner=owner, name="Will Welder", age=35, occupation="Welder", location="Bristol")
    names = {p["name"] for p in owner_api.get(f"/api/v1/personas/?{query}").json()["results"]}
    assert names == expected


def test_list_rejects_bad_filters(owner_api):
    response = owner_api.get("/api/v1/personas/?age_min=old&folder=x")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert {"age_min", "folder"} <= set(response.json()["error"]["fields"])


def test_create_returns_201_with_version_1(owner_api, owner):
    folder = FolderFactory(owner=owner)
    response = owner_api.post("/api/v1/personas/", {**NEW_PERSONA, "folder_id": folder.pk}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Kofi Mensah" and body["version"] == 1 and body["source"] == "manual"
    assert body["folder"] == folder.pk and body["folder_name"] == folder.name and body["tags"] == ["transport"]
    persona = Persona.objects.get(pk=body["id"], owner=owner)
    assert persona.values == ["Punctuality", "Family"]
    assert PersonaVersion.objects.get(persona=persona).number == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"age": 200}, "age"),
        ({"openness": 150}, "openness"),
        ({"name": ""}, "name"),
        ({"tech_savviness": "x"}, "tech_savviness"),
    ],
)
def test_create_validation_errors(owner_api, change, field):
    response = owner_api.post("/api/v1/personas/", {**NEW_PERSONA, **change}, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Persona.objects.exists()


def test_create_requires_name_and_age(owner_api):
    response = owner_api.post("/api/v1/personas/", {"occupation": "Chef"}, format="json")
    assert response.status_code == 400 and {"name", "age"} <= set(response.json()["error"]["fields"])


# --- detail, patch, delete -------------------------------------------------------------------------


def test_get_one(owner_api, owner):
    persona = PersonaFactory(owner=owner, name="Rosa")
    body = owner_api.get(f"/api/v1/personas/{persona.pk}/").json()
    assert body["id"] == persona.pk and body["name"] == "Rosa"


def test_patch_makes_a_new_version_and_refiles(owner_api, owner):
    persona = PersonaFactory(owner=owner, age=30, tags=["old"])
    folder = FolderFactory(owner=owner)
    response = owner_api.patch(
        f"/api/v1/personas/{persona.pk}/",
        {"age": 31, "interests": ["Chess"], "folder_id": folder.pk, "tags": ["new"]},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["age"] == 31 and body["version"] == 2 and body["folder"] == folder.pk and body["tags"] == ["new"]
    assert persona.versions.get(number=2).note == "Edited via the API"
    # Filing only: no new version.
    again = owner_api.patch(f"/api/v1/personas/{persona.pk}/", {"folder_id": None}, format="json").json()
    assert again["version"] == 2 and again["folder"] is None


def test_patch_invalid_changes_nothing(owner_api, owner):
    persona = PersonaFactory(owner=owner, age=30)
    response = owner_api.patch(f"/api/v1/personas/{persona.pk}/", {"age": 5}, format="json")
    assert response.status_code == 400
    persona.refresh_from_db()
    assert persona.age == 30 and persona.version == 1


def test_delete(owner_api, owner):
    persona = PersonaFactory(owner=owner)
    assert owner_api.delete(f"/api/v1/personas/{persona.pk}/").status_code == 204
    assert not Persona.objects.filter(pk=persona.pk).exists()


# --- versions and restore ------------------------------------------------------------------------------


def test_versions_list_with_diffs(owner_api, owner):
    persona = PersonaFactory(owner=owner, age=30, values=["A"])
    persona_update(persona=persona, data={"age": 31, "values": ["A", "B"]})
    body = owner_api.get(f"/api/v1/personas/{persona.pk}/versions/").json()
    assert [v["number"] for v in body] == [2, 1]
    assert body[0]["is_current"] and not body[1]["is_current"]
    assert {c["field"]: (c["before"], c["after"]) for c in body[0]["changes"]} == {
        "age": (30, 31),
        "values": (["A"], ["A", "B"]),
    }
    assert body[1]["changes"] == [] and body[1]["data"]["age"] == 30


def test_restore_returns_the_persona_as_a_new_version(owner_api, owner):
    persona = PersonaFactory(owner=owner, age=30)
    original = persona.profile_data()
    persona_update(persona=persona, data={"age": 60})
    response = owner_api.post(f"/api/v1/personas/{persona.pk}/versions/1/restore/")
    assert response.status_code == 200
    assert response.json()["version"] == 3 and response.json()["age"] == 30
    persona.refresh_from_db()
    assert persona.profile_data() == original
    assert owner_api.post(f"/api/v1/personas/{persona.pk}/versions/7/restore/").status_code == 404


# --- move -----------------------------------------------------------------------------------------------


def test_move(owner_api, owner):
    folder = FolderFactory(owner=owner)
    a, b = PersonaFactory.create_batch(2, owner=owner)
    response = owner_api.post(
        "/api/v1/personas/move/", {"persona_ids": [a.pk, b.pk], "folder_id": folder.pk}, format="json"
    )
    assert response.status_code == 200 and response.json() == {"moved": 2, "folder_id": folder.pk}
    assert folder.personas.count() == 2
    back = owner_api.post("/api/v1/personas/move/", {"persona_ids": [a.pk], "folder_id": None}, format="json")
    assert back.json() == {"moved": 1, "folder_id": None}
    a.refresh_from_db()
    assert a.folder is None


def test_move_needs_ids(owner_api):
    response = owner_api.post("/api/v1/personas/move/", {"persona_ids": [], "folder_id": None}, format="json")
    assert response.status_code == 400


# --- export and import -------------------------------------------------------------------------------


def test_export_csv_and_json_downloads(owner_api, owner):
    folder = FolderFactory(owner=owner, name="Panel A")
    PersonaFactory.create_batch(2, owner=owner, folder=folder)
    PersonaFactory(owner=owner)
    response = owner_api.get(f"/api/v1/personas/export/?format=csv&folder={folder.pk}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="cohorta-personas-panel-a-' in response["Content-Disposition"]
    assert len(list(csv.DictReader(io.StringIO(response.content.decode())))) == 2
    everything = owner_api.get("/api/v1/personas/export/?format=json")
    assert everything["Content-Type"].startswith("application/json")
    assert len(json.loads(everything.content)["personas"]) == 3
    assert owner_api.get("/api/v1/personas/export/?format=xml").status_code == 400


def test_import_201(owner_api, owner):
    upload = SimpleUploadedFile("p.csv", b"name,age\nAmal,29\nBen,61\n", content_type="text/csv")
    response = owner_api.post("/api/v1/personas/import/", {"file": upload}, format="multipart")
    assert response.status_code == 201
    body = response.json()
    assert body["imported"] == 2 and len(body["persona_ids"]) == 2
    assert set(Persona.objects.filter(owner=owner).values_list("source", flat=True)) == {"imported"}


def test_import_400_with_row_errors(owner_api, owner):
    upload = SimpleUploadedFile("p.csv", b"name,age\nAmal,29\nBen,300\n", content_type="text/csv")
    response = owner_api.post("/api/v1/personas/import/", {"file": upload}, format="multipart")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "import_invalid" and "Nothing was imported" in error["message"]
    assert error["extra"]["rows"] == [{"row": 2, "field": "age", "message": "must be between 13 and 110"}]
    assert not Persona.objects.exists()


def test_import_non_utf8_is_a_clear_400(owner_api):
    upload = SimpleUploadedFile("p.csv", "name,age\nJosé,30\n".encode("latin-1"), content_type="text/csv")
    response = owner_api.post("/api/v1/personas/import/", {"file": upload}, format="multipart")
    assert response.status_code == 400 and "not UTF-8" in response.json()["error"]["message"]


# --- folders ---------------------------------------------------------------------------------------------


def test_folders_list_create_rename_delete(owner_api, owner, other_user):
    FolderFactory(owner=other_user, name="Theirs")
    created = owner_api.post("/api/v1/folders/", {"name": "Gen Z"}, format="json")
    assert created.status_code == 201 and created.json()["name"] == "Gen Z"
    folder_id = created.json()["id"]
    PersonaFactory(owner=owner, folder=Folder.objects.get(pk=folder_id))
    listing = owner_api.get("/api/v1/folders/").json()
    assert [(f["name"], f["persona_count"]) for f in listing["results"]] == [("Gen Z", 1)]
    duplicate = owner_api.post("/api/v1/folders/", {"name": "Gen Z"}, format="json")
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "folder_exists"
    renamed = owner_api.patch(f"/api/v1/folders/{folder_id}/", {"name": "Gen Alpha"}, format="json")
    assert renamed.status_code == 200 and renamed.json() == {
        "id": folder_id,
        "name": "Gen Alpha",
        "persona_count": 1,
        "created_at": renamed.json()["created_at"],
    }
    assert owner_api.delete(f"/api/v1/folders/{folder_id}/").status_code == 204
    assert Persona.objects.get(owner=owner).folder is None  # personas survive


# --- another user's ids: 404 everywhere, nothing changed ------------------------------------------------

FOREIGN_API_REQUESTS = [
    ("get", "/api/v1/personas/{p}/", None),
    ("patch", "/api/v1/personas/{p}/", {"name": "Hijacked"}),
    ("delete", "/api/v1/personas/{p}/", None),
    ("get", "/api/v1/personas/{p}/versions/", None),
    ("post", "/api/v1/personas/{p}/versions/1/restore/", None),
    ("post", "/api/v1/personas/move/", {"persona_ids": ["{p}"], "folder_id": None}),
    ("post", "/api/v1/personas/move/", {"persona_ids": ["{mine}", "{p}"], "folder_id": None}),
    ("post", "/api/v1/personas/move/", {"persona_ids": ["{mine}"], "folder_id": "{f}"}),
    ("post", "/api/v1/personas/", {"name": "X", "age": 30, "folder_id": "{f}"}),
    ("patch", "/api/v1/personas/{mine}/", {"folder_id": "{f}"}),
    ("get", "/api/v1/personas/?folder={f}", None),
    ("get", "/api/v1/personas/export/?format=csv&ids={p}", None),
    ("get", "/api/v1/personas/export/?format=json&folder={f}", None),
    ("get", "/api/v1/folders/{f}/", None),
    ("patch", "/api/v1/folders/{f}/", {"name": "Hijacked"}),
    ("delete", "/api/v1/folders/{f}/", None),
]


def _snapshot(user):
    personas = {p.pk: (p.profile_data(), p.folder_id, p.tags, p.version) for p in Persona.objects.filter(owner=user)}
    folders = dict(Folder.objects.filter(owner=user).values_list("pk", "name"))
    return personas, folders, PersonaVersion.objects.filter(persona__owner=user).count()


def _fill(value, ids: dict):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    return value


@pytest.mark.parametrize(("method", "url", "data"), FOREIGN_API_REQUESTS)
def test_another_users_ids_are_404_and_unchanged(owner_api, owner, other_user, method, url, data):
    their_folder = FolderFactory(owner=other_user)
    theirs = PersonaFactory(owner=other_user, folder=their_folder)
    mine = PersonaFactory(owner=owner)
    ids = {"p": theirs.pk, "f": their_folder.pk, "mine": mine.pk}
    before, mine_before = _snapshot(other_user), _snapshot(owner)
    payload = {key: _fill(value, ids) for key, value in data.items()} if data else None
    response = getattr(owner_api, method)(url.format(**ids), payload, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert _snapshot(other_user) == before
    assert _snapshot(owner) == mine_before


def test_import_into_another_users_folder_is_404(owner_api, other_user):
    theirs = FolderFactory(owner=other_user)
    upload = SimpleUploadedFile("p.csv", b"name,age\nAmal,29\n", content_type="text/csv")
    response = owner_api.post("/api/v1/personas/import/", {"file": upload, "folder_id": theirs.pk}, format="multipart")
    assert response.status_code == 404 and not Persona.objects.exists()


# --- anonymous ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/personas/"),
        ("post", "/api/v1/personas/"),
        ("get", "/api/v1/personas/1/"),
        ("get", "/api/v1/personas/1/versions/"),
        ("post", "/api/v1/personas/1/versions/1/restore/"),
        ("post", "/api/v1/personas/move/"),
        ("get", "/api/v1/personas/export/"),
        ("post", "/api/v1/personas/import/"),
        ("get", "/api/v1/folders/"),
        ("delete", "/api/v1/folders/1/"),
    ],
)
def test_anonymous_is_401(api_client, method, url):
    response = getattr(api_client, method)(url)
    assert response.status_code == 401
