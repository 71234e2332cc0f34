"""Exact replay of a finished autonomous session against the fake OpenAI server: the same transcript, byte for
byte, with no request reaching the provider, free of credits; what the cache lost is counted and never
silently asked for."""

import pytest
from django.test import Client

from billing.selectors import credits_balance
from cohorta.errors import ApplicationError
from focusgroups import replay
from focusgroups.autonomous import runs as autonomous
from focusgroups.models import FocusGroup, Message, PrivateAnswer
from llm.models import CachedResponse
from tests.focusgroups.test_autonomous import make_session
from tests.focusgroups.test_conformity import make_session as make_conformity_session
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)


def _transcript(session) -> list[tuple[str, int | None, str]]:
    return list(
        Message.objects.filter(focus_group=session).order_by("sequence").values_list("role", "persona_id", "content")
    )


def _finished(owner, turns):
    session = make_session(owner)
    autonomous.run_start(focus_group=session)
    turns()
    session.refresh_from_db()
    assert session.status == "ended"
    return session


def test_a_replay_gives_the_same_transcript_with_no_provider_request(funded, turns, fake_llm):
    original = _finished(funded, turns)
    balance = credits_balance(user=funded)
    requests = len(fake_llm.requests)
    assert requests and replay.replay_check(original).complete

    copy = replay.session_replay(focus_group=original)
    turns()
    copy.refresh_from_db()

    assert copy.status == "ended" and copy.compare_of == original and copy.title == original.title
    assert _transcript(copy) == _transcript(original)
    assert len(fake_llm.requests) == requests  # the provider received nothing
    events = UsageEvent.objects.filter(focus_group_id=copy.pk)
    assert events.exists() and not events.filter(cached=False).exists()
    assert credits_balance(user=funded) == balance  # a complete replay is free
    assert replay.replay_of(copy).replay_of.scope == f"focusgroup:{original.pk}"
    assert replay.replay_of(original) is None


def test_missing_answers_are_counted_and_only_a_replay_allowed_to_go_live_asks_for_them(funded, turns, fake_llm):
    original = _finished(funded, turns)
    answers = CachedResponse.objects.filter(feature="persona_response").order_by("pk")
    answers.filter(pk=answers.last().pk).delete()  # as the nightly expiry would
    plan = replay.replay_check(original)
    assert plan.missing == 1 and plan.features == {"persona_response": 1}

    with pytest.raises(ApplicationError) as info:
        replay.session_replay(focus_group=original)
    assert info.value.code == "replay_incomplete" and info.value.extra["missing"] == 1
    assert "1 of the" in info.value.message and FocusGroup.objects.count() == 1

    requests = len(fake_llm.requests)
    balance = credits_balance(user=funded)
    copy = replay.session_replay(focus_group=original, allow_live=True)
    turns()
    copy.refresh_from_db()
    assert copy.status == "ended"
    assert len(fake_llm.requests) == requests + 1  # only the missing answer went out
    assert credits_balance(user=funded) == balance - 40  # a partly live replay is charged like a run
    assert _transcript(copy) == _transcript(original)  # the fake answers the same request the same way


def test_only_an_ended_autonomous_session_can_be_replayed(funded, turns):
    live = make_session(funded)
    with pytest.raises(ApplicationError) as info:
        replay.session_replay(focus_group=live)
    assert info.value.code == "not_ended"


def test_another_user_cannot_replay(funded, other_user, turns, fake_llm):
    original = _finished(funded, turns)
    page = Client()
    page.force_login(other_user)
    assert page.post(f"/focus-groups/{original.pk}/replay/").status_code == 404
    assert page.get(f"/focus-groups/{original.pk}/compare/").status_code == 404
    assert FocusGroup.objects.count() == 1


def test_the_compare_page_offers_the_replay_and_shows_methods(funded, turns, fake_llm, client):
    original = _finished(funded, turns)
    client.force_login(funded)
    page = client.get(f"/focus-groups/{original.pk}/compare/").content.decode()
    assert "Replay exactly" in page and "Methods" in page
    response = client.post(f"/focus-groups/{original.pk}/replay/")
    copy = FocusGroup.objects.exclude(pk=original.pk).get()
    assert response.status_code == 302 and response["Location"] == f"/focus-groups/{copy.pk}/"
    turns()
    page = client.get(f"/focus-groups/{copy.pk}/compare/").content.decode()
    assert "Exact replay" in page


def test_a_replay_asks_the_same_private_question_from_the_cache(funded, turns, fake_llm):
    session = make_conformity_session(funded)
    autonomous.run_start(focus_group=session)
    turns()
    session.refresh_from_db()
    requests = len(fake_llm.requests)
    balance = credits_balance(user=funded)

    copy = replay.session_replay(focus_group=session)
    turns()

    def private(of):
        return list(
            PrivateAnswer.objects.filter(conformity__focus_group=of)
            .order_by("phase", "persona_id")
            .values_list("phase", "persona_id", "choice", "reason")
        )

    assert len(private(session)) == 2 * session.participants.count()
    assert private(copy) == private(session)
    assert len(fake_llm.requests) == requests
    assert credits_balance(user=funded) == balance  # neither the run nor its conformity check is charged
