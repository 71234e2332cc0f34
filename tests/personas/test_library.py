"""The persona library pages: browse, filter, profile, create/edit, versions, delete, move, folders, access."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cohorta.core.models import get_app_settings
from personas.models import Folder, Persona, PersonaSource, PersonaVersion
from personas.services import persona_update
from tests.personas.factories import FolderFactory, PersonaFactory, bulk_personas

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _names(response) -> set[str]:
    return {persona.name for persona in response.context["page_obj"].object_list}


@pytest.fixture
def logged_in(client, owner):
    client.force_login(owner)
    return client


def _valid_form(**overrides) -> dict:
    data = {
        "name": "Priya Shah",
        "age": "34",
        "gender": "Female",
        "location": "Leeds",
        "occupation": "Pharmacist",
        "income_bracket": "£45–70k",
        "education": "Master's degree",
        "household": "With partner",
        "openness": "72",
        "conscientiousness": "80",
        "extraversion": "40",
        "agreeableness": "65",
        "neuroticism": "30",
        "values": "Family\nHonesty, openly\nSecurity",
        "interests": "Cycling, Baking",
        "goals": "",
        "frustrations": "Hidden fees",
        "brand_affinities": "",
        "buying_behaviour": "Compares prices on her phone in the aisle.",
        "media_habits": "Podcasts on the commute.",
        "tech_savviness": "high",
        "backstory": "Grew up above her parents' shop.",
        "speaking_style": "Precise, a little dry.",
        "quote": "Show me the evidence.",
        "folder": "",
        "tags": "pilot, leeds",
    }
    data.update(overrides)
    return data


# --- library ---------------------------------------------------------------------------------


def test_library_lists_only_my_personas(logged_in, owner, other_user):
    mine = PersonaFactory(owner=owner, name="Mina Mine")
    PersonaFactory(owner=other_user, name="Theo Theirs")
    response = logged_in.get("/personas/")
    assert response.status_code == 200
    assert _names(response) == {"Mina Mine"}
    body = response.content.decode()
    assert f'href="/personas/{mine.pk}/"' in body
    assert "<svg" in body and 'class="avatar"' in body  # the inline avatar
    assert "Theo Theirs" not in body


def test_library_card_shows_headline_source_simulated_folder_and_tags(logged_in, owner):
    folder = FolderFactory(owner=owner, name="Commuters")
    PersonaFactory(
        owner=owner,
        name="Ada Lane",
        age=41,
        occupation="Nurse",
        location="York",
        source=PersonaSource.AI,
        simulated=True,
        folder=folder,
        tags=["pilot"],
    )
    text = _text(logged_in.get("/personas/"))
    assert "41 · Nurse · York" in text
    assert "AI-generated" in text and "simulated" in text
    assert "Commuters" in text and "#pilot" in text
    assert "Generate with AI" in text and "New persona" in text and "Import" in text and "Export all" in text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=harbour", {"Harriet Harbour"}),
        ("q=welder", {"Will Welder"}),
        ("age_min=30&age_max=40", {"Will Welder"}),
        ("age_min=60", {"Harriet Harbour"}),
        ("location=bristol", {"Will Welder"}),
        ("occupation=teacher", {"Tess Teacher"}),
        ("source=imported", {"Tess Teacher"}),
        ("tag=vip", {"Harriet Harbour", "Tess Teacher"}),
        ("tag=vi", set()),  # tags match whole, not as substrings
        ("folder=none", {"Will Welder", "Tess Teacher"}),
        ("age_min=abc", {"Harriet Harbour", "Will Welder", "Tess Teacher"}),  # junk is ignored, not a 500
    ],
)
def test_library_search_and_filters(logged_in, owner, query, expected):
    PersonaFactory(owner=owner, name="Harriet Harbour", age=66, occupation="Retired", location="Hull", tags=["vip"])
    PersonaFactory(owner=owner, name="Will Welder", age=35, occupation="Welder", location="Bristol")
    PersonaFactory(
        owner=owner,
        name="Tess Teacher",
        age=28,
        occupation="Teacher",
        location="Leeds",
        source=PersonaSource.IMPORTED,
        tags=["vip", "pilot"],
    )
    Persona.objects.filter(name="Harriet Harbour").update(folder=FolderFactory(owner=owner))
    assert _names(logged_in.get(f"/personas/?{query}")) == expected


def test_library_folder_filter_and_counts(logged_in, owner):
    folder = FolderFactory(owner=owner, name="Gen Z")
    PersonaFactory.create_batch(2, owner=owner, folder=folder)
    PersonaFactory(owner=owner)
    response = logged_in.get(f"/personas/?folder={folder.pk}")
    assert len(response.context["page_obj"].object_list) == 2
    assert response.context["total_count"] == 3 and response.context["unfiled_count"] == 1
    assert [f.persona_count for f in response.context["folders"]] == [2]
    assert "Export folder" in _text(response)
    assert f"/personas/export/?format=csv&amp;folder={folder.pk}" in response.content.decode()


def test_library_paginates_24_and_keeps_filters_in_page_links(logged_in, owner):
    bulk_personas(owner, 30, occupation="Nurse")
    bulk_personas(owner, 3, occupation="Chef")
    response = logged_in.get("/personas/?occupation=Nurse")
    assert len(response.context["page_obj"].object_list) == 24
    text = _text(response)
    assert "Page 1 of 2" in text and "1–24 of 30 personas" in text
    assert 'href="?occupation=Nurse&amp;page=2"' in response.content.decode()
    second = logged_in.get("/personas/?occupation=Nurse&page=2")
    assert len(second.context["page_obj"].object_list) == 6
    assert 'href="?occupation=Nurse&amp;page=1"' in second.content.decode()


def test_library_empty_state_offers_generate_create_import(logged_in):
    response = logged_in.get("/personas/")
    text = _text(response)
    assert "No personas yet" in text
    body = response.content.decode()
    assert 'href="/personas/generate/"' in body and 'href="/personas/new/"' in body
    assert 'href="/personas/import/"' in body


def test_library_empty_state_when_filters_match_nothing(logged_in, owner):
    PersonaFactory(owner=owner, age=30)
    response = logged_in.get("/personas/?age_min=90")
    text = _text(response)
    assert "No personas match these filters" in text and "Clear filters" in text
    assert "No personas yet" not in text


def test_library_empty_folder_says_so(logged_in, owner):
    PersonaFactory(owner=owner)
    folder = FolderFactory(owner=owner, name="Empty one")
    assert "This folder is empty" in _text(logged_in.get(f"/personas/?folder={folder.pk}"))


def _library_queries(client, url="/personas/") -> int:
    client.get(url)  # warm the per-user caches (quota banner, app settings)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_library_query_count_does_not_grow_with_personas(logged_in, owner):
    folders = [FolderFactory(owner=owner) for _ in range(3)]
    bulk_personas(owner, 10, folder=folders[0], tags=["a", "b"])
    small = _library_queries(logged_in)
    bulk_personas(owner, 330, folder=folders[1], tags=["c"])
    bulk_personas(owner, 330, folder=folders[2])
    bulk_personas(owner, 330)
    assert Persona.objects.filter(owner=owner).count() == 1000
    large = _library_queries(logged_in)
    assert large == small, (small, large)
    # Also with filters and on a later page.
    assert _library_queries(logged_in, "/personas/?q=a&page=3&source=manual") <= small + 1


# --- detail ------------------------------------------------------------------------------------


def test_detail_page_reads_like_a_profile(logged_in, owner):
    app = get_app_settings()
    app.persona_modify_credit_cost = 3
    app.save()
    folder = FolderFactory(owner=owner, name="Urban families")
    persona = PersonaFactory(
        owner=owner,
        name="Rosa Delgado",
        age=38,
        occupation="Dental hygienist",
        location="Manchester",
        quote="I'd rather buy once and buy well.",
        openness=81,
        neuroticism=None,
        values=["Family", "Thrift"],
        brand_affinities=["Aldi"],
        backstory="Moved from Valencia in 2009.",
        source=PersonaSource.AI,
        folder=folder,
        tags=["wave-2"],
        grounding=[{"source": "brief.pdf", "segment": "Segment B"}],
    )
    response = logged_in.get(f"/personas/{persona.pk}/")
    assert response.status_code == 200
    body, text = response.content.decode(), _text(response)
    assert "Rosa Delgado" in text and "38 · Dental hygienist · Manchester" in text
    assert 'class="pull-quote"' in body and "I&#x27;d rather buy once and buy well." in body
    assert 'aria-label="openness" aria-valuenow="81"' in body and "width: 81%" in body
    assert "Family" in text and "Thrift" in text and "Aldi" in text and "Moved from Valencia in 2009." in text
    assert "brief.pdf — Segment B" in text
    assert "Urban families" in text and "#wave-2" in text
    assert "AI-generated" in text and "Version 1" in text
    assert f'action="/personas/{persona.pk}/modify/"' in body and 'name="instruction"' in body
    assert "3 credits" in text
    assert f'href="/personas/{persona.pk}/edit/"' in body and f'href="/personas/{persona.pk}/delete/"' in body
    assert body.count("<svg") >= 1


def test_detail_shows_version_history_with_diffs_and_restore_buttons(logged_in, owner):
    persona = PersonaFactory(owner=owner, age=30, values=["Family"])
    persona_update(persona=persona, data={"age": 31, "values": ["Family", "Health"]})
    response = logged_in.get(f"/personas/{persona.pk}/")
    body, text = response.content.decode(), _text(response)
    assert "Version 2" in text and "Current" in text and "Edited by hand" in text
    assert "30" in text and "31" in text
    assert "Family, Health" in text  # lists shown comma-joined
    assert f'action="/personas/{persona.pk}/versions/1/restore/"' in body
    assert f'action="/personas/{persona.pk}/versions/2/restore/"' not in body  # current: no restore


# --- create / edit -----------------------------------------------------------------------------


def test_create_form_renders_in_sections(logged_in):
    text = _text(logged_in.get("/personas/new/"))
    assert "Basic profile" in text and "Personality" in text and "Detailed profile" in text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("age", "200", "Age must be between 13 and 110."),
        ("age", "12", "Age must be between 13 and 110."),
        ("openness", "150", "Scores run from 0 to 100."),
        ("name", "", "Every persona needs a name."),
        ("tech_savviness", "guru", "Select a valid choice."),
    ],
)
def test_create_validation_errors(logged_in, owner, field, value, message):
    response = logged_in.post("/personas/new/", _valid_form(**{field: value}))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert field in response.context["form"].errors
    assert "is-invalid" in response.content.decode()
    assert not Persona.objects.filter(owner=owner).exists()


def test_create_saves_version_1_with_lists_folder_and_tags(logged_in, owner):
    folder = FolderFactory(owner=owner)
    response = logged_in.post("/personas/new/", _valid_form(folder=str(folder.pk)))
    persona = Persona.objects.get(owner=owner)
    assert response.status_code == 302 and response["Location"] == f"/personas/{persona.pk}/"
    assert persona.values == ["Family", "Honesty, openly", "Security"]  # one per line keeps commas
    assert persona.interests == ["Cycling", "Baking"]  # a single line splits on commas
    assert persona.folder == folder and persona.tags == ["leeds", "pilot"]  # tags are kept sorted
    assert persona.source == PersonaSource.MANUAL and persona.version == 1
    version = PersonaVersion.objects.get(persona=persona)
    assert version.number == 1 and version.data["name"] == "Priya Shah"


def test_create_offers_only_my_folders(logged_in, owner, other_user):
    mine = FolderFactory(owner=owner, name="Mine")
    theirs = FolderFactory(owner=other_user, name="Theirs")
    body = logged_in.get("/personas/new/").content.decode()
    assert "Mine" in body and "Theirs" not in body
    response = logged_in.post("/personas/new/", _valid_form(folder=str(theirs.pk)))
    assert response.status_code == 200 and "folder" in response.context["form"].errors
    assert not Persona.objects.exists()
    assert mine.personas.count() == 0


def test_edit_makes_version_2_with_a_diff(logged_in, owner):
    persona = PersonaFactory(owner=owner, name="Priya Shah", age=34)
    form = logged_in.get(f"/personas/{persona.pk}/edit/").context["form"]
    data = {name: form[name].value() for name in form.fields}
    data = {key: ("" if value is None else value) for key, value in data.items()}
    data.update({"age": "35", "values": "Family\nAdventure", "tags": "wave-2"})
    response = logged_in.post(f"/personas/{persona.pk}/edit/", data)
    assert response.status_code == 302
    persona.refresh_from_db()
    assert persona.version == 2 and persona.age == 35 and persona.tags == ["wave-2"]
    latest = persona.versions.get(number=2)
    assert latest.data["age"] == 35 and latest.data["values"] == ["Family", "Adventure"]
    text = _text(logged_in.get(f"/personas/{persona.pk}/"))
    assert "Saved as version 2." in text
    assert "Family, Adventure" in text


def test_edit_without_changes_makes_no_version(logged_in, owner):
    persona = PersonaFactory(owner=owner)
    form = logged_in.get(f"/personas/{persona.pk}/edit/").context["form"]
    data = {name: ("" if form[name].value() is None else form[name].value()) for name in form.fields}
    logged_in.post(f"/personas/{persona.pk}/edit/", data)
    persona.refresh_from_db()
    assert persona.version == 1 and persona.versions.count() == 1


def test_edit_validation_error_keeps_the_persona(logged_in, owner):
    persona = PersonaFactory(owner=owner, age=40)
    response = logged_in.post(f"/personas/{persona.pk}/edit/", _valid_form(age="200"))
    assert response.status_code == 200 and "Age must be between 13 and 110." in response.content.decode()
    persona.refresh_from_db()
    assert persona.age == 40 and persona.version == 1


def test_restore_version_1_makes_version_3_equal_to_version_1(logged_in, owner):
    persona = PersonaFactory(owner=owner, age=30, quote="Original")
    original = persona.versions.get(number=1).data
    persona_update(persona=persona, data={"age": 50, "quote": "Changed"})
    response = logged_in.post(f"/personas/{persona.pk}/versions/1/restore/")
    assert response.status_code == 302
    persona.refresh_from_db()
    assert persona.version == 3
    assert persona.profile_data() == original
    v3 = persona.versions.get(number=3)
    assert v3.data == original and v3.note == "Restored version 1"


def test_restore_unknown_version_is_404(logged_in, owner):
    persona = PersonaFactory(owner=owner)
    assert logged_in.post(f"/personas/{persona.pk}/versions/9/restore/").status_code == 404


def test_restore_needs_post(logged_in, owner):
    persona = PersonaFactory(owner=owner)
    assert logged_in.get(f"/personas/{persona.pk}/versions/1/restore/").status_code == 405


# --- delete ------------------------------------------------------------------------------------


def test_delete_asks_for_confirmation_then_deletes(logged_in, owner):
    persona = PersonaFactory(owner=owner, name="Gone Soon")
    page = logged_in.get(f"/personas/{persona.pk}/delete/")
    assert page.status_code == 200 and "Delete Gone Soon?" in _text(page) and "cannot be undone" in _text(page)
    assert Persona.objects.filter(pk=persona.pk).exists()
    response = logged_in.post(f"/personas/{persona.pk}/delete/", follow=True)
    assert response.redirect_chain[-1][0] == "/personas/"
    assert "Gone Soon deleted." in _text(response)
    assert not Persona.objects.filter(pk=persona.pk).exists()
    assert not PersonaVersion.objects.filter(persona_id=persona.pk).exists()


# --- move and folders --------------------------------------------------------------------------


def test_move_selection_to_a_folder_and_back(logged_in, owner):
    folder = FolderFactory(owner=owner, name="Wave 2")
    a, b, c = PersonaFactory.create_batch(3, owner=owner)
    response = logged_in.post("/personas/move/", {"ids": [a.pk, b.pk], "folder": folder.pk}, follow=True)
    assert "Moved 2 personas to “Wave 2”." in _text(response)
    assert set(folder.personas.all()) == {a, b}
    c.refresh_from_db()
    assert c.folder is None
    logged_in.post("/personas/move/", {"ids": f"{a.pk}", "folder": "none"})
    a.refresh_from_db()
    assert a.folder is None


def test_move_from_the_detail_page_returns_there(logged_in, owner):
    folder = FolderFactory(owner=owner)
    persona = PersonaFactory(owner=owner)
    response = logged_in.post(
        "/personas/move/", {"ids": persona.pk, "folder": folder.pk, "next": f"/personas/{persona.pk}/"}
    )
    assert response["Location"] == f"/personas/{persona.pk}/"
    persona.refresh_from_db()
    assert persona.folder == folder


def test_move_ignores_an_offsite_next(logged_in, owner):
    persona = PersonaFactory(owner=owner)
    response = logged_in.post("/personas/move/", {"ids": persona.pk, "folder": "none", "next": "//evil.example/"})
    assert response["Location"].startswith("/personas/")


def test_folder_create_and_duplicate_name(logged_in, owner):
    response = logged_in.post("/personas/folders/", {"name": "Gen Z"}, follow=True)
    folder = Folder.objects.get(owner=owner)
    assert folder.name == "Gen Z" and "Folder “Gen Z” created." in _text(response)
    assert response.redirect_chain[-1][0] == f"/personas/?folder={folder.pk}"
    again = logged_in.post("/personas/folders/", {"name": "Gen Z"}, follow=True)
    assert "You already have a folder called “Gen Z”." in _text(again)
    assert Folder.objects.filter(owner=owner).count() == 1
    blank = logged_in.post("/personas/folders/", {"name": "  "}, follow=True)
    assert "A folder needs a name." in _text(blank)


def test_folder_names_are_per_user(logged_in, owner, other_user):
    FolderFactory(owner=other_user, name="Gen Z")
    logged_in.post("/personas/folders/", {"name": "Gen Z"})
    assert Folder.objects.filter(owner=owner, name="Gen Z").exists()


def test_folder_rename(logged_in, owner):
    folder = FolderFactory(owner=owner, name="Old")
    FolderFactory(owner=owner, name="Taken")
    logged_in.post(f"/personas/folders/{folder.pk}/rename/", {"name": "New"})
    folder.refresh_from_db()
    assert folder.name == "New"
    response = logged_in.post(f"/personas/folders/{folder.pk}/rename/", {"name": "Taken"}, follow=True)
    assert "You already have a folder called “Taken”." in _text(response)
    folder.refresh_from_db()
    assert folder.name == "New"


def test_folder_delete_keeps_its_personas(logged_in, owner):
    folder = FolderFactory(owner=owner, name="Temporary")
    personas = PersonaFactory.create_batch(2, owner=owner, folder=folder)
    response = logged_in.post(f"/personas/folders/{folder.pk}/delete/", follow=True)
    assert "Folder “Temporary” deleted. Its 2 personas moved to No folder." in _text(response)
    assert not Folder.objects.filter(pk=folder.pk).exists()
    for persona in personas:
        persona.refresh_from_db()
        assert persona.folder is None


@pytest.mark.parametrize("url", ["/personas/folders/", "/personas/folders/1/rename/", "/personas/folders/1/delete/"])
def test_folder_actions_need_post(logged_in, owner, url):
    FolderFactory(owner=owner)
    assert logged_in.get(url).status_code == 405


# --- another user's objects: always 404, nothing changed ------------------------------------------

# (method, url, data): {p} is the other user's persona, {f} their folder, {mine} one of mine.
FOREIGN_REQUESTS = [
    ("get", "/personas/{p}/", None),
    ("get", "/personas/{p}/edit/", None),
    ("post", "/personas/{p}/edit/", {"name": "Hijacked", "age": "40"}),
    ("get", "/personas/{p}/delete/", None),
    ("post", "/personas/{p}/delete/", {}),
    ("post", "/personas/{p}/versions/1/restore/", {}),
    ("post", "/personas/move/", {"ids": "{p}", "folder": "none"}),
    ("post", "/personas/move/", {"ids": "{mine},{p}", "folder": "none"}),
    ("post", "/personas/move/", {"ids": "{mine}", "folder": "{f}"}),
    ("get", "/personas/export/?format=csv&ids={p}", None),
    ("get", "/personas/export/?format=json&folder={f}", None),
    ("post", "/personas/export/", {"format": "csv", "ids": "{p}"}),
    ("get", "/personas/?folder={f}", None),
    ("post", "/personas/folders/{f}/rename/", {"name": "Hijacked"}),
    ("post", "/personas/folders/{f}/delete/", {}),
]


def _snapshot(other_user):
    personas = {
        p.pk: (p.profile_data(), p.folder_id, p.tags, p.version) for p in Persona.objects.filter(owner=other_user)
    }
    folders = dict(Folder.objects.filter(owner=other_user).values_list("pk", "name"))
    return personas, folders, PersonaVersion.objects.filter(persona__owner=other_user).count()


@pytest.mark.parametrize(("method", "url", "data"), FOREIGN_REQUESTS)
def test_another_users_objects_are_404_and_unchanged(logged_in, owner, other_user, method, url, data):
    their_folder = FolderFactory(owner=other_user, name="Their folder")
    theirs = PersonaFactory(owner=other_user, folder=their_folder)
    mine = PersonaFactory(owner=owner)
    fill = {"p": theirs.pk, "f": their_folder.pk, "mine": mine.pk}
    before = _snapshot(other_user)
    if data is not None:
        data = {key: value.format(**fill) for key, value in data.items()}
    response = getattr(logged_in, method)(url.format(**fill), data)
    assert response.status_code == 404
    assert _snapshot(other_user) == before
    mine.refresh_from_db()
    assert mine.folder is None and mine.version == 1


# --- anonymous ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/personas/"),
        ("get", "/personas/new/"),
        ("get", "/personas/1/"),
        ("get", "/personas/1/edit/"),
        ("get", "/personas/1/delete/"),
        ("post", "/personas/1/versions/1/restore/"),
        ("post", "/personas/move/"),
        ("get", "/personas/export/"),
        ("get", "/personas/import/"),
        ("post", "/personas/folders/"),
        ("post", "/personas/folders/1/rename/"),
        ("post", "/personas/folders/1/delete/"),
    ],
)
def test_anonymous_is_sent_to_login(client, method, url):
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- admin ---------------------------------------------------------------------------------------


def test_admin_pages_render(client, staff_user, owner):
    from personas.models import GenerationBrief, GroundingSource

    persona = PersonaFactory(owner=owner, folder=FolderFactory(owner=owner))
    brief = GenerationBrief.objects.create(owner=owner, description="Young urban renters", count=3)
    source = GroundingSource.objects.create(brief=brief, kind="txt", filename="notes.txt", size=10, text="hello")
    client.force_login(staff_user)
    for url in [
        "/admin/personas/persona/",
        f"/admin/personas/persona/{persona.pk}/change/",
        "/admin/personas/persona/?q=" + persona.name.split()[0],
        "/admin/personas/folder/",
        "/admin/personas/personaversion/",
        f"/admin/personas/personaversion/{persona.versions.get().pk}/change/",
        "/admin/personas/generationbrief/",
        f"/admin/personas/generationbrief/{brief.pk}/change/",
        "/admin/personas/groundingsource/",
        f"/admin/personas/groundingsource/{source.pk}/change/",
    ]:
        assert client.get(url).status_code == 200, url
