from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from usage.models import UsageEvent
from usage.quotas import quota_status
from usage.services import month_start


def _month_events(user):
    return UsageEvent.objects.filter(user=user, created_at__gte=month_start())


def _grouped(qs, field: str) -> list[dict]:
    rows = (
        qs.values(field)
        .annotate(
            cost=Sum("cost_usd"),
            calls=Count("id"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
        )
        .order_by("-cost", field)
    )
    return [
        {
            "key": row[field],
            "cost_usd": row["cost"] or Decimal(0),
            "calls": row["calls"],
            "input_tokens": row["input_tokens"] or 0,
            "output_tokens": row["output_tokens"] or 0,
        }
        for row in rows
    ]


def usage_summary_for_user(*, user, days: int = 30) -> dict:
    """This month's spend against the quota, broken down by feature, model and day."""
    month = _month_events(user)
    since = timezone.localdate() - timedelta(days=days - 1)
    by_day_rows = (
        UsageEvent.objects.filter(user=user, created_at__date__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(cost=Sum("cost_usd"), calls=Count("id"))
    )
    per_day = {row["day"]: row for row in by_day_rows}
    by_day = []
    for offset in range(days):
        day = since + timedelta(days=offset)
        row = per_day.get(day)
        by_day.append(
            {"day": day, "cost_usd": (row and row["cost"]) or Decimal(0), "calls": row["calls"] if row else 0}
        )
    totals = month.aggregate(cost=Sum("cost_usd"), calls=Count("id"))
    return {
        "period_start": month_start(),
        "quota": quota_status(user=user),
        "month_cost_usd": totals["cost"] or Decimal(0),
        "month_calls": totals["calls"],
        "unpriced_calls": month.filter(price_missing=True).count(),
        "simulated_calls": month.filter(simulated=True).count(),
        "by_feature": _grouped(month, "feature"),
        "by_model": _grouped(month, "model"),
        "by_day": by_day,
    }


def usage_recent_events(*, user, limit: int = 20):
    return UsageEvent.objects.filter(user=user).order_by("-created_at", "-id")[:limit]
