from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, DecimalField, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from cohorta.core.models import AppSettings
from usage.features import feature_label
from usage.labels import session_titles
from usage.models import ModelAlias, ModelPrice, UsageEvent
from usage.providers import provider_label
from usage.quotas import quota_status
from usage.services import month_start

_USD: DecimalField = DecimalField(max_digits=20, decimal_places=8)
_QUOTA: DecimalField = DecimalField(max_digits=10, decimal_places=2)


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
        # Free calls (the offline simulator) all cost $0: the busiest come first among them.
        .order_by(F("cost").desc(nulls_last=True), "-calls", field)
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


def _by_model(qs) -> list[dict]:
    """Grouped by provider and model: one model name on two providers is two rows, each naming its provider."""
    rows = (
        qs.values("provider", "model")
        .annotate(
            cost=Sum("cost_usd"),
            calls=Count("id"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
        )
        .order_by(F("cost").desc(nulls_last=True), "-calls", "model", "provider")
    )
    return [
        {
            "key": row["model"],
            "provider": row["provider"],
            "provider_label": provider_label(row["provider"]),
            "cost_usd": row["cost"] or Decimal(0),
            "calls": row["calls"],
            "input_tokens": row["input_tokens"] or 0,
            "output_tokens": row["output_tokens"] or 0,
        }
        for row in rows
    ]


def _by_feature(qs) -> list[dict]:
    rows = _grouped(qs, "feature")
    for row in rows:
        row["label"] = feature_label(row["key"])
    return rows


def _by_provider(qs) -> list[dict]:
    rows = _grouped(qs, "provider")
    for row in rows:
        row["label"] = provider_label(row["key"])
    return rows


def _by_focus_group(qs, *, user) -> list[dict]:
    """The user's calls grouped by focus group. Titles and links come only from the user's own
    focus groups: anything else (a session since deleted) is one "Deleted sessions" row, and
    calls made outside any session (persona generation, checks) are their own row, last."""
    grouped = _grouped(qs, "focus_group_id")
    ids = [row["key"] for row in grouped if row["key"] is not None]
    titles = session_titles(user=user, ids=ids)
    sessions, deleted, outside = [], None, None
    for row in grouped:
        if row["key"] is None:
            outside = {**row, "label": "Outside sessions (personas, checks)", "focus_group_id": None}
        elif row["key"] in titles:
            sessions.append({**row, "label": titles[row["key"]], "focus_group_id": row["key"]})
        elif deleted is None:
            deleted = {**row, "label": "Deleted sessions", "focus_group_id": None}
        else:
            for key in ("cost_usd", "calls", "input_tokens", "output_tokens"):
                deleted[key] += row[key]
    return sessions + [row for row in (deleted, outside) if row is not None]


def usage_summary_for_user(*, user, days: int = 30) -> dict:
    """This month's spend against the quota, broken down by feature, model and focus group, and
    the last ``days`` days' cost, tokens and calls per day."""
    month = _month_events(user)
    since = timezone.localdate() - timedelta(days=days - 1)
    by_day_rows = (
        UsageEvent.objects.filter(user=user, created_at__date__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            cost=Sum("cost_usd"),
            calls=Count("id"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
        )
    )
    per_day = {row["day"]: row for row in by_day_rows}
    by_day = []
    for offset in range(days):
        day = since + timedelta(days=offset)
        row = per_day.get(day) or {}
        by_day.append(
            {
                "day": day,
                "cost_usd": row.get("cost") or Decimal(0),
                "calls": row.get("calls", 0),
                "input_tokens": row.get("input_tokens") or 0,
                "output_tokens": row.get("output_tokens") or 0,
            }
        )
    # One pass over the month's rows for the totals and the two flagged counts.
    totals = month.aggregate(
        cost=Sum("cost_usd"),
        calls=Count("id"),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        unpriced=Count("id", filter=Q(price_missing=True)),
        simulated=Count("id", filter=Q(simulated=True)),
    )
    return {
        "period_start": month_start(),
        "quota": quota_status(user=user),
        "month_cost_usd": totals["cost"] or Decimal(0),
        "month_calls": totals["calls"],
        "month_tokens": (totals["input_tokens"] or 0) + (totals["output_tokens"] or 0),
        "unpriced_calls": totals["unpriced"],
        "simulated_calls": totals["simulated"],
        "by_feature": _by_feature(month),
        "by_model": _by_model(month),
        "by_provider": _by_provider(month),
        "by_focus_group": _by_focus_group(month, user=user),
        "by_day": by_day,
    }


def usage_recent_events(*, user, limit: int = 20):
    return UsageEvent.objects.filter(user=user).order_by("-created_at", "-id")[:limit]


def month_spend_subquery(*, user_ref: str = "pk"):
    """This month's LLM cost (USD) of the user at ``OuterRef(user_ref)``: a correlated SUM that
    reads only that user's rows of the month through ``usage_user_created_idx``."""
    month = (
        UsageEvent.objects.filter(user=OuterRef(user_ref), created_at__gte=month_start())
        .order_by()
        .values("user")
        .annotate(total=Sum("cost_usd"))
        .values("total")
    )
    return Coalesce(Subquery(month, output_field=_USD), Value(Decimal(0), output_field=_USD))


def effective_quota_expression():
    """The user's own monthly quota, else the default from app settings, in SQL (no extra query)."""
    default = AppSettings.objects.filter(pk=1).values("default_monthly_quota_usd")
    fallback = AppSettings._meta.get_field("default_monthly_quota_usd").default
    return Coalesce("monthly_quota_usd", Subquery(default, output_field=_QUOTA), Value(fallback, output_field=_QUOTA))


def _priced_events_of(model: str, provider: str = ""):
    """Events whose stored cost may have come from ``model``'s price rows: the model itself or one of its
    aliases, on ``provider`` for a provider's own row (a row for every provider: on any)."""
    names = [model, *ModelAlias.objects.filter(model=model).values_list("alias", flat=True)]
    events = UsageEvent.objects.filter(model__in=names, simulated=False, cost_usd__isnull=False).order_by()
    return events.filter(provider=provider) if provider else events


def price_row_is_used(row: ModelPrice) -> bool:
    """Whether recorded events were priced with this row (made while it was in force).

    Such a row is history: editing it would make the price table disagree with
    the costs stored on those events, and a backfill would re-price them."""
    if row.pk is None:
        return False
    later = (
        ModelPrice.objects.filter(model=row.model, provider=row.provider, effective_from__gt=row.effective_from)
        .order_by("effective_from")
        .values_list("effective_from", flat=True)
        .first()
    )
    events = _priced_events_of(row.model, row.provider).filter(created_at__gte=row.effective_from)
    if later is not None:
        events = events.filter(created_at__lt=later)
    return events.exists()


def last_priced_event_at(model: str, provider: str = ""):
    """When the latest priced event of ``model`` (or an alias; on ``provider`` if given) was made; None if none."""
    return _priced_events_of(model, provider).order_by("-created_at").values_list("created_at", flat=True).first()


def focus_group_cost_subquery(*, ref: str = "pk"):
    """The LLM cost (USD) of the focus group at ``OuterRef(ref)``, all time."""
    total = (
        UsageEvent.objects.filter(focus_group_id=OuterRef(ref))
        .order_by()
        .values("focus_group_id")
        .annotate(total=Sum("cost_usd"))
        .values("total")
    )
    return Coalesce(Subquery(total, output_field=_USD), Value(Decimal(0), output_field=_USD))


def usage_events_for_user(*, user) -> QuerySet[UsageEvent]:
    """Every LLM call made for the user, newest first."""
    return UsageEvent.objects.filter(user=user).order_by("-created_at", "-id")
