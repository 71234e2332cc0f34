from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from cohorta.errors import QuotaExceeded
from focusgroups.models import FocusGroup
from usage.features import FEATURE_LABELS, feature_label
from usage.models import ModelPrice
from usage.services import TokenUsage, usage_event_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def priced(db):
    ModelPrice.objects.create(
        model="gpt-5.4",
        input_per_1m=Decimal("2.50"),
        output_per_1m=Decimal("15.00"),
        effective_from="2020-01-01T00:00:00Z",
    )


def _event(user, feature="persona_detail", focus_group_id=None, simulated=False, **tokens):
    return usage_event_record(
        feature=feature,
        provider="openai",
        model="gpt-5.4",
        user=user,
        focus_group_id=focus_group_id,
        simulated=simulated,
        tokens=TokenUsage(**(tokens or {"input_tokens": 1000, "output_tokens": 500})),
    )


def test_usage_page_empty_state(client, owner):
    client.force_login(owner)
    body = client.get("/usage/").content.decode()
    assert "No usage yet" in body and "$0.00" in body and "of $25.00" in body


def test_usage_page_shows_spend_breakdowns_and_chart(client, owner, other_user, priced):
    _event(owner)
    _event(owner, feature="summary")
    _event(other_user, feature="key_themes")
    client.force_login(owner)
    body = client.get("/usage/").content.decode()
    assert "Persona profile" in body and "Discussion summary" in body and "Key themes" not in body
    assert "persona_detail" not in body and "key_themes" not in body  # labels, never feature ids
    assert 'id="usage-chart-data"' in body and "vendor/chartjs/chart.umd.min.js" in body


def _chart(response) -> dict:
    chart = response.context["chart"]
    return {"default": chart["metric"], **{m["key"]: m for m in chart["metrics"]}}


def test_the_chart_switches_between_cost_tokens_and_calls(client, owner, priced):
    _event(owner, input_tokens=1_000_000, output_tokens=0)  # $2.50
    client.force_login(owner)
    response = client.get("/usage/")
    chart = _chart(response)
    assert chart["default"] == "cost" and chart["cost"]["datasets"][0]["data"][-1] == 2.5
    assert [s["data"][-1] for s in chart["tokens"]["datasets"]] == [1_000_000, 0]
    assert chart["calls"]["datasets"][0]["data"][-1] == 1 and len(chart["calls"]["labels"]) == 30
    body = response.content.decode()
    for name in ("Cost", "Tokens", "Calls"):
        assert f'data-metric="{name.lower()}"' in body and f">{name}</button>" in body


def test_an_offline_account_sees_tokens_not_an_empty_cost_grid(client, owner):
    """The offline simulator costs $0, but its calls and tokens are real work."""
    _event(owner, simulated=True, input_tokens=800, output_tokens=200)
    client.force_login(owner)
    chart = _chart(client.get("/usage/"))
    assert chart["default"] == "tokens"
    assert chart["cost"]["has_data"] is False and chart["cost"]["empty"].startswith("No cost in the last 30 days")
    assert chart["tokens"]["has_data"] and chart["calls"]["has_data"]


def test_spend_per_focus_group_lists_only_the_owners_sessions(client, owner, other_user, priced):
    mine = FocusGroup.objects.create(owner=owner, title="Oat milk launch", objective="x")
    theirs = FocusGroup.objects.create(owner=other_user, title="Competitor secret plans", objective="y")
    _event(owner, focus_group_id=mine.pk, input_tokens=400_000, output_tokens=0)  # $1.00
    _event(owner, focus_group_id=mine.pk, input_tokens=400_000, output_tokens=0)
    _event(other_user, focus_group_id=theirs.pk)
    _event(owner, focus_group_id=theirs.pk)  # an id that is not the owner's: never named
    _event(owner, feature="persona_basic")  # not in a session
    client.force_login(owner)
    response = client.get("/usage/")
    rows = response.context["summary"]["by_focus_group"]
    assert [(row["label"], row["calls"]) for row in rows] == [
        ("Oat milk launch", 2),
        ("Deleted sessions", 1),
        ("Outside sessions (personas, checks)", 1),
    ]
    assert rows[0]["cost_usd"] == Decimal("2.00") and rows[0]["input_tokens"] == 800_000
    body = response.content.decode()
    assert f'href="{reverse("focusgroups:detail", args=[mine.pk])}">Oat milk launch</a>' in body
    assert "Competitor secret plans" not in body
    assert reverse("focusgroups:detail", args=[theirs.pk]) not in body


def test_every_llm_feature_has_a_human_label(settings):
    assert set(settings.LLM_FEATURES) <= set(FEATURE_LABELS)
    assert all(label[0].isupper() and "_" not in label for label in FEATURE_LABELS.values())
    assert feature_label("retired_feature") == "Retired feature"


def test_usage_api_summary_is_scoped_to_the_user(owner_api, owner, other_user, priced):
    _event(owner, input_tokens=1_000_000, output_tokens=0)
    _event(other_user, input_tokens=5_000_000, output_tokens=0)
    body = owner_api.get("/api/v1/usage/").json()
    assert Decimal(body["month_cost_usd"]) == Decimal("2.50")
    assert body["month_calls"] == 1 and len(body["recent"]) == 1
    assert body["quota"]["limit_usd"] == "25.00" and body["quota"]["percent"] == 10
    assert len(body["by_day"]) == 30 and body["by_feature"][0]["key"] == "persona_detail"
    events = owner_api.get("/api/v1/usage/events/").json()
    assert events["count"] == 1


def test_usage_api_needs_auth(api_client):
    assert api_client.get("/api/v1/usage/").status_code == 401


def test_quota_banner_on_pages(client, owner, priced):
    owner.monthly_quota_usd = Decimal("1.00")
    owner.save()
    client.force_login(owner)
    assert "monthly AI budget" not in client.get("/").content.decode()
    _event(owner, input_tokens=400_000, output_tokens=0)  # $1.00
    from django.core.cache import cache

    from usage.quotas import banner_cache_key

    cache.delete(banner_cache_key(owner.pk))
    body = client.get("/").content.decode()
    assert "Your monthly AI budget is used up" in body


def test_quota_banner_at_80_percent(client, owner, priced):
    owner.monthly_quota_usd = Decimal("1.00")
    owner.save()
    _event(owner, input_tokens=320_000, output_tokens=0)  # $0.80
    client.force_login(owner)
    body = client.get("/personas/").content.decode()
    assert 'id="quota-banner"' in body and "used 80% of your monthly AI budget" in body


def test_a_zero_budget_shows_its_banner_before_anything_fails(client, owner):
    owner.monthly_quota_usd = Decimal("0.00")
    owner.save()
    client.force_login(owner)
    for page in ("/", "/personas/", "/usage/"):
        body = client.get(page).content.decode()
        assert 'id="quota-banner"' in body and "no monthly AI budget" in body, page


def test_a_budget_set_to_zero_shows_on_the_next_page(client, owner):
    client.force_login(owner)
    assert 'id="quota-banner"' not in client.get("/").content.decode()  # the default budget, untouched
    owner.monthly_quota_usd = Decimal("0.00")  # as an admin does on the user's page
    owner.save()
    assert "no monthly AI budget" in client.get("/").content.decode()


def test_a_refused_call_refreshes_the_cached_banner(client, owner, priced):
    from usage.quotas import quota_check

    owner.monthly_quota_usd = Decimal("1.00")
    owner.save()
    client.force_login(owner)
    assert 'id="quota-banner"' not in client.get("/").content.decode()  # cached: no banner, for a minute
    _event(owner, input_tokens=400_000, output_tokens=0)  # $1.00
    with pytest.raises(QuotaExceeded):
        quota_check(user=owner)
    assert "Your monthly AI budget is used up" in client.get("/").content.decode()


@pytest.mark.django_db(transaction=True)
async def test_quota_warning_reaches_the_socket(owner, owner_token, priced):
    from config.asgi import application
    from usage.quotas import quota_check

    communicator = WebsocketCommunicator(
        application, "/ws/jobs/", headers=[(b"authorization", f"Bearer {owner_token}".encode())]
    )
    await communicator.connect()
    await communicator.receive_json_from()  # snapshot
    owner.monthly_quota_usd = Decimal("1.00")
    await database_sync_to_async(owner.save)()
    await database_sync_to_async(_event)(owner, input_tokens=360_000, output_tokens=0)  # $0.90
    await database_sync_to_async(quota_check)(user=owner)
    message = await communicator.receive_json_from(timeout=2)
    assert message == {"type": "quota.warning", "percent": 90, "spent_usd": "0.90000000", "limit_usd": "1.00"}
    await communicator.disconnect()


def test_a_raised_budget_takes_the_banner_down_on_the_next_page(client, owner, priced):
    owner.monthly_quota_usd = Decimal("1.00")
    owner.save()
    _event(owner, input_tokens=320_000, output_tokens=0)  # $0.80: the banner is cached for a minute
    client.force_login(owner)
    assert "used 80% of your monthly AI budget" in client.get("/personas/").content.decode()
    owner.monthly_quota_usd = Decimal("10.00")  # as an admin does on the user's page
    owner.save()
    assert 'id="quota-banner"' not in client.get("/personas/").content.decode()
