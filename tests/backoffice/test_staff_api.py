from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.backoffice.conftest import make_event

pytestmark = pytest.mark.django_db
URL = "/api/v1/staff/usage/summary/"


@pytest.fixture
def staff_api(staff_user):
    client = APIClient()
    client.force_authenticate(staff_user)
    return client


@pytest.fixture
def events(owner, other_user):
    make_event(user=owner, cost="2.5", model="gpt-a", feature="moderator")
    make_event(user=other_user, cost="1", model="gpt-b", feature="report")
    make_event(user=owner, cost="4", model="gpt-a", at=timezone.now() - timedelta(days=60))  # outside 30 days


@pytest.mark.parametrize(
    ("group_by", "first_key", "first_cost"),
    [("model", "gpt-a", "2.500000"), ("feature", "moderator", "2.500000"), ("user", None, "2.500000")],
)
def test_grouped_summary(staff_api, owner, events, group_by, first_key, first_cost):
    response = staff_api.get(URL, {"group_by": group_by})
    assert response.status_code == 200
    body = response.json()
    assert body["group_by"] == group_by
    assert body["totals"]["calls"] == 2 and Decimal(body["totals"]["cost_usd"]) == Decimal("3.5")
    first = body["rows"][0]
    assert first["cost_usd"] == first_cost
    assert first["key"] == (str(owner.pk) if group_by == "user" else first_key)
    if group_by == "user":
        assert first["label"] == "owner@example.com"


def test_by_day_with_an_explicit_range(staff_api, events):
    today = timezone.localdate()
    start = today - timedelta(days=2)
    response = staff_api.get(URL, {"group_by": "day", "from": start.isoformat(), "to": today.isoformat()})
    body = response.json()
    assert (body["from"], body["to"]) == (start.isoformat(), today.isoformat())
    assert [row["key"] for row in body["rows"]] == [(start + timedelta(days=n)).isoformat() for n in range(3)]
    assert body["rows"][-1]["calls"] == 2


def test_default_range_is_the_last_30_days(staff_api, events):
    body = staff_api.get(URL).json()
    assert body["group_by"] == "day" and len(body["rows"]) == 30
    assert body["to"] == timezone.localdate().isoformat()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"group_by": "persona"}, "group_by"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-05-10", "to": "2026-05-01"}, "from"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "from"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(staff_api, params, field):
    response = staff_api.get(URL, params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and field in error["fields"]


def test_documented_in_the_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/staff/usage/summary/"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"group_by", "from", "to"}
    assert "400" in operation["responses"] or "200" in operation["responses"]
