"""Reopening a session that autonomous mode ended, for follow-up questions moderated by hand."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from billing.models import CreditTransaction
from billing.selectors import credits_balance
from focusgroups import services
from focusgroups.autonomous import runs as autonomous
from focusgroups.discussion import services as discussion
from focusgroups.models import AutonomousRun, FocusGroup, Message, MessageRole, RunStatus
from tests.focusgroups.test_autonomous import make_session

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ended(funded, turns):
    session = make_session(funded)
    autonomous.run_start(focus_group=session)
    turns()
    session.refresh_from_db()
    assert session.status == "ended" and AutonomousRun.objects.get().status == RunStatus.ENDED
    return session


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_reopening_makes_the_session_live_for_follow_ups_without_restarting_or_charging(funded, ended, turns, client):
    run = AutonomousRun.objects.get()
    before = list(Message.objects.filter(focus_group=ended).order_by("sequence").values_list("pk", "content"))
    balance, ledger = credits_balance(user=funded), CreditTransaction.objects.filter(user=funded).count()

    client.force_login(funded)
    page = client.get(f"/focus-groups/{ended.pk}/").content.decode()
    assert 'id="reopen-session"' in page and "Reopen for follow-up questions" in page
    response = client.post(f"/focus-groups/{ended.pk}/reopen/", follow=True)
    assert response.redirect_chain == [(f"/focus-groups/{ended.pk}/", 302)]
    assert "Reopened for follow-up questions" in response.content.decode()
    assert 'id="composer"' in response.content.decode() and 'id="reopen-session"' not in response.content.decode()

    ended.refresh_from_db()
    assert ended.status == "live" and ended.ended_at is None
    # The autonomous run stays as it ended: no new turn queued, no new charge, no new run.
    assert AutonomousRun.objects.get() == run and AutonomousRun.objects.get().status == RunStatus.ENDED
    assert turns.queue == []
    assert credits_balance(user=funded) == balance
    assert CreditTransaction.objects.filter(user=funded).count() == ledger
    # The transcript keeps everything, and a note marks where the follow-up starts.
    after = list(Message.objects.filter(focus_group=ended).order_by("sequence"))
    assert [(m.pk, m.content) for m in after[:-1]] == before
    note = after[-1]
    assert note.role == MessageRole.SYSTEM and note.content == services.REOPEN_NOTE
    assert note.sequence == len(before) + 1

    # Moderated by hand from here: a follow-up question is answered, and ending again works as before.
    message, answers = discussion.message_post(focus_group=ended, text="One more thing: what about price?")
    assert message.sequence == note.sequence + 1 and len(answers) == 3
    discussion.focus_group_set_status(focus_group=ended, status="ended")
    ended.refresh_from_db()
    assert ended.status == "ended" and ended.ended_at is not None


def test_the_api_reopens_for_the_owner_only(funded, ended, other_user):
    response = _api(other_user).post(f"/api/v1/focus-groups/{ended.pk}/reopen/")
    assert response.status_code == 404
    assert FocusGroup.objects.get(pk=ended.pk).status == "ended"
    page = Client()
    page.force_login(other_user)
    assert page.post(f"/focus-groups/{ended.pk}/reopen/").status_code == 404
    assert FocusGroup.objects.get(pk=ended.pk).status == "ended"

    response = _api(funded).post(f"/api/v1/focus-groups/{ended.pk}/reopen/")
    assert response.status_code == 200 and response.json()["status"] == "live"
    again = _api(funded).post(f"/api/v1/focus-groups/{ended.pk}/reopen/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_ended"
    assert "this one is live" in again.json()["error"]["message"]
    assert Message.objects.filter(focus_group=ended, role=MessageRole.SYSTEM, content=services.REOPEN_NOTE).count() == 1


def test_an_archived_session_is_restored_before_it_can_be_reopened(funded, ended, client):
    services.focus_group_archive(focus_group=ended, archived=True)
    response = _api(funded).post(f"/api/v1/focus-groups/{ended.pk}/reopen/")
    assert response.status_code == 409 and response.json()["error"]["code"] == "archived"
    client.force_login(funded)
    assert 'id="reopen-session"' not in client.get(f"/focus-groups/{ended.pk}/").content.decode()
    assert FocusGroup.objects.get(pk=ended.pk).status == "ended"


def test_a_session_that_has_not_ended_offers_no_reopen(funded, client):
    session = make_session(funded)
    client.force_login(funded)
    assert 'id="reopen-session"' not in client.get(f"/focus-groups/{session.pk}/").content.decode()
    response = client.post(f"/focus-groups/{session.pk}/reopen/", follow=True)
    assert "Only an ended session can be reopened; this one is still a draft." in response.content.decode()
