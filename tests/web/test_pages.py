import pytest

from cohorta.jobs.models import Job, JobState
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

PAGES = ["/", "/personas/", "/focus-groups/", "/usage/", "/billing/", "/jobs/", "/settings/", "/settings/tokens/"]


@pytest.mark.parametrize("url", PAGES[1:])
def test_pages_need_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_anonymous_home_is_the_landing_page(client):
    body = client.get("/").content.decode()
    assert "Create a free account" in body and "/static/vendor/bootstrap/bootstrap.min.css" in body
    assert "cdn" not in body.lower()


@pytest.mark.parametrize("url", PAGES)
def test_pages_render_for_a_new_user(client, owner, url):
    client.force_login(owner)
    response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    for label in ("Dashboard", "Personas", "Focus groups", "Usage", "Billing"):
        assert label in body
    assert "/admin/" not in body  # researchers see no Admin link


def test_dashboard_tells_a_new_user_what_to_do_first(client, owner):
    client.force_login(owner)
    body = client.get("/").content.decode()
    assert "Get started" in body and "Create your personas" in body
    assert "Simulated LLM" in body  # no OPENAI_API_KEY in tests: the simulator is labelled


def test_staff_see_the_admin_link_and_admin_works(client, staff_user):
    client.force_login(staff_user)
    assert 'href="/admin/"' in client.get("/").content.decode()
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/jobs/job/").status_code == 200
    assert client.get("/admin/accounts/user/").status_code == 200


def test_researchers_cannot_open_the_admin(client, owner):
    client.force_login(owner)
    assert client.get("/admin/").status_code == 302


def test_empty_states_explain_what_to_do(client, owner):
    client.force_login(owner)
    assert "No personas yet" in client.get("/personas/").content.decode()
    assert "No jobs yet" in client.get("/jobs/").content.decode()


def test_worker_check_button_runs_a_job(client, owner, django_capture_on_commit_callbacks):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/jobs/worker-check/")
    assert response.status_code == 302
    job = Job.objects.get(owner=owner)
    assert job.state == JobState.DONE
    # Nothing running any more: the panel shrinks to a one-line summary.
    panel = client.get("/jobs/panel/").content.decode()
    assert "1 job finished just now" in panel and "job-row" not in panel
    assert "Worker check" in client.get("/jobs/").content.decode()


def test_job_panel_is_empty_without_jobs(client, owner):
    client.force_login(owner)
    assert client.get("/jobs/panel/").content == b""


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_another_users_job_actions_are_404(client, owner, other_user, action):
    theirs = JobFactory(owner=other_user, state=JobState.FAILED)
    client.force_login(owner)
    assert client.post(f"/jobs/{theirs.pk}/{action}/").status_code == 404
    assert Job.objects.get(pk=theirs.pk).state == JobState.FAILED


def test_cancel_from_the_panel_returns_the_row(client, owner):
    job = JobFactory(owner=owner)
    client.force_login(owner)
    response = client.post(f"/jobs/{job.pk}/cancel/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Cancelled" in response.content.decode()


def test_token_is_shown_once_then_only_its_prefix(client, owner):
    client.force_login(owner)
    response = client.post("/settings/tokens/", {"name": "notebook"}, follow=True)
    body = response.content.decode()
    token = owner.api_tokens.get()
    raw = body.split('id="new-token" value="', 1)[1].split('"', 1)[0]
    assert raw.startswith(token.prefix) and "will not be shown again" in body
    assert "no-store" in response["Cache-Control"]  # no copy of the raw token in a browser cache
    assert raw not in client.get("/settings/tokens/").content.decode()


def test_refreshing_after_creating_a_token_makes_no_second_one(client, owner):
    client.force_login(owner)
    response = client.post("/settings/tokens/", {"name": "notebook"})
    assert response.status_code == 302 and response["Location"] == "/settings/tokens/"
    first = client.get("/settings/tokens/")  # where the redirect lands: the token, once
    assert 'id="new-token"' in first.content.decode()
    again = client.get("/settings/tokens/")  # the refresh: a GET, so nothing is created
    assert 'id="new-token"' not in again.content.decode()
    assert owner.api_tokens.count() == 1


def test_token_name_is_required(client, owner):
    client.force_login(owner)
    response = client.post("/settings/tokens/", {"name": ""})
    assert response.status_code == 200 and not owner.api_tokens.exists()
    assert "This field is required" in response.content.decode()


def test_revoking_a_token_and_other_users_tokens_are_404(client, owner, other_user):
    from cohorta.accounts.services import api_token_create

    mine, _ = api_token_create(user=owner, name="mine")
    theirs, _ = api_token_create(user=other_user, name="theirs")
    client.force_login(owner)
    assert client.post(f"/settings/tokens/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_active
    client.post(f"/settings/tokens/{mine.pk}/revoke/")
    mine.refresh_from_db()
    assert not mine.is_active


def test_profile_name_can_be_changed(client, owner):
    client.force_login(owner)
    client.post("/settings/", {"name": "Liv"})
    owner.refresh_from_db()
    assert owner.name == "Liv"


def test_unknown_page_is_a_friendly_404(client, owner, settings):
    settings.DEBUG = False
    client.force_login(owner)
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and "couldn't find that page" in response.content.decode()


def test_panel_shows_active_and_just_finished_jobs_only(client, owner):
    from datetime import timedelta

    from django.utils import timezone

    running = JobFactory(owner=owner, state=JobState.RUNNING)
    JobFactory(owner=owner, state=JobState.DONE, finished_at=timezone.now() - timedelta(minutes=10))
    client.force_login(owner)
    panel = client.get("/jobs/panel/").content.decode()
    assert f'id="job-{running.pk}"' in panel and panel.count('class="job-row') == 1


def test_ai_connection_check_runs_through_the_gateway(client, owner, django_capture_on_commit_callbacks):
    from usage.models import UsageEvent

    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/jobs/llm-check/")
    job = Job.objects.get(owner=owner, kind="llm_check")
    assert job.state == JobState.DONE and job.result["simulated"] is True and job.result["reply"]
    event = UsageEvent.objects.get(job=job)
    assert event.feature == "healthcheck" and event.user == owner


def test_dashboard_shows_the_credit_balance(client, owner):
    from billing.services import credits_grant

    credits_grant(user=owner, amount=42, idempotency_key="t:42")
    client.force_login(owner)
    assert ">42<" in client.get("/").content.decode()


def test_admin_user_page_shows_balance_and_quota(client, staff_user, owner):
    client.force_login(staff_user)
    body = client.get(f"/admin/accounts/user/{owner.pk}/change/").content.decode()
    assert "Credits and quota" in body and "monthly_quota_usd" in body
    assert 'name="credit_balance"' not in body  # read-only: only the ledger moves it
