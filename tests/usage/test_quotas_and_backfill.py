import contextvars
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cohorta.core.models import get_app_settings
from cohorta.errors import QuotaExceeded
from usage.models import UsageEvent, UsageSource
from usage.quotas import quota_check, quota_covering, quota_status
from usage.services import TokenUsage, usage_event_record

pytestmark = pytest.mark.django_db


def _spend(user, usd: str, **extra):
    # 1M input tokens of a $X/1M model costs $X: a simple way to spend exact amounts.
    from usage.models import ModelPrice

    ModelPrice.objects.get_or_create(
        model="test-model", defaults={"input_per_1m": Decimal("1.00"), "output_per_1m": Decimal("0")}
    )
    tokens = TokenUsage(input_tokens=int(Decimal(usd) * 1_000_000))
    return usage_event_record(feature="summary", provider="test", model="test-model", tokens=tokens, user=user, **extra)


def test_quota_defaults_to_app_settings_and_can_be_overridden(owner):
    assert quota_status(user=owner).limit_usd == get_app_settings().default_monthly_quota_usd
    owner.monthly_quota_usd = Decimal("3.00")
    assert quota_status(user=owner).limit_usd == Decimal("3.00")


def test_quota_refuses_at_100_percent(owner):
    owner.monthly_quota_usd = Decimal("2.00")
    owner.save()
    _spend(owner, "1.99")
    quota_check(user=owner)
    _spend(owner, "0.01")
    with pytest.raises(QuotaExceeded) as info:
        quota_check(user=owner)
    assert info.value.status_code == 402 and "monthly AI budget" in info.value.message


def test_a_zero_budget_is_used_up_before_any_spend(owner):
    owner.monthly_quota_usd = Decimal("0.00")
    owner.save()
    status = quota_status(user=owner)
    assert status.no_budget and status.exceeded and status.warning and status.percent == 100
    with pytest.raises(QuotaExceeded) as info:
        quota_check(user=owner)
    assert "no monthly AI budget" in info.value.message and "$0.00 of $0.00" not in info.value.message


def test_warning_at_80_percent_is_sent_once(owner, monkeypatch):
    owner.monthly_quota_usd = Decimal("10.00")
    owner.save()
    sent = []
    monkeypatch.setattr("usage.quotas.publish", lambda group, message: sent.append((group, message)))
    _spend(owner, "7.99")
    assert not quota_check(user=owner).warning and sent == []
    _spend(owner, "0.01")
    assert quota_check(user=owner).warning
    quota_check(user=owner)
    assert len(sent) == 1
    group, message = sent[0]
    assert group == f"user.{owner.pk}" and message["type"] == "usage.quota_warning" and message["percent"] == 80


def test_focus_group_cap(owner):
    _spend(owner, "0.50", focus_group_id=7)
    quota_check(user=owner, focus_group_id=8, focus_group_cap_usd=Decimal("0.50"))
    with pytest.raises(QuotaExceeded) as info:
        quota_check(user=owner, focus_group_id=7, focus_group_cap_usd=Decimal("0.50"))
    assert info.value.code == "session_cap_reached"


def _spend_sums(call) -> int:
    """How many times ``call`` summed recorded spend (the month's or a session's)."""
    with CaptureQueriesContext(connection) as queries:
        call()
    return sum('SUM("usage_usageevent"."cost_usd")' in query["sql"] for query in queries)


def test_a_round_checks_the_budget_once_for_the_first_call_of_each_answer(owner):
    """A round's answers leave together: one check covers each one's first call (in its own copy of the
    context, as the round's helper threads run); a second call in the same copy, a retry, checks again."""
    owner.monthly_quota_usd = Decimal("2.00")
    owner.save()
    cap = {"focus_group_id": 7, "focus_group_cap_usd": Decimal("1.00")}
    with quota_covering(user=owner, **cap):
        _spend(owner, "2.50")  # spent meanwhile: only a check that asks the database sees it
        answers = [contextvars.copy_context() for _ in range(3)]
        for answer in answers:
            assert _spend_sums(lambda answer=answer: answer.run(quota_check, user=owner, **cap)) == 0
        with pytest.raises(QuotaExceeded):
            answers[0].run(quota_check, user=owner, **cap)  # its retry
        # A call for another session, or without the cap, is not the round's: it checks for itself.
        with pytest.raises(QuotaExceeded):
            contextvars.copy_context().run(quota_check, user=owner, focus_group_id=8)
    with pytest.raises(QuotaExceeded):
        quota_check(user=owner, **cap)  # after the round


def test_a_round_that_starts_over_budget_covers_nothing(owner):
    owner.monthly_quota_usd = Decimal("1.00")
    owner.save()
    _spend(owner, "1.00")
    with quota_covering(user=owner):  # the round itself goes on; each answer refuses as it would alone
        for _ in range(2):
            with pytest.raises(QuotaExceeded):
                contextvars.copy_context().run(quota_check, user=owner)


def test_missing_price_records_the_event_and_warns(owner, caplog, mailoutbox, settings):
    settings.ADMINS = [("Ops", "ops@example.com")]
    event = usage_event_record(
        feature="summary",
        provider="test",
        model="mystery-model",
        tokens=TokenUsage(input_tokens=10, output_tokens=5),
        user=owner,
    )
    assert event.cost_usd is None and event.price_missing
    assert "No price for model 'mystery-model'" in caplog.text
    usage_event_record(feature="summary", provider="test", model="mystery-model", tokens=TokenUsage(), user=owner)
    assert len(mailoutbox) == 1  # admins are told once, not on every call


def test_backfill_prices_events_once_a_price_exists(owner):
    from usage.models import ModelPrice

    event = usage_event_record(
        feature="summary",
        provider="test",
        model="late-model",
        tokens=TokenUsage(input_tokens=2_000_000, output_tokens=0),
        user=owner,
    )
    estimated = usage_event_record(
        feature="summary",
        provider="test",
        model="late-model",
        user=owner,
        tokens=TokenUsage(input_tokens=1_000_000, source=UsageSource.ESTIMATED),
    )
    call_command("backfill_usage", verbosity=0)
    assert UsageEvent.objects.get(pk=event.pk).cost_usd is None  # still no price
    from django.core.cache import cache
    from django.utils import timezone

    ModelPrice.objects.create(
        model="late-model",
        effective_from=timezone.now().replace(year=2020),
        input_per_1m=Decimal("1.50"),
        output_per_1m=Decimal("1"),
    )
    cache.clear()
    call_command("backfill_usage", verbosity=0)
    assert UsageEvent.objects.get(pk=event.pk).cost_usd == Decimal("3.00")
    assert UsageEvent.objects.get(pk=estimated.pk).cost_usd == Decimal("1.50")
    # Idempotent; and --delete-existing-estimates recomputes estimated costs from the current table.
    ModelPrice.objects.filter(model="late-model").update(input_per_1m=Decimal("2.00"))
    cache.clear()
    call_command("backfill_usage", verbosity=0)
    assert UsageEvent.objects.get(pk=estimated.pk).cost_usd == Decimal("1.50")
    call_command("backfill_usage", "--delete-existing-estimates", verbosity=0)
    assert UsageEvent.objects.get(pk=estimated.pk).cost_usd == Decimal("2.00")
    assert UsageEvent.objects.get(pk=event.pk).cost_usd == Decimal("3.00")  # reported events keep their cost


def test_usage_events_are_append_only(owner):
    event = usage_event_record(feature="summary", provider="t", model="m", tokens=TokenUsage(), user=owner)
    event.input_tokens = 99
    with pytest.raises(RuntimeError):
        event.save()
