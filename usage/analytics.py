"""LLM usage aggregated in SQL: cost, calls and tokens per period, day, model, feature or user.

Each function runs a fixed number of grouped queries, whatever the number of
events; Python only merges and zero-fills the (few) grouped rows. The money
side (credits sold and spent, revenue, margins) is the back office's
(``backoffice/margins.py``), which builds on these.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Count, DateField, DecimalField, F, Func, IntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Trunc
from django.utils import timezone

from usage.models import UsageEvent, UsageSource, UsageStatus
from usage.providers import provider_label

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")
MAX_DAYS = 400  # longest range a page or the API aggregates at once
DIMENSIONS = ("model", "provider", "feature", "user")
GRANULARITIES = ("day", "week", "month")
USD_FIELD: DecimalField = DecimalField(max_digits=20, decimal_places=8)
ZERO_USD = Value(Decimal(0), output_field=USD_FIELD)
ZERO_INT = Value(0, output_field=IntegerField())


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


def usd_rounded(value) -> Decimal:
    return (value or Decimal(0)).quantize(MICRO)


def events_in(period: Period) -> QuerySet[UsageEvent]:
    return UsageEvent.objects.filter(created_at__gte=period.start_at, created_at__lt=period.end_at).order_by()


# COUNT(*) rather than COUNT(id): the aggregates can then be answered from the
# covering index on (created_at) INCLUDE (...) without visiting the table.
COST_AGGREGATES = {
    "cost_usd": Coalesce(Sum("cost_usd"), ZERO_USD),
    "calls": Count("*"),
    "input_tokens": Coalesce(Sum("input_tokens"), ZERO_INT),
    "output_tokens": Coalesce(Sum("output_tokens"), ZERO_INT),
}


def usage_totals(*, period: Period) -> dict:
    """One scan of the period: cost, calls, tokens, and the calls whose cost is uncertain."""
    row = events_in(period).aggregate(
        **COST_AGGREGATES,
        unpriced=Count("pk", filter=Q(price_missing=True)),
        estimated=Count("pk", filter=Q(usage_source=UsageSource.ESTIMATED)),
        errors=Count("pk", filter=Q(status=UsageStatus.ERROR)),
    )
    row["cost_usd"] = usd_rounded(row["cost_usd"])
    return row


def usage_by_day(*, period: Period) -> list[dict]:
    """Cost, calls and tokens per local day, every day of the period present (zero when idle)."""
    grouped = (
        events_in(period)
        .annotate(day=Trunc("created_at", "day", output_field=DateField()))
        .values("day")
        .annotate(**COST_AGGREGATES)
    )
    by_day = {row["day"]: row for row in grouped}
    rows = []
    for offset in range(period.days):
        day = period.start + timedelta(days=offset)
        found = by_day.get(day, {})
        rows.append(
            {
                "day": day,
                "cost_usd": usd_rounded(found.get("cost_usd")),
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
    """Cost, calls and tokens grouped by model, provider, feature or user, most expensive first, in one query.

    A model is grouped with its provider: the same model name on two providers is two rows (each row has
    ``provider``). Users are grouped by id and only the returned rows' emails are fetched, so the join to
    users never runs over all the events.
    """
    if dimension not in DIMENSIONS:
        raise ValueError(f"dimension must be one of {DIMENSIONS}")
    field = "user_id" if dimension == "user" else dimension
    keys = [field, "provider"] if dimension == "model" else [field]
    grouped = (
        events_in(period)
        .values(*keys)
        .annotate(
            # Before COST_AGGREGATES: once annotated, "cost_usd" names the group's sum, not the column.
            total_cost_usd=_OverAllGroups(Sum("cost_usd"), function="SUM", output_field=USD_FIELD),
            # The number of groups with a key: events without a user are not "a user".
            groups=_OverAllGroups(F(field), function="COUNT", output_field=IntegerField()),
            **COST_AGGREGATES,
        )
        # Among groups that cost nothing (offline simulator), the busiest first.
        .order_by("-cost_usd", "-calls", *keys)
    )
    if limit is not None:
        grouped = grouped[:limit]
    found = list(grouped)
    rows = [
        {
            "key": row[field],
            "label": row[field] if dimension != "user" else None,
            "cost_usd": usd_rounded(row["cost_usd"]),
            "calls": row["calls"],
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
        }
        for row in found
    ]
    for row, found_row in zip(rows, found, strict=True):
        if "provider" in found_row:
            row["provider"], row["provider_label"] = found_row["provider"], provider_label(found_row["provider"])
    if dimension == "provider":
        for row in rows:
            row["label"] = provider_label(row["key"])
    if dimension == "user":
        ids = [row["key"] for row in rows if row["key"] is not None]
        emails = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "email")) if ids else {}
        for row in rows:
            row["label"] = emails.get(row["key"], "(deleted or system)")
    total = usd_rounded(found[0]["total_cost_usd"]) if found else Decimal(0)
    for row in rows:
        row["share"] = (row["cost_usd"] * 100 / total).quantize(Decimal("0.1")) if total else None
    return Grouped(rows=rows, total_cost_usd=total, groups=found[0]["groups"] if found else 0)
