import re

import pytest
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from billing.models import CreditTransaction
from billing.services import credits_grant, credits_refund, credits_spend
from cohorta.api.errors import exception_handler
from cohorta.core.models import get_app_settings
from cohorta.errors import InsufficientCredits

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _history(owner) -> None:
    credits_grant(user=owner, amount=50, kind="trial", idempotency_key="trial", description="Free trial credits")
    spend = credits_spend(user=owner, amount=40, idempotency_key="run", description="Autonomous run: Oat milk")
    credits_refund(spend=spend, amount=10, idempotency_key="refund", description="Run stopped early")


# --- the Billing page ---------------------------------------------------------------


def test_billing_page_shows_balance_costs_and_ledger(client, owner):
    _history(owner)
    client.force_login(owner)
    response = client.get("/billing/")
    assert response.status_code == 200
    assert response.context["balance"] == 20
    text = _text(response)
    assert "20 credits" in text
    assert "2 credits per AI persona" in text and "40 credits per autonomous session run" in text
    assert "Autonomous run: Oat milk" in text and "Free trial credits" in text and "Run stopped early" in text
    assert "+50" in text and "−40" in text and "+10" in text
    assert "Buy credits" in text and "disabled" in response.content.decode()
    rows = response.context["page_obj"].object_list
    assert [row.balance_after for row in rows] == [20, 10, 50]


def test_billing_page_costs_follow_app_settings(client, owner):
    app = get_app_settings()
    app.persona_credit_cost = 3
    app.session_run_credit_cost = 55
    app.save()
    client.force_login(owner)
    text = _text(client.get("/billing/"))
    assert "3 credits per AI persona" in text and "55 credits per autonomous session run" in text


def test_billing_page_empty_state(client, owner):
    client.force_login(owner)
    text = _text(client.get("/billing/"))
    assert "No credit movements yet" in text and "0 credits" in text


def test_billing_page_never_shows_another_users_ledger(client, owner, other_user):
    credits_grant(user=other_user, amount=77, idempotency_key="theirs", description="Oscar's secret grant")
    client.force_login(owner)
    response = client.get("/billing/")
    assert "Oscar's secret grant" not in response.content.decode()
    assert response.context["balance"] == 0 and not response.context["page_obj"].object_list


def test_billing_page_is_paginated(client, owner):
    for n in range(30):
        credits_grant(user=owner, amount=1, idempotency_key=f"g{n}")
    client.force_login(owner)
    first = client.get("/billing/")
    assert len(first.context["page_obj"].object_list) == 25 and "Page 1 of 2" in _text(first)
    assert len(client.get("/billing/?page=2").context["page_obj"].object_list) == 5


def test_billing_page_needs_login(client):
    response = client.get("/billing/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# --- the API ------------------------------------------------------------------------


def test_credits_endpoint(owner_api, owner):
    _history(owner)
    response = owner_api.get("/api/v1/credits/")
    assert response.status_code == 200
    assert response.json() == {"balance": 20, "costs": {"persona": 2, "session_run": 40, "persona_modify": 2}}


def test_ledger_endpoint_lists_only_own_rows_newest_first(owner_api, owner, other_user):
    _history(owner)
    credits_grant(user=other_user, amount=5, idempotency_key="theirs")
    body = owner_api.get("/api/v1/credits/ledger/").json()
    assert body["count"] == 3
    assert [(row["kind"], row["delta"], row["balance_after"]) for row in body["results"]] == [
        ("refund", 10, 20),
        ("spend", -40, 10),
        ("trial", 50, 50),
    ]
    refund, spend = body["results"][0], body["results"][1]
    assert refund["refund_of"] == spend["id"]
    assert "idempotency_key" not in refund


@pytest.mark.parametrize("url", ["/api/v1/credits/", "/api/v1/credits/ledger/"])
def test_credits_api_needs_authentication(api_client, url):
    response = api_client.get(url)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


class _SpendView(APIView):
    """A throwaway endpoint standing in for a paid feature, to see the 402 the way clients will."""

    def post(self, request):
        credits_spend(user=request.user, amount=40, idempotency_key="feature:1")
        return Response({"ok": True})


def test_insufficient_credits_is_http_402_with_the_error_body(owner):
    credits_grant(user=owner, amount=3, idempotency_key="grant")
    request = APIRequestFactory().post("/any/", {}, format="json")
    force_authenticate(request, user=owner)
    response = _SpendView.as_view()(request)
    assert response.status_code == 402
    assert response.data == {
        "error": {
            "code": "insufficient_credits",
            "message": "This needs 40 credits; you have 3. Buy credits on the Billing page.",
            "extra": {"required": 40, "balance": 3},
        }
    }
    assert CreditTransaction.objects.count() == 1


def test_exception_handler_renders_insufficient_credits():
    response = exception_handler(InsufficientCredits("No.", extra={"required": 2, "balance": 0}), {})
    assert response.status_code == 402
    assert response.data["error"]["code"] == "insufficient_credits"
