"""Usage, prices and analytics name the provider: a session runs with main on one provider and mini on another
(two fake servers), the researcher's usage page and the back office show both, a model comparison crosses
providers, and a provider's own price for a model comes before the model's general one."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from focusgroups.autonomous import runs as autonomous
from focusgroups.report import comparison
from tests.focusgroups.conftest import funded, turns  # noqa: F401  (fixtures)
from tests.focusgroups.test_autonomous import make_session
from usage import analytics
from usage.models import ModelPrice, UsageEvent
from usage.pricing import invalidate_pricing_cache
from usage.services import TokenUsage, usage_backfill, usage_event_record


@pytest.mark.django_db(transaction=True)
def test_a_session_runs_main_and_mini_on_two_providers_and_the_usage_page_shows_both(
    openai_and_gemini,
    funded,  # noqa: F811
    turns,  # noqa: F811
    client,
    other_user,
):
    openai_fake, gemini_fake = openai_and_gemini
    session = make_session(funded)
    autonomous.run_start(focus_group=session)
    turns()
    session.refresh_from_db()
    assert session.status == "ended"
    events = UsageEvent.objects.filter(focus_group_id=session.pk, status="ok")
    by_alias = {(e.model_alias, e.provider, e.model) for e in events}
    # Persona answers on main (OpenAI), the moderator's decisions on mini (Gemini): both servers were asked.
    assert ("main", "openai", "gpt-5.4") in by_alias and ("mini", "gemini", "gemini-2.5-flash") in by_alias
    assert {r.body["model"] for r in openai_fake.requests} == {"gpt-5.4"}
    assert {r.body["model"] for r in gemini_fake.requests} == {"gemini-2.5-flash"}
    assert set(events.filter(provider="openai").values_list("model_snapshot", flat=True)) == {"gpt-5.4-2026-03-05"}

    client.force_login(funded)
    page = client.get(reverse("usage:index")).content.decode()
    assert "By AI provider, this month" in page
    assert "gpt-5.4" in page and "on OpenAI" in page
    assert "gemini-2.5-flash" in page and "on Google Gemini" in page
    api = APIClient()
    api.force_authenticate(funded)
    summary = api.get("/api/v1/usage/").json()
    assert {(row["key"], row["provider"]) for row in summary["by_model"]} >= {
        ("gpt-5.4", "openai"),
        ("gemini-2.5-flash", "gemini"),
    }
    # Another researcher's usage page shows none of it.
    client.force_login(other_user)
    assert "Google Gemini" not in client.get(reverse("usage:index")).content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_comparison_reruns_the_guide_on_the_alias_of_another_provider(
    openai_and_gemini,
    funded,  # noqa: F811
    turns,  # noqa: F811
    client,
):
    _, gemini_fake = openai_and_gemini
    original = make_session(funded)
    autonomous.run_start(focus_group=original)
    turns()
    original.refresh_from_db()
    asked_before = len(gemini_fake.requests)
    copy = comparison.comparison_start(focus_group=original, alias="mini")
    turns()
    copy.refresh_from_db()
    assert copy.status == "ended"
    answers = UsageEvent.objects.filter(focus_group_id=copy.pk, feature="persona_response", status="ok")
    assert answers.exists() and set(answers.values_list("provider", "model")) == {("gemini", "gemini-2.5-flash")}
    assert len(gemini_fake.requests) > asked_before
    original_answers = UsageEvent.objects.filter(focus_group_id=original.pk, feature="persona_response")
    assert set(original_answers.values_list("provider", flat=True)) == {"openai"}
    client.force_login(funded)
    page = client.get(f"/focus-groups/{copy.pk}/compare/").content.decode()
    assert "gemini-2.5-flash on Google Gemini" in page and "gpt-5.4 on OpenAI" in page


def _event(provider: str, model: str, **fields):
    return usage_event_record(
        feature="persona_response",
        provider=provider,
        model=model,
        tokens=TokenUsage(input_tokens=1_000_000, output_tokens=0),
        **fields,
    )


@pytest.mark.django_db
def test_a_providers_own_price_comes_before_the_models_price():
    start = timezone.now() - timedelta(days=1)
    ModelPrice.objects.create(model="gpt-x", effective_from=start, input_per_1m=Decimal(1), output_per_1m=Decimal(0))
    ModelPrice.objects.create(
        model="gpt-x", provider="azure", effective_from=start, input_per_1m=Decimal(2), output_per_1m=Decimal(0)
    )
    assert _event("azure", "gpt-x").cost_usd == Decimal(2)
    assert _event("openai", "gpt-x").cost_usd == Decimal(1)  # no price of its own: the model's
    # A model known only by another name (a deployment) is priced as the model the provider ran.
    deployment = _event("azure", "my-deployment", model_snapshot="gpt-x")
    assert deployment.cost_usd == Decimal(2) and not deployment.price_missing
    unknown = _event("azure", "my-other-deployment")
    assert unknown.cost_usd is None and unknown.price_missing


@pytest.mark.django_db
def test_backfill_prices_with_the_events_provider():
    unpriced = _event("gemini", "gemini-x")
    elsewhere = _event("openai", "gemini-x")
    assert unpriced.price_missing and elsewhere.price_missing
    ModelPrice.objects.create(
        model="gemini-x",
        provider="gemini",
        effective_from=timezone.now() - timedelta(days=1),
        input_per_1m=Decimal("0.5"),
        output_per_1m=Decimal(0),
    )
    invalidate_pricing_cache()  # as the admin does on save
    result = usage_backfill()
    assert (result.priced, result.still_missing) == (1, 1)
    unpriced.refresh_from_db()
    elsewhere.refresh_from_db()
    assert unpriced.cost_usd == Decimal("0.5") and elsewhere.cost_usd is None


@pytest.mark.django_db
def test_back_office_analytics_show_the_provider_beside_the_model(client, staff_user, owner):
    for provider, cost in (("openai", "3"), ("azure", "2"), ("gemini", "1")):
        UsageEvent.objects.create(
            user=owner, feature="persona_response", provider=provider, model="gpt-5.4", cost_usd=Decimal(cost)
        )
    UsageEvent.objects.filter(provider="gemini").update(model="gemini-2.5-flash")
    week = analytics.Period.last_days(7)
    rows = analytics.usage_by(period=week, dimension="model").rows
    assert [(r["key"], r["provider"]) for r in rows] == [
        ("gpt-5.4", "openai"),
        ("gpt-5.4", "azure"),
        ("gemini-2.5-flash", "gemini"),
    ]
    by_provider = analytics.usage_by(period=week, dimension="provider").rows
    assert [(r["key"], r["label"]) for r in by_provider] == [
        ("openai", "OpenAI"),
        ("azure", "Azure OpenAI"),
        ("gemini", "Google Gemini"),
    ]
    client.force_login(staff_user)
    models_page = client.get(reverse("admin:analytics_models")).content.decode()
    assert "Provider" in models_page and "Azure OpenAI" in models_page and "Google Gemini" in models_page
    providers_page = client.get(reverse("admin:analytics_providers")).content.decode()
    assert "Cost by provider" in providers_page and "Google Gemini" in providers_page
    csv = client.get(reverse("admin:analytics_models") + "?export=csv").content.decode()
    assert "Provider id" in csv.splitlines()[0] and ",azure" in csv
    api = APIClient()
    api.force_authenticate(staff_user)
    body = api.get("/api/v1/staff/usage/summary/", {"group_by": "model"}).json()
    assert [(row["key"], row.get("provider")) for row in body["rows"]][:2] == [
        ("gpt-5.4", "openai"),
        ("gpt-5.4", "azure"),
    ]
    assert api.get("/api/v1/staff/usage/summary/", {"group_by": "provider"}).json()["rows"][0]["label"] == "OpenAI"
    # A researcher is not staff: the back office and the staff API stay closed.
    client.force_login(owner)
    assert client.get(reverse("admin:analytics_providers")).status_code == 302
