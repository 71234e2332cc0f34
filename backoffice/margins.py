"""Back-office margins: credit revenue against LLM cost, aggregated in SQL.

Each function runs a fixed number of grouped queries, whatever the number of
events; Python only merges and zero-fills the (few) grouped rows.

Revenue is what customers actually paid where the purchase records it: paid
Stripe checkouts in USD, net of refunds, dated by when they were paid. Credits
sold without such a record (another currency, a purchase recorded by hand) are
valued at ``settings.ANALYTICS_USD_PER_CREDIT`` (default 0.83: the Scale pack,
$499 for 600 credits, the lowest price a customer pays per credit, so margins
are never overstated). Credits spent on a focus group are valued at that rate
too: a spend cannot be traced to the purchase that funded it.

Credits sold = purchase rows in the ledger; credits spent = spend rows minus
their refunds. Trial credits and admin grants are not revenue.
"""

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, DateField, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, Trunc
from django.utils import timezone

from billing.models import CheckoutSession, CheckoutStatus, CreditTransaction, CreditTransactionKind
from cohorta.jobs.models import Job, JobState
from focusgroups.models import FocusGroup
from usage.analytics import (
    CENT,
    COST_AGGREGATES,
    GRANULARITIES,
    ZERO_INT,
    ZERO_USD,
    Period,
    events_in,
    usage_by,
    usd_rounded,
)

FOCUS_GROUP_REFERENCE = "focusgroup:"


def usd_per_credit() -> Decimal:
    return Decimal(str(settings.ANALYTICS_USD_PER_CREDIT))


def _ledger(period: Period) -> QuerySet[CreditTransaction]:
    return CreditTransaction.objects.filter(created_at__gte=period.start_at, created_at__lt=period.end_at).order_by()


# Spends are negative and their refunds positive: credits consumed = -(sum of both).
_SPENT = Q(kind__in=[CreditTransactionKind.SPEND, CreditTransactionKind.REFUND])


def _buckets(period: Period, granularity: str) -> list[date]:
    """The first day of every day/ISO week/month the period touches."""
    if granularity == "day":
        return [period.start + timedelta(days=n) for n in range(period.days)]
    if granularity == "week":
        first = period.start - timedelta(days=period.start.weekday())
        return [first + timedelta(weeks=n) for n in range((period.end - first).days // 7 + 1)]
    buckets, current = [], period.start.replace(day=1)
    while current <= period.end:
        buckets.append(current)
        current = (current + timedelta(days=32)).replace(day=1)
    return buckets


def _paid_checkouts(period: Period) -> QuerySet[CheckoutSession]:
    return CheckoutSession.objects.filter(
        status=CheckoutStatus.PAID, currency="usd", paid_at__gte=period.start_at, paid_at__lt=period.end_at
    ).order_by()


def _revenue(sold: int, paid: dict, rate: Decimal) -> Decimal:
    """Money paid where recorded, plus the credits sold without a payment record at ``rate``."""
    cents = paid.get("cents") or 0
    unrecorded = max(sold - (paid.get("credits") or 0), 0)
    return (Decimal(cents) / 100 + Decimal(unrecorded) * rate).quantize(CENT)


def margin_by_period(*, period: Period, granularity: str = "day", costs: dict | None = None) -> list[dict]:
    """Per day, week or month: credits sold and the revenue from them, credits spent, LLM cost
    (with its calls and tokens), and the margin (revenue minus LLM cost). Three grouped queries,
    two when the caller already has the LLM cost per bucket (``costs``: {first day of bucket:
    USD}; the rows then have no calls or tokens)."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}")
    ledger = (
        _ledger(period)
        .filter(Q(kind=CreditTransactionKind.PURCHASE) | _SPENT)
        .annotate(bucket=Trunc("created_at", granularity, output_field=DateField()))
        .values("bucket")
        .annotate(
            sold=Coalesce(Sum("delta", filter=Q(kind=CreditTransactionKind.PURCHASE)), ZERO_INT),
            spent=Coalesce(Sum("delta", filter=_SPENT), ZERO_INT),
        )
    )
    credits = {row["bucket"]: row for row in ledger}
    paid = {
        row["bucket"]: row
        for row in _paid_checkouts(period)
        .annotate(bucket=Trunc("paid_at", granularity, output_field=DateField()))
        .values("bucket")
        .annotate(cents=Sum(F("amount") - F("amount_refunded")), credits=Sum("credits"))
    }
    usage = None
    if costs is None:
        usage = {
            row["bucket"]: row
            for row in events_in(period)
            .annotate(bucket=Trunc("created_at", granularity, output_field=DateField()))
            .values("bucket")
            .annotate(**COST_AGGREGATES)
        }
        costs = {bucket: row["cost_usd"] for bucket, row in usage.items()}
    rate = usd_per_credit()
    rows = []
    for start in _buckets(period, granularity):
        sold = credits.get(start, {}).get("sold", 0)
        row = {"period": start, "credits_sold": sold, "credits_spent": -credits.get(start, {}).get("spent", 0)}
        if usage is not None:
            found = usage.get(start, {})
            row.update({key: found.get(key, 0) for key in ("calls", "input_tokens", "output_tokens")})
        rows.append(_margin_row(row, _revenue(sold, paid.get(start, {}), rate), costs.get(start)))
    return rows


def _margin_row(row: dict, revenue: Decimal, cost) -> dict:
    cost = usd_rounded(cost)
    margin = revenue - cost
    row.update(
        revenue_usd=revenue,
        llm_cost_usd=cost,
        margin_usd=margin.quantize(CENT),
        margin_pct=(margin * 100 / revenue).quantize(Decimal("0.1")) if revenue else None,
    )
    return row


def margin_by_focus_group(*, period: Period, limit: int | None = None) -> list[dict]:
    """Per focus group: credits charged for it (spends minus refunds, referenced
    ``focusgroup:<id>``), their value, its LLM cost and the margin, most expensive first."""
    costs_qs = (
        events_in(period)
        .filter(focus_group_id__isnull=False)
        .values("focus_group_id")
        .annotate(**COST_AGGREGATES)
        .order_by("-cost_usd", "-calls", "focus_group_id")
    )
    if limit is not None:
        costs_qs = costs_qs[:limit]
    costs = {row["focus_group_id"]: row for row in costs_qs}
    credits_qs = _ledger(period).filter(_SPENT, reference__startswith=FOCUS_GROUP_REFERENCE)
    if limit is not None:
        # Only the groups on this page; the full export also lists groups charged without a cost.
        credits_qs = credits_qs.filter(reference__in=[f"{FOCUS_GROUP_REFERENCE}{pk}" for pk in costs])
    credits: dict[int, int] = {}
    for reference, total in (
        credits_qs.values("reference").annotate(total=Sum("delta")).values_list("reference", "total")
    ):
        try:
            credits[int(reference.removeprefix(FOCUS_GROUP_REFERENCE))] = -total
        except ValueError:
            continue  # a malformed reference: not attributable to a group
    ids = list(costs) + sorted(set(credits) - set(costs))
    groups = {
        row["id"]: row
        for row in FocusGroup.objects.filter(pk__in=ids).values("id", "title", "owner_id", "owner__email")
    }
    rate = usd_per_credit()
    rows = []
    for pk in ids:
        group: Mapping[str, Any] = groups.get(pk, {})
        cost = costs.get(pk, {})
        row = {
            "focus_group_id": pk,
            "title": group.get("title", "(deleted)"),
            "owner_id": group.get("owner_id"),
            "owner_email": group.get("owner__email", ""),
            "calls": cost.get("calls", 0),
            "input_tokens": cost.get("input_tokens", 0),
            "output_tokens": cost.get("output_tokens", 0),
            "credits_spent": credits.get(pk, 0),
        }
        value = (Decimal(row["credits_spent"]) * rate).quantize(CENT)
        rows.append(_margin_row(row, value, cost.get("cost_usd")))
    return rows


def dashboard_summary(*, now: datetime | None = None) -> dict:
    """The back-office landing page: today, this month, accounts and jobs, in a fixed seven queries
    (two of them over this month's events)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    month = Period.this_month(today=today)
    day_start = Period(today, today).start_at
    usage = events_in(month).aggregate(
        month_cost=Coalesce(Sum("cost_usd"), ZERO_USD),
        today_cost=Coalesce(Sum("cost_usd", filter=Q(created_at__gte=day_start)), ZERO_USD),
        month_calls=Count("*"),
        unpriced=Count("pk", filter=Q(price_missing=True)),
    )
    (margin,) = margin_by_period(period=month, granularity="month", costs={month.start: usage["month_cost"]})
    accounts = get_user_model().objects.aggregate(
        total=Count("*"),
        active=Count("pk", filter=Q(is_active=True)),
        admins=Count("pk", filter=Q(is_staff=True)),
        new_this_month=Count("pk", filter=Q(date_joined__gte=month.start_at)),
    )
    since = now - timedelta(hours=24)
    jobs = Job.objects.filter(
        Q(state__in=[JobState.PENDING, JobState.QUEUED, JobState.RUNNING]) | Q(created_at__gte=since)
    ).aggregate(
        running=Count("pk", filter=Q(state=JobState.RUNNING)),
        waiting=Count("pk", filter=Q(state__in=[JobState.PENDING, JobState.QUEUED])),
        failed_24h=Count("pk", filter=Q(state=JobState.FAILED, created_at__gte=since)),
        interrupted_24h=Count("pk", filter=Q(state=JobState.INTERRUPTED, created_at__gte=since)),
    )
    spenders = usage_by(period=month, dimension="user", limit=5)
    return {
        "month": month,
        "today_cost_usd": usd_rounded(usage["today_cost"]),
        "month_calls": usage["month_calls"],
        "unpriced_calls": usage["unpriced"],
        "active_users": spenders.groups,
        "margin": margin,
        "usd_per_credit": usd_per_credit(),
        "accounts": accounts,
        "jobs": jobs,
        "top_spenders": spenders.rows,
    }
