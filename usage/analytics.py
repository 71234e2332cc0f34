"""Back-office analytics: LLM cost and credit revenue, aggregated in SQL.

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

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, DateField, DecimalField, F, Func, IntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Trunc
from django.utils import timezone

from billing.models import CheckoutSession, CheckoutStatus, CreditTransaction, CreditTransactionKind
from cohorta.jobs.models import Job, JobState
from focusgroups.models import FocusGroup
from usage.models import UsageEvent, UsageSource, UsageStatus

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")
MAX_DAYS = 400  # longest range a page or the API aggregates at once
DIMENSIONS = ("model", "feature", "user")
GRANULARITIES = ("day", "week", "month")
FOCUS_GROUP_REFERENCE = "focusgroup:"
_USD = DecimalField(max_digits=20, decimal_places=8)
_ZERO_USD = Value(Decimal(0), output_field=_USD)
_ZERO_INT = Value(0, output_field=IntegerField())


@dataclass(frozen=True)
class Period:
    """Whole local days, ``start`` to ``end`` inclusive."""

    start: date
    end: date

    def __post_init__(self):
        if self.end < self.start:
            raise ValueError("The period ends before it starts.")

    @property
    def start_at(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.start, time.min))

    @property
    def end_at(self) -> datetime:
        """Exclusive: midnight after the last day."""
        return timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @classmethod
    def last_days(cls, days: int, *, today: date | None = None) -> "Period":
        today = today or timezone.localdate()
        return cls(today - timedelta(days=days - 1), today)

    @classmethod
    def this_month(cls, *, today: date | None = None) -> "Period":
        today = today or timezone.localdate()
        return cls(today.replace(day=1), today)

    @classmethod
    def last_month(cls, *, today: date | None = None) -> "Period":
        first = (today or timezone.localdate()).replace(day=1)
        end = first - timedelta(days=1)
        return cls(end.replace(day=1), end)


def usd_per_credit() -> Decimal:
    return Decimal(str(settings.ANALYTICS_USD_PER_CREDIT))


def _usd(value) -> Decimal:
    return (value or Decimal(0)).quantize(MICRO)


def _events(period: Period) -> QuerySet[UsageEvent]:
    return UsageEvent.objects.filter(created_at__gte=period.start_at, created_at__lt=period.end_at).order_by()


def _ledger(period: Period) -> QuerySet[CreditTransaction]:
    return CreditTransaction.objects.filter(created_at__gte=period.start_at, created_at__lt=period.end_at).order_by()


# COUNT(*) rather than COUNT(id): the aggregates can then be answered from the
# covering index on (created_at) INCLUDE (...) without visiting the table.
_COST = {
    "cost_usd": Coalesce(Sum("cost_usd"), _ZERO_USD),
    "calls": Count("*"),
    "input_tokens": Coalesce(Sum("input_tokens"), _ZERO_INT),
    "output_tokens": Coalesce(Sum("output_tokens"), _ZERO_INT),
}
# Spends are negative and their refunds positive: credits consumed = -(sum of both).
_SPENT = Q(kind__in=[CreditTransactionKind.SPEND, CreditTransactionKind.REFUND])


def usage_totals(*, period: Period) -> dict:
    """One scan of the period: cost, calls, tokens, and the calls whose cost is uncertain."""
    row = _events(period).aggregate(
        **_COST,
        unpriced=Count("pk", filter=Q(price_missing=True)),
        estimated=Count("pk", filter=Q(usage_source=UsageSource.ESTIMATED)),
        errors=Count("pk", filter=Q(status=UsageStatus.ERROR)),
    )
    row["cost_usd"] = _usd(row["cost_usd"])
    return row


def usage_by_day(*, period: Period) -> list[dict]:
    """Cost, calls and tokens per local day, every day of the period present (zero when idle)."""
    grouped = (
        _events(period)
        .annotate(day=Trunc("created_at", "day", output_field=DateField()))
        .values("day")
        .annotate(**_COST)
    )
    by_day = {row["day"]: row for row in grouped}
    rows = []
    for offset in range(period.days):
        day = period.start + timedelta(days=offset)
        found = by_day.get(day, {})
        rows.append(
            {
                "day": day,
                "cost_usd": _usd(found.get("cost_usd")),
                "calls": found.get("calls", 0),
                "input_tokens": found.get("input_tokens", 0),
                "output_tokens": found.get("output_tokens", 0),
            }
        )
    return rows


class _OverAllGroups(Func):
    """``FUNC(<aggregate>) OVER ()``: an aggregate across every group of a GROUP BY, computed
    before LIMIT, so one query returns the top rows and the grand total."""

    template = "%(function)s(%(expressions)s) OVER ()"
    contains_over_clause = True

    def get_group_by_cols(self):
        return []  # a window over the groups, never a grouping key


@dataclass
class Grouped:
    rows: list[dict]
    total_cost_usd: Decimal  # over every group, also those cut by the limit
    groups: int  # how many models/features/users had calls (a missing user is not counted)


def usage_by(*, period: Period, dimension: str, limit: int | None = None) -> Grouped:
    """Cost, calls and tokens grouped by model, feature or user, most expensive first, in one query.

    Users are grouped by id and only the returned rows' emails are fetched, so
    the join to users never runs over all the events.
    """
    if dimension not in DIMENSIONS:
        raise ValueError(f"dimension must be one of {DIMENSIONS}")
    field = "user_id" if dimension == "user" else dimension
    grouped = (
        _events(period)
        .values(field)
        .annotate(
            # Before _COST: once annotated, "cost_usd" names the group's sum, not the column.
            total_cost_usd=_OverAllGroups(Sum("cost_usd"), function="SUM", output_field=_USD),
            # The number of groups with a key: events without a user are not "a user".
            groups=_OverAllGroups(F(field), function="COUNT", output_field=IntegerField()),
            **_COST,
        )
        # Among groups that cost nothing (offline simulator), the busiest first.
        .order_by("-cost_usd", "-calls", field)
    )
    if limit is not None:
        grouped = grouped[:limit]
    found = list(grouped)
    rows = [
        {
            "key": row[field],
            "label": row[field] if dimension != "user" else None,
            "cost_usd": _usd(row["cost_usd"]),
            "calls": row["calls"],
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
        }
        for row in found
    ]
    if dimension == "user":
        ids = [row["key"] for row in rows if row["key"] is not None]
        emails = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "email")) if ids else {}
        for row in rows:
            row["label"] = emails.get(row["key"], "(deleted or system)")
    total = _usd(found[0]["total_cost_usd"]) if found else Decimal(0)
    for row in rows:
        row["share"] = (row["cost_usd"] * 100 / total).quantize(Decimal("0.1")) if total else None
    return Grouped(rows=rows, total_cost_usd=total, groups=found[0]["groups"] if found else 0)


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
            sold=Coalesce(Sum("delta", filter=Q(kind=CreditTransactionKind.PURCHASE)), _ZERO_INT),
            spent=Coalesce(Sum("delta", filter=_SPENT), _ZERO_INT),
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
            for row in _events(period)
            .annotate(bucket=Trunc("created_at", granularity, output_field=DateField()))
            .values("bucket")
            .annotate(**_COST)
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
    cost = _usd(cost)
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
        _events(period)
        .filter(focus_group_id__isnull=False)
        .values("focus_group_id")
        .annotate(**_COST)
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
        group = groups.get(pk, {})
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
    usage = _events(month).aggregate(
        month_cost=Coalesce(Sum("cost_usd"), _ZERO_USD),
        today_cost=Coalesce(Sum("cost_usd", filter=Q(created_at__gte=day_start)), _ZERO_USD),
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
        "today_cost_usd": _usd(usage["today_cost"]),
        "month_calls": usage["month_calls"],
        "unpriced_calls": usage["unpriced"],
        "active_users": spenders.groups,
        "margin": margin,
        "usd_per_credit": usd_per_credit(),
        "accounts": accounts,
        "jobs": jobs,
        "top_spenders": spenders.rows,
    }
