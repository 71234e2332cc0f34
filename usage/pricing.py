"""Model prices: lookups through a short cache, and the cost of a call."""

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.cache import cache
from django.core.mail import mail_admins

from usage.models import ModelAlias, ModelPrice

logger = logging.getLogger(__name__)

CACHE_SECONDS = 60
MILLION = Decimal(1_000_000)
COST_QUANTUM = Decimal("0.00000001")


@dataclass(frozen=True)
class Price:
    model: str
    effective_from: datetime
    input_per_1m: Decimal
    cached_input_per_1m: Decimal | None
    output_per_1m: Decimal
    tier_threshold_tokens: int | None = None
    tier2_input_per_1m: Decimal | None = None
    tier2_cached_input_per_1m: Decimal | None = None
    tier2_output_per_1m: Decimal | None = None

    @classmethod
    def from_row(cls, row: ModelPrice) -> "Price":
        return cls(
            model=row.model,
            effective_from=row.effective_from,
            input_per_1m=row.input_per_1m,
            cached_input_per_1m=row.cached_input_per_1m,
            output_per_1m=row.output_per_1m,
            tier_threshold_tokens=row.tier_threshold_tokens,
            tier2_input_per_1m=row.tier2_input_per_1m,
            tier2_cached_input_per_1m=row.tier2_cached_input_per_1m,
            tier2_output_per_1m=row.tier2_output_per_1m,
        )


def canonical_model(name: str) -> str:
    key = f"pricing:alias:{name}"
    canonical = cache.get(key)
    if canonical is None:
        canonical = ModelAlias.objects.filter(alias=name).values_list("model", flat=True).first() or name
        cache.set(key, canonical, CACHE_SECONDS)
    return canonical


def _prices_for(model: str, provider: str = "") -> list[Price]:
    """``model``'s price rows for ``provider`` only ("" : the rows for every provider), newest first."""
    key = _prices_key(model, provider)
    prices = cache.get(key)
    if prices is None:
        rows = ModelPrice.objects.filter(model=model, provider=provider).order_by("-effective_from")
        prices = [Price.from_row(row) for row in rows]
        cache.set(key, prices, CACHE_SECONDS)
    return prices


def _prices_key(model: str, provider: str) -> str:
    return f"pricing:prices:{provider}:{model}" if provider else f"pricing:prices:{model}"


def price_for(model: str, at: datetime, provider: str = "", snapshot: str = "") -> Price | None:
    """The price in force at ``at`` for ``model`` (or the model it is an alias of) on ``provider``: that
    provider's own row when it has one in force, else the row for every provider. A model with no price
    (an Azure deployment's own name) is priced as ``snapshot``, the model the provider says it ran."""
    for name in (model, snapshot) if snapshot and snapshot != model else (model,):
        canonical = canonical_model(name)
        for on in (provider, "") if provider else ("",):
            for price in _prices_for(canonical, on):
                if price.effective_from <= at:
                    return price
    return None


def cost_for(price: Price, *, input_tokens: int, cached_input_tokens: int, output_tokens: int) -> Decimal:
    """USD cost. Cached tokens are part of the input count and priced at the
    cached rate; reasoning tokens are part of the output count."""
    tiered = price.tier_threshold_tokens is not None and input_tokens > price.tier_threshold_tokens
    # Explicit None checks: a price of 0 (free cached input, a local model) is a real price.
    input_rate = _first(price.tier2_input_per_1m if tiered else None, price.input_per_1m)
    output_rate = _first(price.tier2_output_per_1m if tiered else None, price.output_per_1m)
    cached_rate = _first(
        price.tier2_cached_input_per_1m if tiered else None,
        None if tiered and price.tier2_input_per_1m is not None else price.cached_input_per_1m,
        input_rate,
    )
    cached = min(cached_input_tokens, input_tokens)
    total = (
        Decimal(input_tokens - cached) * input_rate
        + Decimal(cached) * cached_rate
        + Decimal(output_tokens) * output_rate
    ) / MILLION
    return total.quantize(COST_QUANTUM)


def _first(*values):
    return next(value for value in values if value is not None)


def invalidate_pricing_cache() -> None:
    keys = [_prices_key(model, provider) for model, provider in ModelPrice.objects.values_list("model", "provider")]
    keys += [f"pricing:alias:{name}" for name in ModelAlias.objects.values_list("alias", flat=True)]
    keys += [f"pricing:alias:{name}" for name in ModelPrice.objects.values_list("model", flat=True)]
    cache.delete_many(keys)


def warn_price_missing(model: str) -> None:
    """Log every time; email the admins at most once a day per model."""
    logger.warning("No price for model %r: usage recorded with an unknown cost", model)
    if cache.add(f"pricing:missing-warned:{model}", 1, 24 * 3600):
        try:
            mail_admins(
                f"Cohorta: no price for model {model}",
                f"LLM calls to {model!r} are being recorded without a cost. Add a price in the admin "
                "(Usage → Model prices) or to usage/pricing/model_prices.json, then run "
                "`manage.py backfill_usage` to price the events already recorded.",
                fail_silently=True,
            )
        except Exception:  # never let a warning break a user's call
            logger.exception("Could not email admins about the missing price")
