"""The Report tab before any analysis: every way on from it works, and it offers what fits the session's state."""

import re
from html import unescape
from urllib.parse import urlsplit

import pytest

from focusgroups import services
from focusgroups.models import FocusGroup
from tests.focusgroups.factories import FocusGroupFactory, add_message

pytestmark = pytest.mark.django_db

HREF = re.compile(r"<a\b[^>]*\bhref=\"([^\"]*)\"", re.I)
FORM = re.compile(r"<form\b[^>]*\baction=\"([^\"]*)\"", re.I)


def _session(owner, *, status="live", answers=0, messages=True, archived=False) -> FocusGroup:
    session = FocusGroupFactory(owner=owner, participants=3)
    personas = [p.persona for p in session.participants.all()]
    if messages:
        add_message(session, content="What do you make of it?")
    for i in range(answers):
        add_message(session, persona=personas[i % len(personas)], content=f"Answer {i}.")
    FocusGroup.objects.filter(pk=session.pk).update(status=status, archived=archived)
    session.refresh_from_db()
    return session


def _report(client, session) -> str:
    response = client.get(f"/focus-groups/{session.pk}/report/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="report-empty"' in page
    return page


def _empty_card(page: str) -> str:
    return page[page.index('id="report-empty"') :]


STATES = {
    "draft, nothing said": {"status": "draft", "messages": False},
    "live, too little": {"status": "live", "answers": 1},
    "paused, too little": {"status": "paused", "answers": 1},
    "ended, too little": {"status": "ended", "answers": 1},
    "ended, enough": {"status": "ended", "answers": 4},
    "archived": {"status": "ended", "answers": 1, "archived": True},
}


@pytest.mark.parametrize("state", STATES)
def test_every_link_on_the_empty_report_page_works_for_the_owner(client, owner, state):
    session = _session(owner, **STATES[state])
    client.force_login(owner)
    page = _report(client, session)
    links = {unescape(href) for href in HREF.findall(page)}
    internal = {href for href in links if href.startswith("/")}
    assert internal, "the page links nowhere"
    for href in sorted(internal):
        response = client.get(href)
        assert response.status_code == 200, f"{state}: {href} answered {response.status_code}"
    # Every form on the card posts somewhere that exists (a 404 here would be a dead button).
    for action in FORM.findall(_empty_card(page)):
        path = urlsplit(unescape(action)).path
        assert client.post(path).status_code in (200, 302), f"{state}: POST {path}"


def test_a_live_session_with_too_little_goes_to_the_discussion(client, owner):
    session = _session(owner, status="live", answers=1)
    client.force_login(owner)
    card = _empty_card(_report(client, session))
    assert f'href="/focus-groups/{session.pk}/"' in card and "Go to the discussion" in card
    assert "/reopen/" not in card and 'id="analyse-session"' not in card


def test_an_ended_session_with_too_little_offers_to_reopen_it(client, owner):
    session = _session(owner, status="ended", answers=1)
    client.force_login(owner)
    card = _empty_card(_report(client, session))
    assert f'action="/focus-groups/{session.pk}/reopen/"' in card and "Reopen for follow-up questions" in card
    assert "Read the transcript" in card and 'id="analyse-session"' not in card
    response = client.post(f"/focus-groups/{session.pk}/reopen/")
    assert response.status_code == 302 and FocusGroup.objects.get(pk=session.pk).status == "live"


def test_an_ended_session_with_enough_offers_the_analysis(client, owner):
    session = _session(owner, status="ended", answers=4)
    client.force_login(owner)
    card = _empty_card(_report(client, session))
    assert f'action="/focus-groups/{session.pk}/report/analyse/"' in card and 'id="analyse-session"' in card


def test_an_archived_session_links_to_where_it_is_restored(client, owner):
    session = _session(owner, status="ended", answers=1, archived=True)
    client.force_login(owner)
    card = _empty_card(_report(client, session))
    assert f'href="/focus-groups/{session.pk}/edit/"' in card and "/reopen/" not in card
    services.focus_group_archive(focus_group=session, archived=False)
    assert "Restore" not in _empty_card(_report(client, session))


def test_nothing_said_yet_offers_no_empty_transcript_download(client, owner):
    session = _session(owner, status="draft", messages=False)
    client.force_login(owner)
    card = _empty_card(_report(client, session))
    assert "/export/" not in card
    assert "Ask the group a question" in card or "Go to the discussion" in card
