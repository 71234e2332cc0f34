"""Secret canaries: fake keys in settings must never reach a response body, a stored
error, or a log line, across failures forced on purpose.

Logs are read from the project's configured console handler (its filters included),
by pointing that handler at a buffer for the test.
"""

import io
import logging

import pytest
from django.test import Client
from rest_framework.test import APIClient

from billing.services import credits_grant
from cohorta.jobs.models import Job

OPENAI_CANARY = "sk-canary-openai-0123456789abcdefCANARY"
SECRET_KEY_CANARY = "canary-django-secret-key-" + "q" * 40

# Jobs are dispatched on commit.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def console_log():
    """What the configured console handler writes during the test."""
    handlers = [h for h in logging.getLogger().handlers if getattr(h, "name", "") == "console"]
    assert handlers, "the console handler from settings.LOGGING is not installed"
    handler = handlers[0]
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


@pytest.fixture
def canaries(settings, fake_llm):
    settings.OPENAI_API_KEY = OPENAI_CANARY  # the fake server wants "test-key": every call is a 401
    settings.SECRET_KEY = SECRET_KEY_CANARY
    return [OPENAI_CANARY, SECRET_KEY_CANARY]


def _assert_clean(canaries, *texts):
    for text in texts:
        for canary in canaries:
            assert canary not in text


def test_a_provider_error_that_echoes_the_key_leaks_nowhere(canaries, settings, fake_llm, owner, console_log):
    # A provider that echoes the key back in its error message, as some do.
    settings.OPENAI_API_KEY = "test-key"
    fake_llm.add_fault("server_error", times=20, status=500, message=f"upstream failed for key {OPENAI_CANARY}")
    credits_grant(user=owner, amount=50, idempotency_key="canary-grant")
    api = APIClient()
    api.force_authenticate(owner)

    response = api.post("/api/v1/personas/generate/", {"description": "Urban cyclists", "count": 2}, format="json")
    assert response.status_code == 202
    job_id = response.json()["job"]["id"]
    job = Job.objects.get(pk=job_id)
    detail = api.get(f"/api/v1/jobs/{job_id}/")
    page = Client()
    page.force_login(owner)
    listing = page.get("/jobs/")

    assert job.state == "failed", job.state
    _assert_clean(
        canaries,
        response.content.decode(),
        detail.content.decode(),
        listing.content.decode(),
        job.error or "",
        str(job.result),
        console_log.getvalue(),
    )


def test_a_wrong_key_failure_leaks_nowhere(canaries, owner, console_log):
    credits_grant(user=owner, amount=50, idempotency_key="canary-grant-2")
    api = APIClient()
    api.force_authenticate(owner)
    response = api.post("/api/v1/personas/generate/", {"description": "Night-shift nurses", "count": 1}, format="json")
    job = Job.objects.get(pk=response.json()["job"]["id"])
    detail = api.get(f"/api/v1/jobs/{job.pk}/")
    assert job.state == "failed"
    _assert_clean(canaries, detail.content.decode(), job.error or "", console_log.getvalue())


@pytest.mark.parametrize("path", ["/personas/", "/api/v1/personas/"])
def test_an_unhandled_exception_holding_a_secret_leaks_nowhere(canaries, owner, console_log, monkeypatch, path):
    from personas import selectors

    def explode(*args, **kwargs):
        raise RuntimeError(f"database said no to {OPENAI_CANARY} and {SECRET_KEY_CANARY}")

    # The one reader both the library page and the API list go through.
    monkeypatch.setattr(selectors, "personas_for_user", explode)

    if path.startswith("/api/"):
        client = APIClient(raise_request_exception=False)
        client.force_authenticate(owner)
    else:
        client = Client(raise_request_exception=False)
        client.force_login(owner)
    response = client.get(path)

    assert response.status_code == 500, "the forced failure did not happen: the test must patch the right reader"
    assert "database said no" in console_log.getvalue(), "the failure was not logged"
    _assert_clean(canaries, response.content.decode(), console_log.getvalue())
