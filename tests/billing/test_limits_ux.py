"""Out of credits or over budget (HTTP 402), everywhere it can happen: the page says what happened and what to
do (Buy credits for credits; contact your admin for the budget), and the API says which limit was hit."""

import re
from decimal import Decimal

import pytest

from billing.ux import error_html
from cohorta.errors import ApplicationError, InsufficientCredits, QuotaExceeded
from tests.focusgroups.test_autonomous import make_session
from tests.personas.factories import PersonaFactory

pytestmark = pytest.mark.django_db

BRIEF = "UK parents of young children who cook on weeknights and are curious about meal kits."
JSON = {"HTTP_ACCEPT": "application/json"}


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def over_budget(owner):
    owner.monthly_quota_usd = Decimal("0.00")
    owner.save()
    return owner


def test_error_html_links_the_way_out_and_escapes_the_message():
    short = str(error_html(InsufficientCredits("Needs <b>40</b>.", extra={"required": 40, "balance": 0})))
    assert short.startswith("Needs &lt;b&gt;40&lt;/b&gt;.") and 'href="/billing/">Buy credits →</a>' in short
    budget = str(error_html(QuotaExceeded("Budget used.")))
    assert "Contact your admin to raise it." in budget and 'href="/usage/">See your usage →</a>' in budget
    cap = str(error_html(QuotaExceeded("Cap reached.", code="session_cap_reached")))
    assert "spending cap in its settings" in cap and "href" not in cap
    assert str(error_html(ApplicationError("Plain <i>.", status_code=409))) == "Plain &lt;i&gt;."


def test_persona_generation_page_offers_buy_credits(client, owner):
    client.force_login(owner)
    response = client.post("/personas/generate/", {"description": BRIEF, "count": 4})
    html = response.content.decode()
    assert response.status_code == 400
    assert "This needs 8 credits; you have 0." in _text(html)
    assert '<a class="alert-link fw-semibold" href="/billing/">Buy credits →</a>' in html


def test_persona_modify_offers_buy_credits(client, owner):
    persona = PersonaFactory(owner=owner)
    client.force_login(owner)
    page = client.post(f"/personas/{persona.pk}/modify/", {"instruction": "make her thriftier"}, follow=True)
    html = page.content.decode()
    assert "you have 0" in _text(html) and 'href="/billing/">Buy credits →</a>' in html


def test_autonomous_start_without_credits_json_and_page(client, owner):
    session = make_session(owner)
    client.force_login(owner)
    response = client.post(f"/focus-groups/{session.pk}/autonomous/start/", **JSON)
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "insufficient_credits"
    assert error["extra"] == {"required": 40, "balance": 0}
    assert error["help"] == {"label": "Buy credits", "url": "/billing/", "hint": ""}
    page = client.post(f"/focus-groups/{session.pk}/autonomous/start/", follow=True).content.decode()
    assert 'href="/billing/">Buy credits →</a>' in page


def test_moderated_question_over_budget_json_and_page(client, over_budget):
    session = make_session(over_budget, guide=False)
    client.force_login(over_budget)
    response = client.post(f"/focus-groups/{session.pk}/messages/", {"content": "What do you cook?"}, **JSON)
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert set(error["extra"]) == {"spent_usd", "limit_usd"}
    assert error["help"]["hint"] == "Contact your admin to raise it." and error["help"]["url"] == "/usage/"
    page = client.post(f"/focus-groups/{session.pk}/messages/", {"content": "What do you cook?"}, follow=True)
    assert "Contact your admin to raise it." in _text(page.content.decode())


def test_session_cap_names_itself(client, owner):
    session = make_session(owner, guide=False)
    session.cost_cap_usd = Decimal("0.00")
    session.save()
    client.force_login(owner)
    error = client.post(f"/focus-groups/{session.pk}/messages/", {"content": "Hello?"}, **JSON).json()["error"]
    assert error["code"] == "session_cap_reached" and set(error["extra"]) == {"cap_usd", "spent_usd"}


# --- the API says which limit was hit ----------------------------------------------------------------------------


def test_api_generation_402_names_credits_with_numbers(owner_api):
    response = owner_api.post("/api/v1/personas/generate/", {"description": BRIEF, "count": 3}, format="json")
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_credits"
    assert response.json()["error"]["extra"] == {"required": 6, "balance": 0}


def test_api_modify_402(owner_api, owner):
    persona = PersonaFactory(owner=owner)
    response = owner_api.post(f"/api/v1/personas/{persona.pk}/modify/", {"instruction": "older"}, format="json")
    assert response.status_code == 402 and response.json()["error"]["code"] == "insufficient_credits"


def test_api_autonomous_402(owner_api, owner):
    session = make_session(owner)
    response = owner_api.post(f"/api/v1/focus-groups/{session.pk}/autonomous/", {"action": "start"}, format="json")
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_credits"
    assert response.json()["error"]["extra"]["required"] == 40


def test_api_message_over_budget_names_the_quota_with_numbers(owner_api, over_budget):
    session = make_session(over_budget, guide=False)
    response = owner_api.post(f"/api/v1/focus-groups/{session.pk}/messages/", {"content": "Hi?"}, format="json")
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["extra"] == {"limit_usd": "0.00", "spent_usd": error["extra"]["spent_usd"]}
