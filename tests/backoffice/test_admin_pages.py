"""The dashboard, branding, jobs, personas and focus groups in the admin."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from cohorta.jobs.models import JobState
from focusgroups.models import FocusGroup
from personas.models import Persona
from tests.backoffice.conftest import make_event
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_dashboard_shows_todays_numbers_and_links_to_analytics(staff_client, owner):
    make_event(user=owner, cost="3.21")
    JobFactory(owner=owner, state=JobState.FAILED, error="boom")
    response = staff_client.get(reverse("admin:index"))
    body = response.content.decode()
    assert "Cohorta" in body and "back office" in body  # branding
    assert "LLM cost today" in body and "$3.21" in body
    assert "Top spenders this month" in body and owner.email in body
    assert "1 failed" in body
    for name in ("analytics", "analytics_margin", "analytics_focus_groups"):
        assert reverse(f"admin:{name}") in body
    assert "Users" in body and reverse("admin:accounts_user_changelist") in body  # the app list is still there


def test_jobs_list_shows_progress_and_error_and_cancels_through_services(staff_client, owner):
    failed = JobFactory(owner=owner, state=JobState.FAILED, error="The model refused", progress_done=1)
    pending = JobFactory(owner=owner, state=JobState.PENDING)
    body = staff_client.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert "The model refused" in body and "bo-progress" in body
    assert reverse("admin:accounts_user_change", args=[owner.pk]) in body
    url = reverse("admin:jobs_job_changelist")
    staff_client.post(url, {"action": "cancel_jobs", ACTION_CHECKBOX_NAME: [pending.pk, failed.pk]})
    pending.refresh_from_db()
    failed.refresh_from_db()
    assert pending.state == JobState.CANCELLED and failed.state == JobState.FAILED  # a failed job cannot be cancelled


def test_jobs_retry_action(staff_client, owner, settings):
    failed = JobFactory(owner=owner, state=JobState.FAILED, error="boom")
    url = reverse("admin:jobs_job_changelist")
    response = staff_client.post(url, {"action": "retry_jobs", ACTION_CHECKBOX_NAME: [failed.pk]}, follow=True)
    failed.refresh_from_db()
    assert failed.state != JobState.FAILED and failed.error == ""
    assert "1 job(s) updated" in response.content.decode()


def test_personas_and_focus_groups_link_to_their_owner_and_search(staff_client, owner):
    Persona.objects.create(owner=owner, name="Maya Fernandes", age=34)
    fg = FocusGroup.objects.create(owner=owner, title="Oat milk launch", objective="x")
    make_event(user=owner, cost="0.5", focus_group_id=fg.pk)
    owner_url = reverse("admin:accounts_user_change", args=[owner.pk])
    personas = staff_client.get(reverse("admin:personas_persona_changelist") + "?q=Maya")
    assert personas.context["cl"].result_count == 1 and owner_url in personas.content.decode()
    groups = staff_client.get(reverse("admin:focusgroups_focusgroup_changelist") + "?q=oat")
    body = groups.content.decode()
    assert groups.context["cl"].result_count == 1 and owner_url in body and "$0.5000" in body


def test_the_index_names_each_app_group_once(staff_client):
    import re

    html = staff_client.get("/admin/").content.decode()
    groups = re.findall(r'<caption>\s*<a [^>]*class="section"[^>]*>([^<]+)</a>', html)
    assert groups and len(groups) == len(set(groups)), groups
    assert "Sign-in email addresses (allauth)" in groups
