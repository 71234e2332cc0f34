"""Emerging themes during a session: a quick pass by the mini model every N participant answers (App settings),
once per multiple whatever the retries, never while the provider is failing, free in credits and metered,
stored on the session, pushed to its socket, shown as provisional and then replaced by a link to the final
analysis. Owner only."""

import pytest
from channels.db import database_sync_to_async
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from billing.models import CreditTransaction
from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.core.models import get_app_settings
from cohorta.jobs.models import Job, JobState
from focusgroups import events
from focusgroups.autonomous import runs as autonomous
from focusgroups.discussion import services as discussion
from focusgroups.models import AutonomousRun, FocusGroup, LiveThemes, RunStatus
from focusgroups.report import analysis, live_themes
from tests.focusgroups.test_autonomous import make_session as make_guided_session
from tests.focusgroups.test_discussion import _collect, _socket, make_session
from usage.models import UsageEvent, UsageStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    """Events published to session groups."""
    found: list[dict] = []
    monkeypatch.setattr(events, "publish", lambda group, event: found.append(event))
    return found


def every(n: int) -> None:
    row = get_app_settings()
    row.live_themes_every_turns = n
    row.save()


def live_requests(fake_llm) -> list:
    return [
        r
        for r in fake_llm.requests
        if ((r.body or {}).get("response_format") or {}).get("json_schema", {}).get("name") == live_themes.FEATURE
    ]


def answers(session) -> int:
    return live_themes.answers_count(session.pk)


def test_a_pass_runs_once_at_n_answers_and_not_before(owner, fake_llm, sent, settings):
    assert get_app_settings().live_themes_every_turns == 6  # the default
    credits_grant(user=owner, amount=10, idempotency_key="test:live")
    session = make_session(owner)
    discussion.message_post(focus_group=session, text="What would make you try a meal kit?")
    discussion.message_post(focus_group=session, text="@Priya and @Tom, what about the price?")
    assert answers(session) == 5
    assert live_requests(fake_llm) == [] and not LiveThemes.objects.filter(focus_group=session).exists()
    assert not [e for e in sent if e["type"] == "fg.live_themes"]

    discussion.message_post(focus_group=session, text="@Alex, and you?")
    assert answers(session) == 6
    [request] = live_requests(fake_llm)
    assert request.body["model"] == settings.LLM_MODELS["mini"]
    spec = request.body["response_format"]["json_schema"]
    assert spec["strict"] is True
    sequence = spec["schema"]["properties"]["themes"]["items"]["properties"]["sequences"]["items"]
    persona_sequences = sorted(
        session.messages.filter(role="persona", status="complete").values_list("sequence", flat=True)
    )
    assert sequence["enum"] == persona_sequences  # only this session's answers can be pointed at
    prompt = request.body["messages"][-1]["content"]
    assert session.objective in prompt and "<<<REFERENCE transcript" in prompt

    row = LiveThemes.objects.get(focus_group=session)
    assert row.claimed_answers == 6 and row.answers == 6 and row.through_sequence == session.messages.count()
    assert 1 <= len(row.themes) <= live_themes.MAX_THEMES
    for theme in row.themes:
        assert theme["title"] and len(theme["title"]) <= live_themes.TITLE_MAX
        assert len(theme["note"]) <= live_themes.NOTE_MAX and theme["sentiment"] in analysis.SENTIMENTS
        assert set(theme["sequences"]) <= set(persona_sequences)
    [event] = [e for e in sent if e["type"] == "fg.live_themes"]
    assert event["focus_group_id"] == session.pk
    assert event["live_themes"]["answers"] == 6 and event["live_themes"]["themes"] == row.themes

    # Metered under its own feature on the mini model; free in credits.
    usage = UsageEvent.objects.get(feature="live_themes")
    assert usage.focus_group_id == session.pk and usage.model_alias == "mini" and usage.status == UsageStatus.OK
    assert credits_balance(user=owner) == 10 and not CreditTransaction.objects.filter(kind="spend").exists()

    # A repeat of the task (a redelivery, a retry) finds the multiple taken; the next answers do not reach 12.
    assert live_themes.live_themes_refresh(focus_group_id=session.pk) == "already-read"
    discussion.message_post(focus_group=session, text="@Priya, one more?")
    assert answers(session) == 7 and len(live_requests(fake_llm)) == 1


def test_a_failed_pass_is_not_retried_until_the_next_multiple(owner, fake_llm, sent):
    every(2)
    session = make_session(owner, names=[("Priya Shah", 34, "Nurse"), ("Tom Reed", 58, "Engineer")])
    fake_llm.add_fault("no_usage", times=2)  # the two answers
    fake_llm.add_fault("server_error", times=3)  # the pass, with the gateway's retries
    discussion.message_post(focus_group=session, text="What do you cook on weeknights?")
    assert answers(session) == 2
    assert len(live_requests(fake_llm)) == 3 and fake_llm.pending_faults == []
    row = LiveThemes.objects.get(focus_group=session)
    assert row.claimed_answers == 2 and row.themes == []  # claimed: this multiple is not read again
    assert live_themes.live_themes_refresh(focus_group_id=session.pk) == "already-read"
    assert not [e for e in sent if e["type"] == "fg.live_themes"]

    discussion.message_post(focus_group=session, text="@Priya, and at weekends?")
    assert len(live_requests(fake_llm)) == 3  # 3 answers: still the multiple of 2 already claimed
    discussion.message_post(focus_group=session, text="@Tom, and you?")
    assert len(live_requests(fake_llm)) == 4  # 4 answers: the next multiple reads
    row.refresh_from_db()
    assert row.claimed_answers == 4 and row.answers == 4 and row.themes


def test_no_pass_while_the_provider_is_failing(owner, fake_llm):
    every(0)
    session = make_session(owner)
    discussion.message_post(focus_group=session, text="What would make you try a meal kit?")
    discussion.message_post(focus_group=session, text="And what would stop you?")
    every(6)
    failed = UsageEvent.objects.create(
        user=owner,
        focus_group_id=session.pk,
        feature="persona_response",
        provider="openai",
        model="m",
        status=UsageStatus.ERROR,
    )
    assert live_themes.live_themes_refresh(focus_group_id=session.pk) == "provider-failing"
    assert live_requests(fake_llm) == [] and live_themes.due_mark(answers=answers(session), every=6) == 6
    assert not LiveThemes.objects.filter(focus_group=session, claimed_answers__gt=0).exists()  # not claimed

    failed.delete()
    run = AutonomousRun.objects.create(focus_group=session, status=RunStatus.RUNNING, failed_turns=1)
    assert live_themes.live_themes_refresh(focus_group_id=session.pk) == "provider-failing"
    AutonomousRun.objects.filter(pk=run.pk).update(
        status=RunStatus.PAUSED, failed_turns=0, end_reason="provider_unavailable"
    )
    assert live_themes.live_themes_refresh(focus_group_id=session.pk) == "provider-failing"
    assert live_requests(fake_llm) == []

    AutonomousRun.objects.filter(pk=run.pk).update(status=RunStatus.ENDED)  # the provider is back
    assert live_themes.live_themes_refresh(focus_group_id=session.pk) == "saved"
    assert len(live_requests(fake_llm)) == 1


def test_switched_off_with_zero(owner, client):
    every(0)
    session = make_session(owner)
    discussion.message_post(focus_group=session, text="What would make you try a meal kit?")
    discussion.message_post(focus_group=session, text="And what would stop you?")
    assert answers(session) == 6 and not UsageEvent.objects.filter(feature="live_themes").exists()
    client.force_login(owner)
    assert 'id="live-themes"' not in client.get(reverse("focusgroups:detail", args=[session.pk])).content.decode()


def test_autonomous_turns_count_too(owner, turns):
    every(3)
    credits_grant(user=owner, amount=100, idempotency_key="test:fund")
    session = make_guided_session(owner)
    autonomous.run_start(focus_group=session)
    turns()
    assert answers(session) >= 3
    row = LiveThemes.objects.get(focus_group=session)
    assert row.claimed_answers == answers(session) // 3 * 3
    # One pass per multiple reached, with the offline simulator.
    assert UsageEvent.objects.filter(feature="live_themes").count() == answers(session) // 3
    assert row.themes and row.simulated


def _analysed(session, through: int) -> Job:
    return Job.objects.create(
        owner=session.owner,
        kind=analysis.JOB_KIND,
        state=JobState.DONE,
        target_type=ContentType.objects.get_for_model(FocusGroup),
        target_id=str(session.pk),
        result={"version": 1, "through_sequence": through, "transcript": {}, "themes": [], "report": {}},
        finished_at=timezone.now(),
    )


def test_the_session_page_shows_them_provisional_then_links_to_the_final_themes(owner, client):
    session = make_session(owner)
    client.force_login(owner)
    url = reverse("focusgroups:detail", args=[session.pk])
    html = client.get(url).content.decode()
    assert 'id="live-themes"' in html and "appear here after every 6 answers (0 so far)" in html
    assert "Free: no credits" in html and "costs no credits" in html  # said on the card and in its tooltip

    discussion.message_post(focus_group=session, text="What would make you try a meal kit?")
    discussion.message_post(focus_group=session, text="And what would stop you?")
    row = LiveThemes.objects.get(focus_group=session)
    html = client.get(url).content.decode()
    assert "Provisional" in html and "Read at 6 answers (simulated)." in html and "Next read at 12 answers." in html
    for theme in row.themes:
        assert escape(theme["title"]) in html

    _analysed(session, through=row.through_sequence)
    html = client.get(url).content.decode()
    assert "See the key themes in the report" in html and 'id="live-themes-list"' not in html
    assert f'href="/focus-groups/{session.pk}/report/#report-themes"' in html


def test_the_api_and_the_socket_are_the_owners_only(owner, other_user, client, fake_llm):
    session = make_session(owner)
    discussion.message_post(focus_group=session, text="What would make you try a meal kit?")
    discussion.message_post(focus_group=session, text="And what would stop you?")
    row = LiveThemes.objects.get(focus_group=session)
    url = f"/api/v1/focus-groups/{session.pk}/live-themes/"

    client.force_login(owner)
    body = client.get(url).json()
    assert body["every"] == 6 and body["answers"] == 6 and body["read_at_answers"] == 6
    assert body["themes"] == row.themes and body["final"] is False and body["simulated"] is False

    client.force_login(other_user)
    assert client.get(url).status_code == 404
    assert client.get(reverse("focusgroups:detail", args=[session.pk])).status_code == 404
    client.logout()
    assert client.get(url).status_code in (401, 403)


async def test_the_socket_pushes_a_new_read_and_replays_the_latest(owner, owner_token):
    session = await database_sync_to_async(make_session)(owner)
    communicator, connected, _ = await _socket(session.pk, owner_token)
    assert connected
    await communicator.send_json_to({"type": "hello", "last_seq": 0})
    done = await communicator.receive_json_from()
    assert done["type"] == "replay.done" and done["live_themes"] is None

    await database_sync_to_async(discussion.message_post)(focus_group=session, text="What would make you try it?")
    await database_sync_to_async(discussion.message_post)(focus_group=session, text="And what would stop you?")
    received = await _collect(communicator, lambda m, seen: m["type"] == "themes.live")
    pushed = received[-1]["live_themes"]
    assert pushed["answers"] == 6 and pushed["themes"] and pushed["simulated"] is True
    await communicator.disconnect()

    communicator, _, _ = await _socket(session.pk, owner_token)  # a page opened later gets the latest read
    await communicator.send_json_to({"type": "hello", "last_seq": 100})
    done = await communicator.receive_json_from()
    assert done["type"] == "replay.done" and done["live_themes"] == pushed
    await communicator.disconnect()


def test_without_a_read_the_analysis_is_final_only_while_it_covers_the_session(owner):
    session = make_session(owner)
    every(0)
    discussion.message_post(focus_group=session, text="What would make you try a meal kit?")
    every(6)
    session.refresh_from_db()
    assert live_themes.live_themes_panel(focus_group=session)["final"] is False
    _analysed(session, through=session.last_sequence)
    assert live_themes.live_themes_panel(focus_group=session)["final"] is True
    discussion.message_post(focus_group=session, text="@Priya, one more thing?")  # e.g. a reopened session
    session.refresh_from_db()
    panel = live_themes.live_themes_panel(focus_group=session)
    assert panel["final"] is False and panel["read"] is None and panel["answers"] == 4
