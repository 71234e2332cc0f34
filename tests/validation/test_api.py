"""The validation API: upload → 201 with the suggested mapping, the mapping checked (200, or 400 with the
service's message naming the column), start → 202 with the cost, 402 before any work, the scorecard as JSON
and CSV once scored (409 before); another user's reference or validation is a 404."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.jobs.models import Job
from panels.models import Panel
from surveys.models import Survey
from tests.validation.test_views import MAPPING, THREE, mapped, reference_csv, scored, upload
from validation import services
from validation.models import Reference, Validation, ValidationState

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(owner_api, owner):
    credits_grant(user=owner, amount=1000, idempotency_key="test:fund")
    return owner_api


@pytest.fixture
def intruder(other_user):
    client = APIClient()
    client.force_authenticate(other_user)
    return client


def _post_file(api, data: bytes, name: str = "Brand tracker"):
    file = SimpleUploadedFile("brands.csv", data, content_type="text/csv")
    return api.post(reverse("api:validation-reference-list"), {"file": file, "name": name}, format="multipart")


def test_an_upload_answers_201_with_the_columns_and_the_suggested_mapping(api, owner, intruder):
    response = _post_file(api, reference_csv())
    assert response.status_code == 201, response.json()
    body = response.json()
    reference = Reference.objects.get(owner=owner)
    assert body["id"] == reference.pk and body["row_count"] == 60 and body["is_mapped"] is False
    assert body["columns"][:3] == ["respondent_id", "age", "sex"] and body["mapping"] == {}
    suggested = {q["column"]: q for q in body["suggested"]["questions"]}
    assert suggested["spend_health"]["kind"] == "scale" and suggested["spend_health"]["scale"] == THREE
    assert [d["dimension"] for d in body["suggested"]["demographics"]] == ["age", "gender"]
    listed = api.get(reverse("api:validation-reference-list")).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == reference.pk
    assert intruder.get(reverse("api:validation-reference-list")).json()["count"] == 0
    assert intruder.get(reverse("api:validation-reference-detail", args=[reference.pk])).status_code == 404


def test_a_file_without_a_header_is_a_400_saying_so(api):
    response = _post_file(api, b"1,2,3\n4,5,6\n")
    assert response.status_code == 400
    assert "has no header row" in response.json()["error"]["message"] and not Reference.objects.exists()


def test_the_mapping_is_checked_and_kept(api, owner):
    reference = upload(owner)
    url = reverse("api:validation-reference-mapping", args=[reference.pk])
    response = api.put(url, MAPPING, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    health = body["questions"][0]
    assert health["column"] == "spend_health" and health["scale"] == THREE
    assert health["n_answered"] == 60 and health["n_missing"] == 0
    space = body["questions"][1]
    blanks = sum(1 for row in csv.DictReader(io.StringIO(reference_csv().decode())) if not row["spend_space"])
    assert space["n_missing"] == blanks and space["n_answered"] == 60 - blanks
    reference.refresh_from_db()
    assert reference.is_mapped and reference.mapping == body
    assert api.get(reverse("api:validation-reference-detail", args=[reference.pk])).json()["is_mapped"] is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["questions"][0].update(column="spend_heath"), "“spend_heath” is not a column in this file"),
        (lambda m: m["questions"][0].update(scale=THREE[:2]), "outside the scale Too little, About right"),
        (lambda m: m.update(questions=[]), "No question is mapped"),
        (lambda m: m["demographics"].append({"column": "spend_health", "dimension": "x"}), "mapped more than once"),
    ],
)
def test_a_bad_mapping_is_a_400_with_the_services_message(api, owner, change, message):
    reference = upload(owner)
    mapping = {
        **MAPPING,
        "questions": [dict(q) for q in MAPPING["questions"]],
        "demographics": list(MAPPING["demographics"]),
    }
    change(mapping)
    response = api.put(reverse("api:validation-reference-mapping", args=[reference.pk]), mapping, format="json")
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    reference.refresh_from_db()
    assert reference.mapping == {}


def test_starting_answers_202_with_the_validation_and_its_cost(api, owner):
    reference = mapped(owner)
    response = api.post(
        reverse("api:validation-list"), {"reference_id": reference.pk, "size": 20, "seed": 9}, format="json"
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    validation = Validation.objects.get(owner=owner)
    assert body["id"] == validation.pk and body["seed"] == 9 and body["size"] == 20 and body["depth"] == "light"
    assert body["state"] == "panel" and body["state_label"] == "Writing the matched panel"
    assert body["cost"] == services.validation_cost(size=20, question_count=4)
    assert [step["key"] for step in body["steps"]] == ["panel", "survey", "scoring"]
    assert body["steps"][0]["status"] == "current" and body["steps"][1]["status"] == "waiting"
    assert body["links"]["panel"] == reverse("panels:detail", args=[validation.panel_id])
    assert body["links"]["panel_api"] == reverse("api:panel-detail", args=[validation.panel_id])
    assert body["links"]["run"] is None and body["links"]["scorecard"] is None
    assert body["verdict"] is None and body["scorecard"] is None and body["passed"] is None
    assert credits_balance(user=owner) == 1000 - 20  # the personas now; their answers when the panel is ready
    listed = api.get(reverse("api:validation-list")).json()
    assert listed["count"] == 1 and listed["results"][0]["state"] == "panel"
    # No scorecard yet: 409 saying where it is.
    response = api.get(reverse("api:validation-scorecard", args=[validation.pk]))
    assert response.status_code == 409 and "Writing the matched panel" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"size": 0}, "between 1 and 60 synthetic respondents"),
        ({"size": 61}, "you asked for 61"),
    ],
)
def test_bad_input_is_a_400_with_the_services_message(api, owner, data, message):
    reference = mapped(owner)
    response = api.post(reverse("api:validation-list"), {"reference_id": reference.pk, **data}, format="json")
    assert response.status_code == 400 and message in response.json()["error"]["message"]
    assert not Validation.objects.exists() and not Panel.objects.exists()


def test_an_unmapped_reference_is_a_400(api, owner):
    reference = upload(owner)
    response = api.post(reverse("api:validation-list"), {"reference_id": reference.pk, "size": 5}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "reference_not_mapped"


def test_short_of_credits_is_a_402_before_any_work(owner_api, owner):
    reference = mapped(owner)
    jobs = Job.objects.count()
    response = owner_api.post(reverse("api:validation-list"), {"reference_id": reference.pk, "size": 30}, format="json")
    assert response.status_code == 402 and response.json()["error"]["code"] == "insufficient_credits"
    assert not Validation.objects.exists() and not Panel.objects.exists() and not Survey.objects.exists()
    assert Job.objects.count() == jobs


def test_someone_elses_reference_cannot_be_validated_or_mapped(api, owner, intruder, other_user):
    credits_grant(user=other_user, amount=1000, idempotency_key="test:other")
    reference = mapped(owner)
    response = intruder.post(reverse("api:validation-list"), {"reference_id": reference.pk, "size": 5}, format="json")
    assert response.status_code == 404 and not Validation.objects.exists()
    response = intruder.put(reverse("api:validation-reference-mapping", args=[reference.pk]), MAPPING, format="json")
    assert response.status_code == 404
    assert intruder.delete(reverse("api:validation-reference-detail", args=[reference.pk])).status_code == 404
    assert Reference.objects.filter(pk=reference.pk).exists()


def test_a_scored_validation_gives_its_verdict_and_scorecard(api, owner, intruder):
    validation = scored(owner, mapped(owner))
    body = api.get(reverse("api:validation-detail", args=[validation.pk])).json()
    assert body["state"] == "done" and body["verdict"]["summary"] == validation.scorecard["verdict"]["summary"]
    assert body["passed"] is validation.scorecard["verdict"]["passed"] and body["scorecard"] == validation.scorecard
    assert body["links"]["scorecard"] == reverse("api:validation-scorecard", args=[validation.pk])
    document = api.get(body["links"]["scorecard"]).json()
    assert document["scorecard"] == validation.scorecard and document["reference"]["name"] == "Brand tracker"
    assert document["mapping"] == validation.mapping and document["seed"] == validation.seed
    response = api.get(body["links"]["scorecard_csv"])
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["Question"] for r in rows if r["Level"] == "question"] == [
        q["label"] for q in validation.scorecard["questions"]
    ]
    for name in ("api:validation-detail", "api:validation-scorecard", "api:validation-scorecard-csv"):
        assert intruder.get(reverse(name, args=[validation.pk])).status_code == 404, name
    assert intruder.delete(reverse("api:validation-detail", args=[validation.pk])).status_code == 404
    assert api.delete(reverse("api:validation-detail", args=[validation.pk])).status_code == 204
    assert not Validation.objects.exists()


def test_deleting_a_reference_keeps_its_validations(api, owner):
    reference = mapped(owner)
    validation = scored(owner, reference)
    assert api.delete(reverse("api:validation-reference-detail", args=[reference.pk])).status_code == 204
    body = api.get(reverse("api:validation-detail", args=[validation.pk])).json()
    assert body["reference_id"] is None and body["reference_name"] == "Brand tracker" and body["scorecard"]


@pytest.mark.django_db(transaction=True)
def test_upload_map_start_and_read_the_scorecard_offline(owner, fake_llm):
    credits_grant(user=owner, amount=1000, idempotency_key="test:fund")
    api = APIClient()
    api.force_authenticate(owner)
    reference_id = _post_file(api, reference_csv()).json()["id"]
    assert (
        api.put(reverse("api:validation-reference-mapping", args=[reference_id]), MAPPING, format="json").status_code
        == 200
    )
    response = api.post(
        reverse("api:validation-list"), {"reference_id": reference_id, "size": 24, "seed": 3}, format="json"
    )
    assert response.status_code == 202, response.json()
    body = api.get(reverse("api:validation-detail", args=[response.json()["id"]])).json()
    assert body["state"] == ValidationState.DONE, body["error"]
    assert [step["status"] for step in body["steps"]] == ["done", "done", "done"]
    assert body["steps"][0]["done"] == body["steps"][0]["total"] == 24
    assert body["links"]["run"] == reverse("surveys:run", args=[body["run_id"]])
    scorecard = api.get(body["links"]["scorecard"]).json()["scorecard"]
    assert [q["label"] for q in scorecard["questions"]] == [q["label"] for q in MAPPING["questions"]]
    assert all(q["n_synthetic"] == 24 for q in scorecard["questions"])
    assert isinstance(scorecard["verdict"]["passed"], bool) and scorecard["verdict"]["checks"]
