"""The panels API: targets (built in and uploaded), build → 202 with the job and the cost, 400 with the
service's message, 402 before any work, composition as JSON and CSV; another user's is a 404."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.jobs.models import Job
from panels import services
from panels.models import MemberState, MicrodataFile, Panel, PanelMember, PopulationFile
from panels.population import bundled_population
from personas.models import Folder

pytestmark = pytest.mark.django_db

US = "bundled:us_adults"
MARGINALS = (
    b"dimension,category,share,source,year\nAge,18-39,40,ONS,2021\nAge,40+,60,ONS,2021\nSex,F,51,,\nSex,M,49,,\n"
)


@pytest.fixture
def api(owner_api, owner):
    credits_grant(user=owner, amount=1000, idempotency_key="test:fund")
    return owner_api


@pytest.fixture
def intruder(other_user):
    client = APIClient()
    client.force_authenticate(other_user)
    return client


def _microdata(rows: int = 40) -> bytes:
    lines = ["age,income,wt"] + [f"{25 + i % 40},{['Low', 'High'][i % 2]},1" for i in range(rows)]
    return "\n".join(lines).encode()


def test_targets_list_the_built_in_population_with_its_figures_and_sources(api):
    response = api.get(reverse("api:panel-targets"))
    assert response.status_code == 200
    us = next(target for target in response.json() if target["value"] == US)
    assert us["kind"] == "bundled" and us["name"].startswith("US adults")
    age = next(dimension for dimension in us["dimensions"] if dimension["key"] == "age")
    assert age["label"] == "Age" and age["year"] == 2010 and "Census" in age["source"]
    assert age["categories"][0] == {"name": "18-24", "share": 13.0}
    assert round(sum(category["share"] for category in age["categories"])) == 100


def test_uploaded_marginals_are_a_target_and_can_be_deleted(api, owner, intruder):
    upload = SimpleUploadedFile("uk.csv", MARGINALS, content_type="text/csv")
    response = api.post(
        reverse("api:panel-target-marginals"), {"file": upload, "name": "UK", "country": "UK"}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    item = PopulationFile.objects.get(owner=owner)
    body = response.json()
    assert body["value"] == f"marginals:{item.pk}" and body["country"] == "UK"
    assert [d["key"] for d in body["dimensions"]] == ["age", "gender"] and body["dimensions"][0]["source"] == "ONS"
    assert body["value"] in [target["value"] for target in api.get(reverse("api:panel-targets")).json()]
    assert body["value"] not in [target["value"] for target in intruder.get(reverse("api:panel-targets")).json()]
    url = reverse("api:panel-target-marginals-detail", args=[item.pk])
    assert intruder.delete(url).status_code == 404 and PopulationFile.objects.filter(pk=item.pk).exists()
    assert api.delete(url).status_code == 204 and not PopulationFile.objects.exists()


def test_marginals_that_do_not_add_up_are_a_400_naming_the_dimension(api):
    bad = MARGINALS.replace(b"Sex,M,49", b"Sex,M,30")
    upload = SimpleUploadedFile("uk.csv", bad, content_type="text/csv")
    response = api.post(reverse("api:panel-target-marginals"), {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "“Sex” adds up to 81.0%, not 100%: fix its shares."
    assert not PopulationFile.objects.exists()


def test_microdata_uploads_and_a_file_without_weights_is_refused(api, owner, intruder):
    upload = SimpleUploadedFile("s.csv", _microdata(), content_type="text/csv")
    response = api.post(reverse("api:panel-target-microdata"), {"file": upload, "name": "S"}, format="multipart")
    assert response.status_code == 201, response.json()
    item = MicrodataFile.objects.get(owner=owner)
    assert response.json()["row_count"] == 40 and response.json()["value"] == f"microdata:{item.pk}"
    no_weight = b"age,income\n" + b"\n".join(b"30,Low" for _ in range(40))
    upload = SimpleUploadedFile("n.csv", no_weight, content_type="text/csv")
    response = api.post(reverse("api:panel-target-microdata"), {"file": upload}, format="multipart")
    assert response.status_code == 400 and "weight" in response.json()["error"]["message"].lower()
    url = reverse("api:panel-target-microdata-detail", args=[item.pk])
    assert intruder.delete(url).status_code == 404
    assert api.delete(url).status_code == 204 and not MicrodataFile.objects.exists()


def test_build_answers_202_with_the_panel_its_job_and_its_cost(api, owner):
    response = api.post(
        reverse("api:panel-list"),
        {"size": 200, "seed": 7, "quotas": [{"where": {"region": "Northeast"}, "at_least": 50}]},
        format="json",
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    panel = Panel.objects.get(owner=owner)
    assert body["id"] == panel.pk and body["job_id"] == str(panel.job_id) and body["job"]["id"] == str(panel.job_id)
    assert body["cost"] == 200 and body["unit_cost"] == 1 and body["seed"] == 7 and body["depth"] == "light"
    assert body["counts"]["total"] == 200 and body["counts"]["pending"] == 200 and body["state"] == "pending"
    assert body["target"]["name"].startswith("US adults")
    assert credits_balance(user=owner) == 1000 - 200
    assert sum(m.core["region"] == "Northeast" for m in panel.members.all()) >= 50
    detail = api.get(reverse("api:panel-detail", args=[panel.pk])).json()
    assert detail["id"] == panel.pk and detail["counts"]["total"] == 200
    listed = api.get(reverse("api:panel-list")).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == panel.pk and listed["results"][0]["written"] == 0


@pytest.mark.parametrize(
    ("data", "message", "field"),
    [
        ({"size": 0}, "A panel has between 1 and 1,000 people; you asked for 0.", "size"),
        ({"size": 5000}, "you asked for 5,000", "size"),
        ({"size": 10, "target": "bundled:mars"}, "Choose who the panel should represent", "target"),
        (
            {
                "size": 100,
                "quotas": [{"where": {"gender": "Female"}, "share": 70}, {"where": {"gender": "Male"}, "share": 50}],
            },
            "contradict each other",
            "quotas",
        ),
    ],
)
def test_bad_input_is_a_400_with_the_services_message(api, data, message, field):
    response = api.post(reverse("api:panel-list"), data, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error["message"] and field in error["extra"]["fields"]
    assert not Panel.objects.exists() and not Job.objects.exists()


def test_short_of_credits_is_a_402_before_any_work(owner_api, owner):
    folders = Folder.objects.count()
    response = owner_api.post(reverse("api:panel-list"), {"size": 50}, format="json")
    assert response.status_code == 402 and response.json()["error"]["code"] == "insufficient_credits"
    assert not Panel.objects.exists() and not PanelMember.objects.exists() and not Job.objects.exists()
    assert Folder.objects.count() == folders


def test_composition_is_json_and_csv(api, owner):
    panel = services.panel_build_start(owner=owner, target=US, size=100, seed=3)
    # Nobody written yet: the written composition is empty, the sampled one has everyone.
    written = api.get(reverse("api:panel-composition", args=[panel.pk])).json()
    assert written["size"] == 0
    sampled = api.get(reverse("api:panel-composition", args=[panel.pk]) + "?of=sampled").json()
    assert sampled["size"] == 100
    age = sampled["dimensions"][0]
    assert age["key"] == "age" and age["source"] and age["rows"][0]["category"] == "18-24"
    assert sum(row["count"] for row in age["rows"]) == 100
    assert set(age["rows"][0]) >= {"category", "target", "panel", "count", "deviation"}
    PanelMember.objects.filter(panel=panel, position__lt=10).update(state=MemberState.DONE)
    response = api.get(reverse("api:panel-composition-csv", args=[panel.pk]) + "?of=sampled")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["Dimension", "Category", "Target %", "Panel %", "Count", "Deviation (points)"]
    assert rows[1][:2] == ["Age", "18-24"]


def test_a_panel_built_from_an_upload_and_another_users_upload_is_refused(api, owner, other_user):
    mine = PopulationFile.objects.create(owner=owner, name="Mine", data=bundled_population("us_adults").to_json())
    response = api.post(reverse("api:panel-list"), {"size": 20, "target": f"marginals:{mine.pk}"}, format="json")
    assert response.status_code == 202
    theirs = PopulationFile.objects.create(owner=other_user, name="Theirs", data=mine.data)
    response = api.post(reverse("api:panel-list"), {"size": 20, "target": f"marginals:{theirs.pk}"}, format="json")
    assert response.status_code == 400 and Panel.objects.count() == 1


def test_another_users_panel_is_a_404_everywhere(api, owner, intruder):
    panel = services.panel_build_start(owner=owner, target=US, size=10, seed=3, name="Secret")
    for name in ("api:panel-detail", "api:panel-composition", "api:panel-composition-csv"):
        response = intruder.get(reverse(name, args=[panel.pk]))
        assert response.status_code == 404, name
        assert "Secret" not in response.content.decode()
    assert intruder.delete(reverse("api:panel-detail", args=[panel.pk])).status_code == 404
    assert intruder.get(reverse("api:panel-list")).json()["count"] == 0
    assert Panel.objects.filter(pk=panel.pk).exists()
    assert api.delete(reverse("api:panel-detail", args=[panel.pk])).status_code == 204
    assert not Panel.objects.exists()
    assert Job.objects.get(pk=panel.job_id).state == "cancelled"  # it was waiting: stopped, and refunded
    assert credits_balance(user=owner) == 1000
