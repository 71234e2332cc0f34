"""Exact replay of a scored validation against the fake OpenAI server: the same matched panel, answers and
scorecard, with no request reaching the provider, free of credits."""

import json

import pytest
from django.test import Client

from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.errors import ApplicationError
from llm.models import CachedResponse
from surveys.models import Answer
from tests.validation.test_flow import MAPPING, upload_reference
from validation import services
from validation.models import Validation, ValidationState

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def funded(owner):
    credits_grant(user=owner, amount=1000, idempotency_key="test:fund")
    return owner


@pytest.fixture
def scored(funded, fake_llm):
    reference = services.reference_map(reference=upload_reference(funded), mapping=MAPPING)
    validation = services.validation_start(owner=funded, reference=reference, size=12, seed=5)
    validation.refresh_from_db()
    assert validation.state == ValidationState.DONE, validation.error
    return validation


def _people(validation) -> list:
    return list(validation.panel.members.order_by("position").values_list("core", "persona__name"))


def _answers(validation) -> list:
    return list(
        Answer.objects.filter(respondent__run=validation.run)
        .order_by("respondent__position", "question_id")
        .values_list("text", "pmf", "expected", "choices")
    )


def test_a_replay_gives_the_same_panel_answers_and_scorecard_with_no_provider_request(scored, funded, fake_llm):
    requests = len(fake_llm.requests)
    balance = credits_balance(user=funded)
    assert services.replay_check(scored).complete

    copy = services.validation_replay(validation=scored)
    copy.refresh_from_db()

    assert copy.state == ValidationState.DONE, copy.error
    assert len(fake_llm.requests) == requests  # the provider received nothing
    assert _people(copy) == _people(scored)
    assert _answers(copy) == _answers(scored)
    assert json.dumps(copy.scorecard, sort_keys=True) == json.dumps(scored.scorecard, sort_keys=True)
    assert credits_balance(user=funded) == balance  # a complete replay is free
    assert services.replay_source(copy).replay_of.scope == f"validation:{scored.pk}"


def test_a_replay_with_answers_missing_says_how_many(scored, funded):
    page = Client()
    page.force_login(funded)
    assert "Replay exactly (free)" in page.get(f"/validation/{scored.pk}/").content.decode()
    CachedResponse.objects.filter(feature="survey_answer").order_by("pk").first().delete()
    with pytest.raises(ApplicationError) as info:
        services.validation_replay(validation=scored)
    assert info.value.code == "replay_incomplete" and info.value.extra["missing"] == 1
    assert "no longer in the cache" in info.value.message
    assert Validation.objects.count() == 1
    card = page.get(f"/validation/{scored.pk}/").content.decode()
    assert "1 of the" in card and "charged like a validation" in card and "Replay, asking for the missing 1" in card


def test_another_user_cannot_replay_a_validation(scored, other_user):
    page = Client()
    page.force_login(other_user)
    assert page.post(f"/validation/{scored.pk}/replay/").status_code == 404
    assert Validation.objects.count() == 1
