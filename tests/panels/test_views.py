"""The panel pages as a researcher uses them: the list and its empty state, the builder (its errors shown
on the form with everything typed kept, 402 with the way out and nothing created), a panel's progress and
composition, exports, uploads, any folder's composition; and another user gets 404 from every one."""

import csv
import io
import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.jobs.models import Job
from panels import services
from panels.cores import core_record
from panels.models import MemberState, MicrodataFile, Panel, PanelMember, PopulationFile
from panels.population import bundled_population
from personas.models import Folder, Persona
from tests.factories import UserFactory
from tests.personas.factories import FolderFactory, PersonaFactory

# Not transactional: the build's job is created but never dispatched (on_commit does not run), so these
# tests see a panel as it is the moment after “Build”; the runner has its own tests.
pytestmark = pytest.mark.django_db

US = "bundled:us_adults"


@pytest.fixture
def researcher(owner, client):
    credits_grant(user=owner, amount=2000, idempotency_key="test:fund")
    client.force_login(owner)
    return owner


def _text(response) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _form(**extra) -> dict:
    data = {"name": "Oat milk panel", "target": US, "size": "300", "depth": "light", "description": ""}
    data.update(extra)
    return data


def _write(panel: Panel, *, count: int | None = None) -> list[Persona]:
    """Mark members written as the runner would: a persona with the sampled core, in the panel's folder."""
    population = bundled_population("us_adults")
    personas = []
    for member in panel.members.order_by("position")[:count]:
        persona = PersonaFactory(owner=panel.owner, folder=panel.folder, core=core_record(member.core, population))
        PanelMember.objects.filter(pk=member.pk).update(
            state=MemberState.DONE, persona=persona, finished_at=timezone.now()
        )
        personas.append(persona)
    return personas


# --- the list --------------------------------------------------------------------------------------


def test_an_empty_list_says_what_a_panel_is_and_how_to_start(researcher, client):
    text = _text(client.get(reverse("panels:index")))
    assert "No panels yet" in text and "sampled from a population" in text
    assert "Choose who it represents" in text and "Run a survey on it" in text
    assert reverse("panels:new") in client.get(reverse("panels:index")).content.decode()


def test_the_list_shows_each_panel_and_the_uploads(researcher, client):
    panel = services.panel_build_start(owner=researcher, target=US, size=40, name="Forty", seed=1)
    _write(panel, count=10)
    PopulationFile.objects.create(owner=researcher, name="UK adults", data=bundled_population("us_adults").to_json())
    text = _text(client.get(reverse("panels:index")))
    assert "Forty" in text and "10 of 40" in text and "US adults" in text and "Light profiles" in text
    assert "UK adults" in text and "Waiting to start" in text


# --- the builder -----------------------------------------------------------------------------------


def test_the_builder_starts_with_us_adults_300_people_and_their_cost(researcher, client):
    response = client.get(reverse("panels:new"))
    assert response.status_code == 200
    html, text = response.content.decode(), _text(response)
    assert 'value="bundled:us_adults" selected' in html and 'name="size" value="300"' in html
    assert "300 people × 1 credit = 300 credits" in text and "You have 2,000 credits" in text
    assert "Light (one quick call per person, for surveys)" in text and "light" not in text.split()
    # Every dimension's categories are there for the quotas, with their shares.
    targets = json.loads(re.search(r'id="panel-targets"[^>]*>(.*?)</script>', html, re.S).group(1))
    dimensions = {d["key"]: d for d in targets[US]["dimensions"]}
    assert [c["name"] for c in dimensions["age"]["categories"]] == ["18-24", "25-44", "45-64", "65+"]
    assert dimensions["region"]["source"] and dimensions["age"]["year"] == 2010


def test_building_a_panel_with_a_quota_opens_its_page(researcher, client):
    data = _form(
        **{
            "q0-dim1": "gender",
            "q0-cat1": ["Female"],
            "q0-dim2": "age",
            "q0-cat2": ["18-24", "25-44"],
            "q0-kind": "share",
            "q0-value": "30",
            "seed": "42",
        }
    )
    response = client.post(reverse("panels:new"), data)
    panel = Panel.objects.get(owner=researcher)
    assert response.status_code == 302 and response.url == reverse("panels:detail", args=[panel.pk])
    assert panel.size == 300 and panel.seed == 42 and panel.members.count() == 300
    assert panel.quotas == [{"where": {"gender": "Female", "age": ["18-24", "25-44"]}, "share": 30.0}]
    assert credits_balance(user=researcher) == 2000 - 300
    text = _text(client.get(response.url))
    assert "Oat milk panel" in text and "300 people drawn from US adults" in text
    assert "30% 18-24 or 25-44, Female" in text  # the quota in words, in the header and its table
    assert "42" in text and "the same population, size, quotas and seed give the same people" in text
    # Nobody is written yet: the page shows the sampled people against the target.
    assert "Everyone sampled (300)" in text and "Household income" in text and "Northeast" in text


@pytest.mark.parametrize(
    ("size", "message"),
    [("0", "A panel has between 1 and 1,000 people; you asked for 0."), ("1001", "you asked for 1,001")],
)
def test_a_bad_size_is_shown_on_the_form_with_everything_kept(researcher, client, size, message):
    data = _form(
        size=size,
        description="Pet owners",
        **{"q0-dim1": "region", "q0-cat1": ["Northeast"], "q0-kind": "at_least", "q0-value": "10"},
    )
    response = client.post(reverse("panels:new"), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in _text(response) and 'role="alert"' in html
    assert re.search(rf'class="form-control is-invalid" type="number" id="panel-size" name="size" value="{size}"', html)
    assert 'value="Oat milk panel"' in html and "Pet owners</textarea>" in html
    # The quota row is still there, its region ticked and its count kept.
    assert re.search(r'name="q0-dim1"[^>]*>.*?<option value="region" selected>', html, re.S)
    assert re.search(r'name="q0-cat1"[^>]*value="Northeast"[^>]*checked', html)
    assert '<option value="at_least" selected>' in html and 'name="q0-value" value="10"' in html
    assert not Panel.objects.exists()


def test_contradictory_quotas_say_which_and_keep_the_rows(researcher, client):
    data = _form(
        **{
            "q0-dim1": "gender",
            "q0-cat1": ["Female"],
            "q0-value": "60",
            "q1-dim1": "gender",
            "q1-cat1": ["Female"],
            "q1-value": "40",
        }
    )
    response = client.post(reverse("panels:new"), data)
    assert response.status_code == 400
    text = _text(response)
    assert "Quota 1 (60% Female) and Quota 2 (40% Female) contradict each other" in text
    html = response.content.decode()
    assert 'name="q0-value" value="60"' in html and 'name="q1-value" value="40"' in html
    assert 'id="quotas-error"' in html and not Panel.objects.exists()


def test_a_quota_row_with_a_number_but_nobody_chosen_says_so(researcher, client):
    response = client.post(reverse("panels:new"), _form(**{"q0-value": "25"}))
    assert response.status_code == 400 and not Panel.objects.exists()
    assert "Quota 1: choose who it is about" in _text(response)
    assert 'name="q0-value" value="25"' in response.content.decode()


def test_an_impossible_joint_quota_is_refused(researcher, client):
    data = _form(**{"q0-dim1": "gender", "q0-cat1": ["Female"], "q0-dim2": "age", "q0-cat2": ["65+"], "q0-value": "50"})
    response = client.post(reverse("panels:new"), data)
    assert response.status_code == 400 and "is impossible" in _text(response)


def test_short_of_credits_is_a_402_with_a_way_out_and_nothing_created(owner, client):
    credits_grant(user=owner, amount=10, idempotency_key="test:little")
    client.force_login(owner)
    folders, jobs = Folder.objects.count(), Job.objects.count()
    response = client.post(reverse("panels:new"), _form(size="300", depth="full"))
    assert response.status_code == 402
    html = response.content.decode()
    assert "credits" in _text(response) and reverse("billing:index") in html and "Buy credits" in html
    assert 'value="full" checked' in html and 'value="Oat milk panel"' in html
    assert not Panel.objects.exists() and not PanelMember.objects.exists()
    assert Folder.objects.count() == folders and Job.objects.count() == jobs
    assert credits_balance(user=owner) == 10


def test_the_builder_never_offers_another_users_upload(researcher, client, other_user):
    theirs = PopulationFile.objects.create(
        owner=other_user, name="Their secret population", data=bundled_population("us_adults").to_json()
    )
    response = client.get(reverse("panels:new") + f"?target=marginals:{theirs.pk}")
    assert response.status_code == 200 and "Their secret population" not in response.content.decode()
    response = client.post(reverse("panels:new"), _form(target=f"marginals:{theirs.pk}"))
    assert response.status_code == 400 and "Choose who the panel should represent" in _text(response)


# --- uploads ---------------------------------------------------------------------------------------


def _example_csv(client) -> bytes:
    response = client.get(reverse("panels:population_example"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return response.content


def test_the_example_csv_uploads_as_it_is_and_is_then_chosen(researcher, client):
    content = _example_csv(client)
    rows = list(csv.reader(io.StringIO(content.decode())))
    assert rows[0] == ["dimension", "category", "share", "source", "year"] and rows[1][:2] == ["Age", "18-24"]
    upload = SimpleUploadedFile("us.csv", content, content_type="text/csv")
    response = client.post(reverse("panels:population_upload"), {"name": "My US", "country": "US", "file": upload})
    item = PopulationFile.objects.get(owner=researcher)
    assert response.status_code == 302 and response.url.endswith(f"?target=marginals:{item.pk}#builder")
    html = client.get(response.url).content.decode()
    assert f'value="marginals:{item.pk}" selected' in html and "My US (your marginals)" in html


def test_marginals_that_do_not_add_up_name_the_dimension_and_keep_the_fields(researcher, client):
    content = b"dimension,category,share\nAge,18-34,30\nAge,35+,60\nGender,Female,50\nGender,Male,50\n"
    upload = SimpleUploadedFile("uk.csv", content, content_type="text/csv")
    response = client.post(reverse("panels:population_upload"), {"name": "UK adults", "country": "UK", "file": upload})
    assert response.status_code == 400
    text = _text(response)
    assert "“uk.csv”: “Age” adds up to 90.0%, not 100%: fix its shares." in text
    html = response.content.decode()
    assert 'id="marginals-name" name="name" value="UK adults"' in html and 'value="UK"' in html
    assert not PopulationFile.objects.exists()


def _microdata_csv(rows: int = 60) -> bytes:
    lines = ["age,income,region,weight"]
    for index in range(rows):
        lines.append(f"{20 + index % 50},{['Low', 'Middle', 'High'][index % 3]},{['North', 'South'][index % 2]},1.5")
    return "\n".join(lines).encode()


def test_microdata_uploads_and_its_columns_become_the_quota_dimensions(researcher, client):
    upload = SimpleUploadedFile("survey.csv", _microdata_csv(), content_type="text/csv")
    response = client.post(reverse("panels:microdata_upload"), {"name": "Our survey", "file": upload})
    item = MicrodataFile.objects.get(owner=researcher)
    assert response.status_code == 302 and item.row_count == 60
    html = client.get(response.url).content.decode()
    assert f'value="microdata:{item.pk}" selected' in html
    assert '<option value="income">Income</option>' in html and "60 rows" in html


def test_microdata_without_a_weight_column_says_so(researcher, client):
    content = b"age,income\n" + b"\n".join(b"30,Low" for _ in range(40))
    upload = SimpleUploadedFile("noweights.csv", content, content_type="text/csv")
    response = client.post(reverse("panels:microdata_upload"), {"name": "No weights", "file": upload})
    assert response.status_code == 400 and "weight" in _text(response).lower()
    assert 'value="No weights"' in response.content.decode() and not MicrodataFile.objects.exists()


def test_uploads_are_deleted_from_the_list(researcher, client):
    item = PopulationFile.objects.create(owner=researcher, name="Old", data=bundled_population("us_adults").to_json())
    response = client.post(reverse("panels:population_delete", args=[item.pk]))
    assert response.status_code == 302 and not PopulationFile.objects.exists()


# --- a panel ---------------------------------------------------------------------------------------


def test_written_personas_show_their_composition_against_the_target(researcher, client):
    panel = services.panel_build_start(owner=researcher, target=US, size=60, seed=5)
    _write(panel, count=40)
    response = client.get(reverse("panels:detail", args=[panel.pk]))
    text = _text(response)
    assert "Written personas (40)" in text and "The 40 personas written so far" in text
    assert "40 written" in text and "20 waiting" in text and "Stop" in text  # live progress while writing
    html = response.content.decode()
    age = html[html.index('id="dimension-age"') : html.index('id="dimension-gender"')]
    counts = {
        c: sum(1 for m in panel.members.filter(state=MemberState.DONE) if m.core["age"] == c)
        for c in ("18-24", "25-44", "45-64", "65+")
    }
    for category, count in counts.items():
        assert f">{category}</th>" in age
        assert f'{100 * count / 40:.1f}% <span class="text-secondary">({count})' in age
    assert "Target: 2010 US Census" in _text_of(age) and "comp-bar-target" in age and "comp-bar-panel" in age
    # The composition card alone (polled while writing) answers the same rows.
    card = client.get(reverse("panels:composition", args=[panel.pk])).content.decode()
    assert 'id="dimension-age"' in card and "Written personas (40)" in _text_of(card)


def _text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_progress_partial_refreshes_the_page_when_the_panel_ends(researcher, client):
    panel = services.panel_build_start(owner=researcher, target=US, size=5, seed=5)
    url = reverse("panels:progress", args=[panel.pk])
    assert 'hx-trigger="jobs-changed' in client.get(url).content.decode()
    _write(panel)
    Job.objects.filter(pk=panel.job_id).update(state="done", finished_at=timezone.now())
    response = client.get(url + "?was=active")
    assert response["HX-Refresh"] == "true" and "5 of 5 personas written" in _text(response)


def test_failures_are_listed_with_their_reasons(researcher, client):
    panel = services.panel_build_start(owner=researcher, target=US, size=5, seed=5)
    member = panel.members.first()
    PanelMember.objects.filter(pk=member.pk).update(state=MemberState.FAILED, error="The model timed out.")
    text = _text(client.get(reverse("panels:detail", args=[panel.pk])))
    assert "1 person could not be written" in text and "Person 1" in text and "The model timed out." in text


def test_exports_carry_the_composition_and_every_member(researcher, client):
    panel = services.panel_build_start(
        owner=researcher, target=US, size=30, seed=9, quotas=[{"where": {"region": "Northeast"}, "at_least": 10}]
    )
    personas = _write(panel, count=30)
    response = client.get(reverse("panels:composition_export", args=[panel.pk, "csv"]))
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert response["Content-Disposition"].endswith(f'panel-{panel.pk}-composition.csv"')
    assert rows[0][:4] == ["Dimension", "Category", "Target %", "Panel %"] and rows[1][:2] == ["Age", "18-24"]
    assert rows[-1][0] == "Quota" and "at least 10 Northeast" in rows[-1][1]
    comp = client.get(reverse("panels:composition_export", args=[panel.pk, "json"])).json()
    assert comp["size"] == 30 and comp["dimensions"][0]["key"] == "age"
    document = client.get(reverse("panels:export", args=[panel.pk])).json()
    assert document["seed"] == 9 and document["quotas"] == panel.quotas
    assert document["target"]["name"].startswith("US adults") and len(document["members"]) == 30
    first = document["members"][0]
    assert first["core"] == panel.members.get(position=0).core and first["persona"]["id"] == personas[0].pk
    assert document["composition"]["size"] == 30
    assert client.get(reverse("panels:composition_export", args=[panel.pk, "xml"])).status_code == 404


def test_deleting_a_panel_keeps_or_deletes_its_personas(researcher, client):
    kept = services.panel_build_start(owner=researcher, target=US, size=3, seed=1)
    _write(kept)
    response = client.post(reverse("panels:delete", args=[kept.pk]))
    assert response.status_code == 302 and not Panel.objects.filter(pk=kept.pk).exists()
    assert Persona.objects.filter(owner=researcher).count() == 3
    gone = services.panel_build_start(owner=researcher, target=US, size=2, seed=2)
    _write(gone)
    client.post(reverse("panels:delete", args=[gone.pk]), {"with_personas": "on"})
    assert Persona.objects.filter(owner=researcher).count() == 3


def test_deleting_a_panel_being_written_stops_it_and_refunds_the_rest(researcher, client):
    panel = services.panel_build_start(owner=researcher, target=US, size=10, seed=1)
    _write(panel, count=4)
    Job.objects.filter(pk=panel.job_id).update(state="running", started_at=timezone.now())
    client.post(reverse("panels:delete", args=[panel.pk]))
    assert Job.objects.get(pk=panel.job_id).state == "cancelled"
    assert credits_balance(user=researcher) == 2000 - 4


# --- personas and folders --------------------------------------------------------------------------


def test_a_sampled_persona_shows_what_was_sampled(researcher, client):
    panel = services.panel_build_start(owner=researcher, target=US, size=1, seed=3, name="Tiny")
    persona = _write(panel)[0]
    text = _text(client.get(reverse("personas:detail", args=[persona.pk])))
    assert "Sampled from the population" in text and "Tiny" in text
    core = panel.members.get().core
    assert f"Household income {core['income']}" in text and f"Race/ethnicity {core['race']}" in text
    assert text.count("Sampled ") >= 4  # the badges beside age, gender, education, income, location
    plain = PersonaFactory(owner=researcher)
    assert "Sampled" not in _text(client.get(reverse("personas:detail", args=[plain.pk])))


def test_any_folder_shows_its_composition_against_a_chosen_population(researcher, client):
    folder = FolderFactory(owner=researcher, name="Hand-made")
    PersonaFactory(owner=researcher, folder=folder, age=30, gender="Female", location="Austin, Texas")
    PersonaFactory(owner=researcher, folder=folder, age=70, gender="Male", location="Boston, MA")
    assert (
        reverse("panels:folder_composition", args=[folder.pk])
        in client.get(reverse("personas:index") + f"?folder={folder.pk}").content.decode()
    )
    response = client.get(reverse("panels:folder_composition", args=[folder.pk]))
    text = _text(response)
    assert response.status_code == 200 and "Hand-made: composition" in text and "2 personas" in text
    html = response.content.decode()
    age = html[html.index('id="dimension-age"') : html.index('id="dimension-gender"')]
    assert '50.0% <span class="text-secondary">(1)' in age  # one of two is 25-44, one 65+
    item = PopulationFile.objects.create(owner=researcher, name="Mine", data=bundled_population("us_adults").to_json())
    response = client.get(reverse("panels:folder_composition", args=[folder.pk]) + f"?population=marginals:{item.pk}")
    assert response.status_code == 200 and f'value="marginals:{item.pk}" selected' in response.content.decode()
    export = client.get(reverse("panels:folder_composition_export", args=[folder.pk, "csv"]))
    assert export.status_code == 200 and export.content.decode().startswith("Dimension,Category")


# --- nobody else's ---------------------------------------------------------------------------------


def test_another_user_gets_404_from_every_page_export_and_action(researcher, client):
    panel = services.panel_build_start(owner=researcher, target=US, size=5, seed=1, name="Secret panel")
    _write(panel)
    population = PopulationFile.objects.create(
        owner=researcher, name="Secret population", data=bundled_population("us_adults").to_json()
    )
    upload = SimpleUploadedFile("survey.csv", _microdata_csv(), content_type="text/csv")
    client.post(reverse("panels:microdata_upload"), {"name": "Secret microdata", "file": upload})
    microdata = MicrodataFile.objects.get(owner=researcher)
    folder = panel.folder

    intruder = UserFactory(email="intruder@example.com")
    client = Client()
    client.force_login(intruder)
    gets = [
        reverse("panels:detail", args=[panel.pk]),
        reverse("panels:progress", args=[panel.pk]),
        reverse("panels:composition", args=[panel.pk]),
        reverse("panels:composition_export", args=[panel.pk, "csv"]),
        reverse("panels:composition_export", args=[panel.pk, "json"]),
        reverse("panels:export", args=[panel.pk]),
        reverse("panels:folder_composition", args=[folder.pk]),
        reverse("panels:folder_composition_export", args=[folder.pk, "csv"]),
    ]
    for url in gets:
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Secret" not in response.content.decode(), url
    posts = [
        reverse("panels:delete", args=[panel.pk]),
        reverse("panels:population_delete", args=[population.pk]),
        reverse("panels:microdata_delete", args=[microdata.pk]),
    ]
    for url in posts:
        assert client.post(url).status_code == 404, url
    # Their own folder, against the owner's uploads: 404 too.
    own = FolderFactory(owner=intruder)
    for value in (f"marginals:{population.pk}", f"microdata:{microdata.pk}"):
        url = reverse("panels:folder_composition", args=[own.pk]) + f"?population={value}"
        assert client.get(url).status_code == 404, value
    assert "Secret" not in client.get(reverse("panels:index")).content.decode()
    assert Panel.objects.filter(pk=panel.pk).exists() and PopulationFile.objects.filter(pk=population.pk).exists()
    assert MicrodataFile.objects.filter(pk=microdata.pk).exists()
