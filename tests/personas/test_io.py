"""Import and export: formats, the all-or-nothing import, and the round trip between accounts."""

import csv
import io
import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cohorta.errors import ApplicationError
from personas import io as persona_io
from personas.io import QUALITY_COLUMNS
from personas.models import PROFILE_FIELDS, Folder, Persona, PersonaSource
from tests.personas.factories import FolderFactory, PersonaFactory

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _upload(name: str, content: bytes | str, content_type: str = "text/csv") -> SimpleUploadedFile:
    if isinstance(content, str):
        content = content.encode()
    return SimpleUploadedFile(name, content, content_type=content_type)


def _record(persona: Persona) -> tuple:
    data = persona.profile_data() | {"tags": persona.tags, "folder": persona.folder.name if persona.folder else None}
    return tuple(sorted((key, json.dumps(value)) for key, value in data.items()))


def _records(user) -> list[tuple]:
    """Everything a round trip must keep, order-independent."""
    return sorted(_record(p) for p in Persona.objects.filter(owner=user).select_related("folder"))


def _csv_rows(body: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body)))


@pytest.fixture
def logged_in(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def library(owner):
    """A folder of varied personas, including the awkward values a round trip must survive."""
    folder = FolderFactory(owner=owner, name="Wave 2 — Leeds")
    PersonaFactory.create_batch(4, owner=owner, folder=folder, tags=["wave-2"])
    PersonaFactory(
        owner=owner,
        folder=folder,
        name="Zoë O'Neill, Jr.",
        quote='She said "never again",\nthen bought two.',
        backstory="Line one.\nLine two, with a comma.",
        values=["Family, first", "Fairness"],
        openness=None,
        tech_savviness="",
        buying_behaviour="=SUM(A1:A9) is how she budgets",
        tags=["b-tag", "a-tag"],
    )
    PersonaFactory(owner=owner, name="Outside Olive")  # not in the folder
    return folder


# --- export --------------------------------------------------------------------------------------


def test_export_csv_of_a_folder(logged_in, library):
    response = logged_in.get(f"/personas/export/?format=csv&folder={library.pk}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="cohorta-personas-wave-2-leeds-')
    rows = _csv_rows(response.content.decode())
    assert list(rows[0]) == [*PROFILE_FIELDS, "tags", "folder", "source", *QUALITY_COLUMNS]
    assert len(rows) == 5 and "Outside Olive" not in {row["name"] for row in rows}
    zoe = next(row for row in rows if row["name"].startswith("Zoë"))
    assert zoe["values"] == "Family, first | Fairness"
    assert zoe["tags"] == "a-tag | b-tag" and zoe["folder"] == "Wave 2 — Leeds" and zoe["source"] == "manual"
    assert zoe["openness"] == ""
    # Spreadsheet formula injection is defused.
    assert zoe["buying_behaviour"] == "'=SUM(A1:A9) is how she budgets"


def test_export_json_of_everything(logged_in, owner, library):
    response = logged_in.get("/personas/export/?format=json")
    assert response["Content-Type"].startswith("application/json")
    payload = json.loads(response.content)
    assert payload["version"] == 1 and len(payload["personas"]) == 6
    zoe = next(p for p in payload["personas"] if p["name"].startswith("Zoë"))
    assert zoe["values"] == ["Family, first", "Fairness"] and zoe["openness"] is None
    assert zoe["buying_behaviour"] == "=SUM(A1:A9) is how she budgets"  # JSON needs no escaping
    assert set(zoe) == {*PROFILE_FIELDS, "tags", "folder", "source", "quality"}
    assert zoe["quality"] is None  # never checked


def test_export_selection_and_no_folder(logged_in, owner, library):
    a, b = Persona.objects.filter(owner=owner, folder=library)[:2]
    rows = _csv_rows(logged_in.get(f"/personas/export/?format=csv&ids={a.pk},{b.pk}").content.decode())
    assert {row["name"] for row in rows} == {a.name, b.name}
    posted = logged_in.post("/personas/export/", {"format": "json", "ids": [a.pk], "folder": "none"})
    assert [p["name"] for p in json.loads(posted.content)["personas"]] == [a.name]
    unfiled = _csv_rows(logged_in.get("/personas/export/?format=csv&folder=none").content.decode())
    assert [row["name"] for row in unfiled] == ["Outside Olive"]


def test_export_never_includes_another_users_personas(logged_in, owner, other_user, library):
    PersonaFactory(owner=other_user, name="Secret Sam")
    assert b"Secret Sam" not in logged_in.get("/personas/export/?format=csv").content


# --- round trip ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_round_trip_into_another_account(client, owner, other_user, library, fmt):
    client.force_login(owner)
    exported = client.get(f"/personas/export/?format={fmt}&folder={library.pk}")
    expected = sorted(_record(p) for p in Persona.objects.filter(folder=library).select_related("folder"))

    client.force_login(other_user)
    response = client.post("/personas/import/", {"file": _upload(f"wave2.{fmt}", exported.content)}, follow=True)
    assert "Imported 5 personas." in _text(response)
    assert _records(other_user) == expected
    imported = Persona.objects.filter(owner=other_user)
    assert {p.source for p in imported} == {PersonaSource.IMPORTED}
    assert {p.versions.get().note for p in imported} == {f"Imported from wave2.{fmt}"}
    # The folder was recreated in the other account, not shared.
    folder = Folder.objects.get(owner=other_user)
    assert folder.name == "Wave 2 — Leeds" and folder.pk != library.pk
    assert Persona.objects.filter(owner=owner).count() == 6


def test_import_into_a_chosen_folder(logged_in, owner):
    target = FolderFactory(owner=owner, name="Imports")
    content = "name,age,folder\nAmal Haddad,29,Somewhere else\nBen Ortiz,61,\n"
    response = logged_in.post("/personas/import/", {"file": _upload("people.csv", content), "folder": target.pk})
    assert response.status_code == 302 and response["Location"] == f"/personas/?folder={target.pk}"
    assert set(target.personas.values_list("name", flat=True)) == {"Amal Haddad", "Ben Ortiz"}
    assert not Folder.objects.filter(name="Somewhere else").exists()


def test_import_cannot_target_another_users_folder(logged_in, owner, other_user):
    theirs = FolderFactory(owner=other_user)
    response = logged_in.post("/personas/import/", {"file": _upload("p.csv", "name,age\nA,30\n"), "folder": theirs.pk})
    assert response.status_code == 200 and "folder" in response.context["form"].errors
    assert not Persona.objects.exists()


# --- all or nothing ------------------------------------------------------------------------------


def test_one_bad_row_imports_nothing_and_lists_the_errors(logged_in, owner):
    content = (
        "name,age,openness,tech_savviness\n"
        "Good Gail,40,50,high\n"
        "Old Otto,200,50,low\n"
        ",30,150,guru\n"
        "Fine Fran,33,,Medium\n"
    )
    response = logged_in.post("/personas/import/", {"file": _upload("bad.csv", content)})
    assert response.status_code == 400
    assert not Persona.objects.exists()
    text = _text(response)
    assert "Nothing was imported" in text and "2 of 4 rows have errors" in text
    rows = response.context["row_errors"]
    assert [row["text"] for row in rows] == [
        "Row 2: age — must be between 13 and 110",
        "Row 3: name — is required",
        "Row 3: openness — must be between 0 and 100",
        "Row 3: tech_savviness — must be one of low, medium, high (or empty)",
    ]
    assert "Row 2" in text and "Must be between 13 and 110" in text


def test_import_reports_bad_numbers_in_json(owner):
    payload = {"version": 1, "personas": [{"name": "A", "age": "forty"}, {"name": "B", "age": 30.5}, "nope"]}
    with pytest.raises(ApplicationError) as caught:
        persona_io.personas_import(owner=owner, filename="x.json", content=json.dumps(payload).encode())
    assert caught.value.code == "import_invalid"
    assert [persona_io.format_row_error(row) for row in caught.value.extra["rows"]] == [
        "Row 1: age — must be a whole number",
        "Row 2: age — must be a whole number",
        "Row 3: must be an object with persona fields",
    ]
    assert not Persona.objects.exists()


def test_import_accepts_whole_numbers_written_as_decimals_and_case_insensitive_choices(owner):
    content = "Name,Age,Tech_Savviness,Values\nIvy,42.0,HIGH,Family | Faith\n"
    (persona,) = persona_io.personas_import(owner=owner, filename="x.csv", content=content.encode())
    assert persona.age == 42 and persona.tech_savviness == "high" and persona.values == ["Family", "Faith"]


def test_import_checks_model_lengths(owner):
    content = f"name,age\n{'x' * 200},30\n"
    with pytest.raises(ApplicationError) as caught:
        persona_io.personas_import(owner=owner, filename="x.csv", content=content.encode())
    assert caught.value.extra["rows"][0]["field"] == "name"


# --- files that are not what they claim --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("latin1.csv", "name,age\nJosé,30\n".encode("latin-1"), "The file is not UTF-8 text."),
        ("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "The file is not UTF-8 text."),
        ("notes.csv", "just,some,words\nno,header,here\n", "does not look like a personas CSV"),
        ("broken.json", '{"personas": [', "The JSON could not be parsed"),
        ("shape.json", '{"people": []}', "Expected a JSON object with a “personas” list"),
        ("empty.csv", "", "The submitted file is empty."),
        ("header-only.csv", "name,age\n", "The file holds no personas."),
    ],
)
def test_import_rejects_files_it_cannot_read(logged_in, owner, name, content, message):
    response = logged_in.post("/personas/import/", {"file": _upload(name, content)})
    assert response.status_code in (200, 400)
    assert message in response.content.decode()
    assert not Persona.objects.exists()


def test_import_limits_rows_per_file(owner):
    content = "name,age\n" + "".join(f"P{n},30\n" for n in range(1001))
    with pytest.raises(ApplicationError, match="at most 1,000 personas"):
        persona_io.personas_import(owner=owner, filename="many.csv", content=content.encode())
    assert not Persona.objects.exists()


def test_import_limits_file_size(logged_in, owner, settings):
    settings.UPLOAD_MAX_MB = 1
    content = "name,age\n" + "A,30\n" * 300_000  # ~1.5 MB
    response = logged_in.post("/personas/import/", {"file": _upload("big.csv", content)})
    assert "larger than 1 MB" in response.content.decode()
    assert not Persona.objects.exists()


def test_import_page_renders_with_format_help(logged_in, owner):
    FolderFactory(owner=owner, name="Target")
    text = _text(logged_in.get("/personas/import/"))
    assert "Import personas" in text and "All or nothing" in text and "Target" in text
    assert "1,000" in text
