import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backoffice import margins
from backoffice.views import PAGES
from billing.models import CheckoutSession, CheckoutStatus, CreditTransactionKind
from billing.services import credits_grant, credits_refund, credits_spend
from focusgroups.models import FocusGroup
from tests.backoffice.conftest import make_event
from usage import analytics
from usage.analytics import Period

pytestmark = pytest.mark.django_db


def _at(day: date, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def week(today):
    return Period(today - timedelta(days=6), today)


# --- aggregation -------------------------------------------------------------------------------------


def test_cost_per_day_is_zero_filled_and_bounded_by_the_period(week, today, owner):
    make_event(user=owner, cost="1.50", at=_at(today))
    make_event(user=owner, cost="0.50", at=_at(today, 1))
    make_event(user=owner, cost="2.00", at=_at(today - timedelta(days=2)))
    make_event(user=owner, cost="9.00", at=_at(today - timedelta(days=7)))  # before the period
    rows = analytics.usage_by_day(period=week)
    assert [row["day"] for row in rows] == [week.start + timedelta(days=n) for n in range(7)]
    by_day = {row["day"]: (row["cost_usd"], row["calls"]) for row in rows}
    assert by_day[today] == (Decimal("2.00"), 2)
    assert by_day[today - timedelta(days=2)] == (Decimal("2.00"), 1)
    assert by_day[today - timedelta(days=1)] == (Decimal(0), 0)


def test_days_are_local_days(settings, owner):
    settings.TIME_ZONE = "America/New_York"
    timezone.activate("America/New_York")
    try:
        day = date(2026, 3, 10)
        # 02:00 UTC on the 11th is still the 10th in New York.
        make_event(user=owner, cost="1", at=datetime(2026, 3, 11, 2, tzinfo=UTC))
        rows = analytics.usage_by_day(period=Period(day, day + timedelta(days=1)))
        assert [row["calls"] for row in rows] == [1, 0]
    finally:
        timezone.deactivate()


def test_grouped_by_model_feature_and_user(week, owner, other_user):
    make_event(user=owner, cost="3", model="gpt-a", feature="moderator")
    make_event(user=owner, cost="1", model="gpt-b", feature="moderator")
    make_event(user=other_user, cost="2", model="gpt-b", feature="report")
    make_event(user=None, cost="0.5", model="gpt-b", feature="healthcheck")
    models = analytics.usage_by(period=week, dimension="model")
    assert [(r["key"], r["cost_usd"], r["calls"], r["share"]) for r in models.rows] == [
        ("gpt-b", Decimal("3.5"), 3, Decimal("53.8")),
        ("gpt-a", Decimal(3), 1, Decimal("46.2")),
    ]
    assert (models.total_cost_usd, models.groups) == (Decimal("6.5"), 2)
    features = analytics.usage_by(period=week, dimension="feature")
    assert [r["key"] for r in features.rows] == ["moderator", "report", "healthcheck"]
    users = analytics.usage_by(period=week, dimension="user", limit=1)
    assert [(r["label"], r["cost_usd"]) for r in users.rows] == [("owner@example.com", Decimal(4))]
    # The totals cover the groups the limit cut; events without a user are not a user.
    assert (users.total_cost_usd, users.groups) == (Decimal("6.5"), 2)
    system = analytics.usage_by(period=week, dimension="user").rows[-1]
    assert (system["key"], system["label"]) == (None, "(deleted or system)")


def test_totals_count_uncertain_costs(week, owner):
    from usage.models import UsageSource, UsageStatus

    make_event(user=owner, cost=None, price_missing=True)
    make_event(user=owner, cost="1", usage_source=UsageSource.ESTIMATED, status=UsageStatus.ERROR)
    totals = analytics.usage_totals(period=week)
    assert (totals["calls"], totals["unpriced"], totals["estimated"], totals["errors"]) == (2, 1, 1, 1)
    assert totals["cost_usd"] == Decimal(1)


def _paid_checkout(user, *, credits: int, cents: int, refunded: int = 0, currency: str = "usd"):
    return CheckoutSession.objects.create(
        stripe_id=f"cs_{user.pk}_{credits}_{cents}",
        user=user,
        credits=credits,
        amount=cents,
        amount_refunded=refunded,
        currency=currency,
        status=CheckoutStatus.PAID,
        paid_at=timezone.now(),
    )


def test_margin_uses_the_money_paid_and_the_rate_for_the_rest(settings, today, owner, other_user):
    settings.ANALYTICS_USD_PER_CREDIT = Decimal("0.50")
    period = Period(today, today)
    # Paid through Stripe: 220 credits for $199, $20 of it refunded.
    credits_grant(user=owner, amount=220, kind=CreditTransactionKind.PURCHASE, idempotency_key="p:1")
    _paid_checkout(owner, credits=220, cents=19900, refunded=2000)
    # A purchase with no payment record: 100 credits at the documented rate.
    credits_grant(user=other_user, amount=100, kind=CreditTransactionKind.PURCHASE, idempotency_key="p:2")
    credits_grant(user=other_user, amount=999, idempotency_key="gift")  # a grant is not revenue
    spend = credits_spend(user=owner, amount=40, idempotency_key="s:1")
    credits_refund(spend=spend, amount=10, idempotency_key="r:1")
    make_event(user=owner, cost="12.34")
    (row,) = margins.margin_by_period(period=period, granularity="day")
    assert (row["credits_sold"], row["credits_spent"]) == (320, 30)
    assert row["revenue_usd"] == Decimal("179.00") + Decimal("50.00")
    assert row["llm_cost_usd"] == Decimal("12.34")
    assert row["margin_usd"] == Decimal("216.66")
    assert row["margin_pct"] == Decimal("94.6")


def test_margin_buckets_by_week_and_month(today, owner):
    period = Period(today - timedelta(days=40), today)
    make_event(user=owner, cost="1", at=_at(period.start))
    weeks = margins.margin_by_period(period=period, granularity="week")
    months = margins.margin_by_period(period=period, granularity="month")
    assert all(row["period"].weekday() == 0 for row in weeks) and len(weeks) in (6, 7)
    assert all(row["period"].day == 1 for row in months) and len(months) in (2, 3)
    assert sum(row["llm_cost_usd"] for row in weeks) == sum(row["llm_cost_usd"] for row in months) == Decimal(1)
    assert weeks[0]["margin_pct"] is None  # no revenue: no percentage


def test_margin_per_focus_group(settings, week, owner):
    settings.ANALYTICS_USD_PER_CREDIT = Decimal("1.00")
    cheap = FocusGroup.objects.create(owner=owner, title="Cheap", objective="x")
    dear = FocusGroup.objects.create(owner=owner, title="Dear", objective="y")
    credits_grant(user=owner, amount=100, idempotency_key="g")
    spend = credits_spend(user=owner, amount=40, idempotency_key="run:1", reference=f"focusgroup:{dear.pk}")
    credits_refund(spend=spend, amount=5, idempotency_key="run:1:r")
    credits_spend(user=owner, amount=40, idempotency_key="run:2", reference=f"focusgroup:{cheap.pk}")
    make_event(user=owner, cost="30", focus_group_id=dear.pk)
    make_event(user=owner, cost="1", focus_group_id=cheap.pk)
    rows = margins.margin_by_focus_group(period=week)
    assert [(r["title"], r["credits_spent"], r["llm_cost_usd"], r["margin_usd"]) for r in rows] == [
        ("Dear", 35, Decimal(30), Decimal("5.00")),
        ("Cheap", 40, Decimal(1), Decimal("39.00")),
    ]
    assert margins.margin_by_focus_group(period=week, limit=1)[0]["title"] == "Dear"


def test_dashboard_summary(owner, other_user):
    from cohorta.jobs.models import JobState
    from tests.factories import JobFactory

    make_event(user=owner, cost="2")
    make_event(user=other_user, cost="1", at=timezone.now() - timedelta(days=40))
    JobFactory(owner=owner, state=JobState.RUNNING)
    JobFactory(owner=owner, state=JobState.FAILED)
    summary = margins.dashboard_summary()
    assert summary["today_cost_usd"] == Decimal(2) and summary["active_users"] == 1
    assert summary["jobs"]["running"] == 1 and summary["jobs"]["failed_24h"] == 1
    assert summary["top_spenders"][0]["label"] == "owner@example.com"


# --- pages -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.url_name)
def test_every_page_renders_and_exports_csv(staff_client, owner, page):
    fg = FocusGroup.objects.create(owner=owner, title="Launch test", objective="x")
    make_event(user=owner, cost="1.25", model="gpt-a", feature="moderator", focus_group_id=fg.pk)
    url = reverse(f"admin:{page.url_name}")
    response = staff_client.get(url + "?preset=7d")
    assert response.status_code == 200
    assert response.context["period"].days == 7
    body = response.content.decode()
    assert "Download CSV" in body and "vendor/chartjs/chart.umd.min.js" in body
    export = staff_client.get(url + "?preset=7d&export=csv")
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert rows[0] == [column.label for column in response.context["table"].columns]
    assert len(rows) > 1


def test_top_spenders_link_to_the_users(staff_client, owner):
    make_event(user=owner, cost="1")
    body = staff_client.get(reverse("admin:analytics_users")).content.decode()
    assert reverse("admin:accounts_user_change", args=[owner.pk]) in body


def test_date_range_from_to(staff_client, today, owner):
    make_event(user=owner, cost="1", at=_at(today - timedelta(days=3)))
    start = (today - timedelta(days=3)).isoformat()
    response = staff_client.get(reverse("admin:analytics") + f"?from={start}&to={start}")
    assert response.context["table"].rows[0]["calls"] == 1 and response.context["period"].days == 1


@pytest.mark.parametrize("query", ["from=2026-05-10&to=2026-05-01", "from=2020-01-01&to=2026-01-01", "from=notadate"])
def test_bad_date_ranges_show_an_error_and_fall_back_to_30_days(staff_client, query):
    response = staff_client.get(reverse("admin:analytics") + "?" + query)
    assert response.status_code == 200
    assert response.context["form"].errors and response.context["period"].days == 30
    assert "Showing the last 30 days instead" in response.content.decode()


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.url_name)
def test_pages_cost_a_fixed_number_of_queries(staff_client, make_users, page):
    url = reverse(f"admin:{page.url_name}")

    def add_data(users: int) -> None:
        for user in make_users(users):
            fg = FocusGroup.objects.create(owner=user, title="t", objective="o")
            make_event(user=user, cost="1", focus_group_id=fg.pk, model=f"m-{user.pk}")
            credits_grant(user=user, amount=5, kind=CreditTransactionKind.PURCHASE, idempotency_key=f"p{user.pk}")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert staff_client.get(url).status_code == 200
        return len(queries)

    add_data(2)
    staff_client.get(url)  # warm the session and caches
    few = count()
    add_data(20)
    assert count() == few <= 10


# --- charts: cost, tokens and calls ----------------------------------------------------------------------


def _chart(response) -> dict:
    chart = response.context["chart"]
    return {"default": chart["metric"], **{m["key"]: m for m in chart["metrics"]}}


@pytest.mark.parametrize("page", [p for p in PAGES if p.url_name != "analytics_margin"], ids=lambda p: p.url_name)
def test_every_chart_switches_between_cost_tokens_and_calls(staff_client, owner, page):
    fg = FocusGroup.objects.create(owner=owner, title="Launch test", objective="x")
    make_event(user=owner, cost="0.25", focus_group_id=fg.pk, input_tokens=900, output_tokens=100)
    response = staff_client.get(reverse(f"admin:{page.url_name}"))
    chart = _chart(response)
    assert chart["default"] == "cost"
    assert [sum(s["data"]) for s in chart["tokens"]["datasets"]] == [900, 100]
    assert sum(chart["calls"]["datasets"][0]["data"]) == 1 and sum(chart["cost"]["datasets"][0]["data"]) == 0.25
    body = response.content.decode()
    assert 'aria-label="Chart shows"' in body
    for name in ("Cost", "Tokens", "Calls"):
        assert f'">{name}</button>' in body


def test_the_margin_chart_has_money_tokens_and_calls(staff_client, owner):
    make_event(user=owner, cost="0.25", input_tokens=900, output_tokens=100)
    chart = _chart(staff_client.get(reverse("admin:analytics_margin")))
    assert [s["label"] for s in chart["cost"]["datasets"]] == ["Revenue (USD)", "LLM cost (USD)", "Margin (USD)"]
    assert [sum(s["data"]) for s in chart["tokens"]["datasets"]] == [900, 100]
    assert sum(chart["calls"]["datasets"][0]["data"]) == 1


@pytest.mark.parametrize("page", ["analytics", "analytics_features", "analytics_users", "analytics_focus_groups"])
def test_a_free_period_opens_on_tokens_and_says_cost_is_zero(staff_client, owner, page):
    """The offline simulator costs $0: cost alone would be an empty grid."""
    fg = FocusGroup.objects.create(owner=owner, title="Offline run", objective="x")
    make_event(user=owner, cost="0", simulated=True, focus_group_id=fg.pk, input_tokens=500, output_tokens=50)
    chart = _chart(staff_client.get(reverse(f"admin:{page}")))
    assert chart["default"] == "tokens"
    assert chart["cost"]["has_data"] is False and "offline simulator are free" in chart["cost"]["empty"]
    assert chart["tokens"]["has_data"] and chart["calls"]["has_data"]


def test_a_ranked_chart_ranks_each_metric_on_its_own(staff_client, owner):
    make_event(user=owner, cost="2.00", feature="report", input_tokens=10, output_tokens=10)
    for _ in range(3):
        make_event(user=owner, cost="0.01", feature="persona_response", input_tokens=5000, output_tokens=500)
    chart = _chart(staff_client.get(reverse("admin:analytics_features")))
    assert chart["cost"]["labels"] == ["Report", "Persona answer"]
    assert chart["tokens"]["labels"] == ["Persona answer", "Report"]
    assert chart["calls"]["labels"] == ["Persona answer", "Report"]


def test_margin_rows_carry_calls_and_tokens(week, today, owner):
    make_event(user=owner, cost="1", at=_at(today), input_tokens=700, output_tokens=30)
    rows = {row["period"]: row for row in margins.margin_by_period(period=week)}
    assert (rows[today]["calls"], rows[today]["input_tokens"], rows[today]["output_tokens"]) == (1, 700, 30)
    assert rows[today - timedelta(days=1)]["calls"] == 0


# --- human labels ------------------------------------------------------------------------------------------


def test_the_feature_page_and_its_csv_show_labels_not_feature_ids(staff_client, owner):
    make_event(user=owner, cost="1", feature="conversation_decision")
    url = reverse("admin:analytics_features")
    body = staff_client.get(url).content.decode()
    assert "AI moderator decision" in body and "conversation_decision" not in body
    rows = list(csv.reader(io.StringIO(staff_client.get(url + "?export=csv").content.decode())))
    assert rows[0][0] == "Feature" and rows[0][-1] == "Feature id"
    assert rows[1][0] == "AI moderator decision" and rows[1][-1] == "conversation_decision"
