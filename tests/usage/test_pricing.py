from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from usage.models import ModelAlias, ModelPrice
from usage.pricing import cost_for, price_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded():
    call_command("seed_model_pricing", verbosity=0)


def test_seed_is_idempotent(seeded):
    prices, aliases = ModelPrice.objects.count(), ModelAlias.objects.count()
    snapshot = list(ModelPrice.objects.values())
    call_command("seed_model_pricing", verbosity=0)
    assert (ModelPrice.objects.count(), ModelAlias.objects.count()) == (prices, aliases)
    assert list(ModelPrice.objects.values()) == snapshot
    assert prices >= 3 and aliases >= 3


def test_single_tier_cost(seeded):
    price = price_for("gpt-5.4", timezone.now())
    cost = cost_for(price, input_tokens=1_000_000, cached_input_tokens=0, output_tokens=1_000_000)
    assert cost == Decimal("17.50")  # 2.50 in + 15.00 out


def test_cached_tokens_are_part_of_input_at_the_cached_rate(seeded):
    price = price_for("gpt-5.4", timezone.now())
    cost = cost_for(price, input_tokens=1000, cached_input_tokens=400, output_tokens=0)
    assert cost == (Decimal(600) * Decimal("2.50") + Decimal(400) * Decimal("0.25")) / Decimal(1_000_000)


def test_second_tier_above_the_prompt_threshold(seeded):
    price = price_for("gemini-3.1-pro-preview", timezone.now())
    small = cost_for(price, input_tokens=200_000, cached_input_tokens=0, output_tokens=1000)
    large = cost_for(price, input_tokens=200_001, cached_input_tokens=0, output_tokens=1000)
    assert small == (Decimal(200_000) * 2 + Decimal(1000) * 12) / Decimal(1_000_000)
    assert large == (Decimal(200_001) * 4 + Decimal(1000) * 18) / Decimal(1_000_000)


def test_aliases_price_as_their_model(seeded):
    now = timezone.now()
    assert price_for("gpt-4.1", now) == price_for("gpt-5.4", now)
    assert price_for("gemini-3-pro-preview", now).model == "gemini-3.1-pro-preview"


def test_effective_dates_keep_old_prices_for_old_events(seeded):
    now = timezone.now()
    ModelPrice.objects.create(
        model="gpt-5.4",
        effective_from=now - timedelta(days=1),
        input_per_1m=Decimal("3.00"),
        output_per_1m=Decimal("20.00"),
    )
    from django.core.cache import cache

    cache.clear()
    assert price_for("gpt-5.4", now).input_per_1m == Decimal("3.00")
    assert price_for("gpt-5.4", now - timedelta(days=30)).input_per_1m == Decimal("2.50")


def test_a_model_without_a_price_has_none():
    assert price_for("some-local-model", timezone.now()) is None


def test_zero_prices_are_real_prices():
    ModelPrice.objects.create(
        model="local",
        effective_from=timezone.now() - timedelta(days=1),
        input_per_1m=Decimal("0"),
        cached_input_per_1m=Decimal("0"),
        output_per_1m=Decimal("0"),
    )
    price = price_for("local", timezone.now())
    assert cost_for(price, input_tokens=10_000, cached_input_tokens=5_000, output_tokens=10) == Decimal(0)
