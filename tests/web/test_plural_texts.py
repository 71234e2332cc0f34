"""Counts read as English when they are 1: "1 credit", never "1 credits" (costs are set by operators in
the admin, so any of them can be 1)."""

import re

import pytest
from django.urls import reverse

from backoffice.services import credits_admin_change
from billing.services import credits_grant
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError
from focusgroups.guide import services as guides
from focusgroups.models import FocusGroup, FocusGroupStatus
from tests.focusgroups.factories import FocusGroupFactory

pytestmark = pytest.mark.django_db

ONE_PLURAL = re.compile(r"\b1 (credits|personas|turns|calls|days|themes)\b")
GUIDE = {
    "title": "Oat milk",
    "sections": [
        {"title": "Habits", "goal": "Today.", "turn_budget": 4, "questions": [{"text": "How?", "probes": []}]},
        {"title": "Concept", "goal": "Reactions.", "turn_budget": 4, "questions": [{"text": "Why?", "probes": []}]},
    ],
}


@pytest.fixture
def costs_of_one(db):
    app = get_app_settings()
    app.persona_credit_cost = app.persona_modify_credit_cost = app.session_run_credit_cost = 1
    app.save()


def _text(response) -> str:
    assert response.status_code == 200
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_pages_say_one_credit(client, owner, costs_of_one):
    client.force_login(owner)
    billing = _text(client.get(reverse("billing:index")))  # a balance of 0: not enough for a run
    assert "Not enough for an autonomous session run (1 credit)." in billing
    assert "1 credit per persona" in _text(client.get(reverse("personas:generate")))
    fg = FocusGroupFactory(owner=owner, participants=2)
    guides.guide_save(focus_group=fg, data=GUIDE)
    assert "Costs 1 credit per run." in _text(client.get(reverse("focusgroups:detail", args=[fg.pk])))
    FocusGroup.objects.filter(pk=fg.pk).update(status=FocusGroupStatus.ENDED)
    assert "Re-run (1 credit)" in _text(client.get(reverse("focusgroups:compare", args=[fg.pk])))
    assert not ONE_PLURAL.search(billing), ONE_PLURAL.search(billing)


def test_an_adjustment_beyond_a_balance_of_one_says_credit(owner, staff_user):
    credits_grant(user=owner, amount=1, idempotency_key="test:one")
    with pytest.raises(ApplicationError) as info:
        credits_admin_change(
            users=[owner], actor=staff_user, amount=-5, kind="adjustment", reason="Test", token="test:adjust"
        )
    assert f"{owner.email} has 1 credit: removing 5" in info.value.message
