"""Writes for usage: recording events, seeding prices, backfilling costs."""

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from usage.models import ModelAlias, ModelPrice, UsageEvent, UsageSource, UsageStatus
from usage.pricing import cost_for, invalidate_pricing_cache, price_for, warn_price_missing

logger = logging.getLogger(__name__)

PRICE_FILE = Path(__file__).resolve().parent / "pricing" / "model_prices.json"
_PRICE_FIELDS = (
    "input_per_1m",
    "cached_input_per_1m",
    "output_per_1m",
    "tier_threshold_tokens",
    "tier2_input_per_1m",
    "tier2_cached_input_per_1m",
    "tier2_output_per_1m",
)


@dataclass
class TokenUsage:
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    source: str = UsageSource.REPORTED


def usage_event_record(
    *,
    feature: str,
    provider: str,
    model: str,
    tokens: TokenUsage,
    status: str = UsageStatus.OK,
    user=None,
    job_id=None,
    focus_group_id: int | None = None,
    persona_id: int | None = None,
    model_alias: str = "",
    error_class: str = "",
    latency_ms: int | None = None,
    ttft_ms: int | None = None,
    streamed: bool = False,
    simulated: bool = False,
    attempt: int = 1,
    request_id: str = "",
    cached: bool = False,
    model_snapshot: str = "",
) -> UsageEvent:
    """Write one usage event with its cost. A missing price never fails the call:
    the event is stored with an unknown cost and the admins are warned. The price is the provider's own for
    the model when it has one, else the model's (``usage.pricing.price_for``); ``model_snapshot`` is the model
    the provider says it ran, which also prices a model known only by another name (an Azure deployment)."""
    now = timezone.now()
    cost: Decimal | None
    price_missing = False
    if simulated or cached or tokens.source == UsageSource.NONE:
        cost = Decimal(0)  # the offline simulator, and a call the model never ran, cost nothing
    else:
        price = price_for(model, now, provider=provider, snapshot=model_snapshot)
        if price is None:
            cost, price_missing = None, True
            warn_price_missing(model)
        else:
            cost = cost_for(
                price,
                input_tokens=tokens.input_tokens,
                cached_input_tokens=tokens.cached_input_tokens,
                output_tokens=tokens.output_tokens,
            )
    if tokens.source == UsageSource.ESTIMATED and not cached:
        logger.warning("Provider sent no usage for %s/%s: tokens estimated offline", feature, model)
    return UsageEvent.objects.create(
        created_at=now,
        user=user if getattr(user, "pk", None) else None,
        job_id=job_id,
        focus_group_id=focus_group_id,
        persona_id=persona_id,
        feature=feature,
        provider=provider,
        model=model,
        model_alias=model_alias,
        input_tokens=tokens.input_tokens,
        cached_input_tokens=tokens.cached_input_tokens,
        output_tokens=tokens.output_tokens,
        reasoning_tokens=tokens.reasoning_tokens,
        usage_source=tokens.source,
        cost_usd=cost,
        price_missing=price_missing,
        status=status,
        error_class=error_class[:120],
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
        streamed=streamed,
        simulated=simulated,
        attempt=attempt,
        request_id=request_id[:120],
        cached=cached,
        model_snapshot=model_snapshot[:120],
    )


@dataclass
class SeedResult:
    prices_created: int = 0
    prices_unchanged: int = 0
    prices_updated: int = 0
    aliases_created: int = 0
    aliases_updated: int = 0


def _decimal_or_none(value) -> Decimal | int | None:
    if value is None:
        return None
    return Decimal(str(value))


@transaction.atomic
def pricing_seed_from_file(*, path: Path = PRICE_FILE) -> SeedResult:
    """Load prices and aliases; running it twice leaves the same rows."""
    data = json.loads(Path(path).read_text())
    result = SeedResult()
    for entry in data["prices"]:
        effective_from = parse_datetime(entry["effective_from"])
        if effective_from is None:
            raise ValueError(f"Bad effective_from for {entry['model']}: {entry['effective_from']!r}")
        values = {field: _decimal_or_none(entry.get(field)) for field in _PRICE_FIELDS}
        if values["tier_threshold_tokens"] is not None:
            values["tier_threshold_tokens"] = int(values["tier_threshold_tokens"])
        row, created = ModelPrice.objects.get_or_create(
            model=entry["model"], provider=entry.get("provider", ""), effective_from=effective_from, defaults=values
        )
        if created:
            result.prices_created += 1
        elif any(getattr(row, field) != value for field, value in values.items()):
            # Same model and date but different numbers: the file is the truth.
            for field, value in values.items():
                setattr(row, field, value)
            row.save()
            result.prices_updated += 1
        else:
            result.prices_unchanged += 1
        for alias in entry.get("aliases", []):
            _, alias_created = ModelAlias.objects.update_or_create(alias=alias, defaults={"model": entry["model"]})
            if alias_created:
                result.aliases_created += 1
    transaction.on_commit(invalidate_pricing_cache)
    return result


@dataclass
class BackfillResult:
    priced: int = 0
    still_missing: int = 0
    recomputed_estimates: int = 0


def usage_backfill(*, delete_existing_estimates: bool = False, dry_run: bool = False) -> BackfillResult:
    """Price events recorded while their model had no price; with
    ``delete_existing_estimates``, discard the costs of estimated events and
    compute them again from the current price table."""
    result = BackfillResult()
    pending = UsageEvent.objects.filter(cost_usd__isnull=True, simulated=False)
    if delete_existing_estimates:
        pending = pending | UsageEvent.objects.filter(usage_source=UsageSource.ESTIMATED, simulated=False)
    for event in pending.order_by("id").iterator(chunk_size=500):
        price = price_for(event.model, event.created_at, provider=event.provider, snapshot=event.model_snapshot)
        if price is None:
            result.still_missing += 1
            continue
        cost = cost_for(
            price,
            input_tokens=event.input_tokens,
            cached_input_tokens=event.cached_input_tokens,
            output_tokens=event.output_tokens,
        )
        if event.cost_usd is None:
            result.priced += 1
        else:
            result.recomputed_estimates += 1
        if not dry_run:
            # The one sanctioned change to an event: filling in its cost.
            UsageEvent.objects.filter(pk=event.pk).update(cost_usd=cost, price_missing=False)
    return result


def month_start(now: datetime | None = None) -> datetime:
    now = timezone.localtime(now or timezone.now())
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
