from datetime import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import UserFactory
from usage.models import UsageEvent


def make_event(*, user=None, cost="0.01", at: datetime | None = None, **fields) -> UsageEvent:
    """A usage event as the gateway would record it, without pricing logic."""
    defaults = {
        "feature": "persona_response",
        "provider": "openai",
        "model": "gpt-test",
        "input_tokens": 1000,
        "output_tokens": 200,
    }
    defaults.update(fields)
    return UsageEvent.objects.create(
        user=user,
        created_at=at or timezone.now(),
        cost_usd=None if cost is None else Decimal(cost),
        **defaults,
    )


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def researcher_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def make_users(db):
    def make(n: int, **fields):
        return [UserFactory(**fields) for _ in range(n)]

    return make
