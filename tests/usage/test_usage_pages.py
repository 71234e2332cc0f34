from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from cohorta.errors import QuotaExceeded
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


def _event(user, feature="persona_detail", **tokens):
    return usage_event_record(
        feature=feature,
        provider="openai",
        model="gpt-5.4",
        user=user,
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
    assert "persona_detail" in body and "summary" in body and "key_themes" not in body
    assert 'id="usage-chart-data"' in body and "vendor/chartjs/chart.umd.min.js" in body


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

    cache.delete(f"quota:banner:{owner.pk}")
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
    from cohorta.asgi import application
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
