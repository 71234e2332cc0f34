"""The usage commands' own behaviour is tested in tests/usage; here: dry runs and repeat runs change nothing."""

from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from usage.models import ModelAlias, ModelPrice, UsageEvent
from usage.services import TokenUsage, usage_event_record

pytestmark = pytest.mark.django_db


def test_seed_model_pricing_twice_reports_everything_unchanged(capsys):
    call_command("seed_model_pricing")
    first = (ModelPrice.objects.count(), ModelAlias.objects.count())
    capsys.readouterr()
    call_command("seed_model_pricing")
    out = capsys.readouterr().out
    assert (ModelPrice.objects.count(), ModelAlias.objects.count()) == first
    assert "0 created, 0 updated" in out and "aliases: 0 created" in out


def test_backfill_dry_run_writes_nothing_and_a_second_run_prices_nothing(owner, capsys):
    event = usage_event_record(
        feature="summary", provider="test", model="late-model", tokens=TokenUsage(input_tokens=1_000_000), user=owner
    )
    ModelPrice.objects.create(
        model="late-model",
        effective_from=timezone.now().replace(year=2020),
        input_per_1m=Decimal("2.00"),
        output_per_1m=Decimal("0"),
    )
    cache.clear()
    call_command("backfill_usage", "--dry-run")
    assert "Would price 1 event" in capsys.readouterr().out
    assert UsageEvent.objects.get(pk=event.pk).cost_usd is None
    call_command("backfill_usage")
    assert UsageEvent.objects.get(pk=event.pk).cost_usd == Decimal("2.00")
    capsys.readouterr()
    call_command("backfill_usage")
    assert "Priced 0 event(s)" in capsys.readouterr().out
