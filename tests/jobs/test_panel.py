"""The floating jobs panel: what it lists, closing it, and jobs leaving it a few seconds after they end."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from cohorta.jobs.models import JobState
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def _panel(client) -> str:
    return client.get("/jobs/panel/").content.decode()


def _rows(panel: str) -> list[str]:
    return re.findall(r'id="job-([0-9a-f-]{36})"', panel)


def test_closing_the_panel_is_remembered_for_its_jobs_and_a_new_job_brings_it_back(client, owner):
    first = JobFactory(owner=owner, state=JobState.RUNNING, started_at=timezone.now())
    client.force_login(owner)
    panel = _panel(client)
    assert _rows(panel) == [str(first.pk)]
    assert f'hx-vals=\'{{"jobs": "{first.pk}"}}\'' in panel  # the close button names the jobs it closes

    assert client.post("/jobs/panel/dismiss/", {"jobs": str(first.pk)}).content == b""
    # Still running, still updating: it stays off the panel, on every page, while it runs and after it ends.
    first.progress_done = 1
    first.save()
    assert _panel(client) == ""
    first.state, first.finished_at = JobState.DONE, timezone.now()
    first.save()
    assert _panel(client) == ""

    second = JobFactory(owner=owner, state=JobState.QUEUED)
    assert _rows(_panel(client)) == [str(second.pk)]


def test_closing_ignores_ids_that_are_not_the_users_jobs(client, owner, other_user):
    theirs = JobFactory(owner=other_user, state=JobState.RUNNING)
    mine = JobFactory(owner=owner, state=JobState.RUNNING)
    client.force_login(owner)
    response = client.post("/jobs/panel/dismiss/", {"jobs": f"{theirs.pk},not-an-id,{mine.pk}"})
    assert response.status_code == 200 and response.content == b""
    assert client.session["jobs_panel_dismissed"] == [str(mine.pk)]
    client.force_login(other_user)
    assert _rows(_panel(client)) == [str(theirs.pk)]


def test_a_job_leaves_the_panel_a_few_seconds_after_it_ends(client, owner):
    now = timezone.now()
    just_done = JobFactory(owner=owner, state=JobState.DONE, finished_at=now - timedelta(seconds=2))
    JobFactory(owner=owner, state=JobState.DONE, finished_at=now - timedelta(seconds=10))
    failed = JobFactory(owner=owner, state=JobState.FAILED, finished_at=now - timedelta(seconds=10), error="Boom.")
    client.force_login(owner)
    panel = _panel(client)
    # Nothing running: the summary line counts what is still on screen and goes when the last one's time is up.
    assert "2 jobs finished just now" in panel
    hide_in = int(re.search(r'class="job-panel-summary[^"]*"[^>]*data-hide-in="(\d+)"', panel)[1])
    assert 0 < hide_in <= 5  # the failure's 15 s, less the 10 s since it failed

    running = JobFactory(owner=owner, state=JobState.RUNNING, started_at=now)
    panel = _panel(client)
    assert _rows(panel) == [str(running.pk), str(just_done.pk), str(failed.pk)]
    assert re.search(rf'id="job-{just_done.pk}"[^>]*data-hide-in="[1-4]"', panel)
    assert not re.search(rf'id="job-{running.pk}"[^>]*data-hide-in', panel)


def test_a_running_job_with_no_step_done_shows_a_moving_bar_and_its_elapsed_time(client, owner):
    JobFactory(
        owner=owner,
        kind="persona_generation",
        state=JobState.RUNNING,
        started_at=timezone.now() - timedelta(seconds=75),
        progress_done=0,
        progress_total=6,
        progress_message="Sketching 6 people…",
    )
    client.force_login(owner)
    panel = _panel(client)
    assert "progress-waiting" in panel and 'aria-valuetext="Sketching 6 people…"' in panel
    assert "0/6" not in panel
    assert re.search(r'data-elapsed="7[5-9]"[^>]*>1:1[5-9]<', panel)


def test_the_panel_comes_first_in_the_page_content(client, owner):
    """On a phone the panel is in the flow above the content (CSS), so it must be inside <main>, first."""
    client.force_login(owner)
    page = client.get("/personas/").content.decode()
    main = page[page.index("<main") :]
    assert main.index('id="job-panel"') < main.index("<h1")
