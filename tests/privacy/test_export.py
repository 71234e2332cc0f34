import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from cohorta.audit.models import AuditEntry
from cohorta.jobs.models import Job, JobState
from privacy import services
from privacy.models import DataExport
from tests.privacy.conftest import PNG

pytestmark = pytest.mark.django_db


def _export(client, django_capture_on_commit_callbacks) -> Job:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/me/export/")
    assert response.status_code == 202, response.content
    assert response.json()["kind"] == "account_export"
    return Job.objects.get(pk=response.json()["id"])


def _zip(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_export_zip_holds_all_my_data_and_nothing_of_anyone_else(
    rich_account, owner_api, django_capture_on_commit_callbacks
):
    job = _export(owner_api, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.state == JobState.DONE, job.error
    assert job.progress_done == job.progress_total > 5  # progress was reported step by step
    assert job.result["download_url"] == f"/api/v1/me/export/{job.pk}/download/"

    response = owner_api.get(job.result["download_url"])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"] and ".zip" in response["Content-Disposition"]
    assert response["Cache-Control"] == "private, no-store"
    archive = _zip(response)
    names = set(archive.namelist())
    for expected in (
        "manifest.json",
        "README.txt",
        "profile.json",
        "folders.json",
        "personas.json",
        "persona_briefs.json",
        "credit_ledger.json",
        "usage_events.json",
        "jobs.json",
        "account_history.json",
    ):
        assert expected in names

    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["format"] == "cohorta.account_export"
    assert set(manifest["files"]) == names

    profile = json.loads(archive.read("profile.json"))
    assert profile["email"] == "owner@example.com" and profile["credit_balance"] == 70
    assert [t["name"] for t in profile["api_tokens"]] == ["notebook"]
    assert "key_hash" not in json.dumps(profile)  # never the token's hash, never a 2FA secret
    assert "not-a-real-secret" not in json.dumps(profile)
    assert profile["two_factor"][0]["type"] == "totp"
    assert [(a["provider"], a["uid"]) for a in profile["single_sign_on"]] == [("okta", "okta-user-42")]

    personas = json.loads(archive.read("personas.json"))
    assert len(personas) == 5 and manifest["counts"]["personas"] == 5
    priya = next(p for p in personas if p["profile"]["name"] == "Priya Shah")
    assert [v["number"] for v in priya["versions"]] == [1, 2]
    assert priya["profile"]["quote"] == "Fewer bottles, same clean."
    assert priya["folder"]["name"] == "Household cleaning (UK)"
    assert json.loads(archive.read("folders.json"))[0]["name"] == "Household cleaning (UK)"

    sessions = [n for n in names if n.startswith("sessions/")]
    assert len(sessions) == 1
    session = json.loads(archive.read(sessions[0]))
    assert session["session"]["title"] == "Refill pouches for household cleaners"
    assert len(session["participants"]) == 4
    assert session["guide"]["data"]["sections"][0]["title"] == "Cleaning habits today"
    assert len(session["messages"]) == 19
    assert len(session["themes"]) == 5 and session["report"]["executive_summary"]
    assert session["assets"][0]["filename"] == "shelf photo.png"

    image = f"files/sessions/{rich_account.focus_group.pk}/{rich_account.asset.pk}-shelf_photo.png"
    assert archive.read(image) == PNG

    ledger = json.loads(archive.read("credit_ledger.json"))
    assert sum(row["delta"] for row in ledger) == 70 and {row["kind"] for row in ledger} >= {"grant", "spend"}
    usage = json.loads(archive.read("usage_events.json"))
    assert len(usage) == 2 and {u["input_tokens"] for u in usage} == {1200, 3400}
    assert any(j["kind"] == "session_analysis" for j in json.loads(archive.read("jobs.json")))
    history = json.loads(archive.read("account_history.json"))
    assert [h["action"] for h in history] == ["data_export"] and history[0]["by"] == "you"

    everything = b"".join(archive.read(name) for name in names)
    assert b"Oscar" not in everything and b"other@example.com" not in everything


def test_export_file_is_private_random_and_under_media_root(
    rich_account, owner_api, django_capture_on_commit_callbacks
):
    job = _export(owner_api, django_capture_on_commit_callbacks)
    export = DataExport.objects.get(job=job)
    assert export.file.startswith(f"private/exports/{rich_account.user.pk}/")
    stem = Path(export.file).stem
    assert len(stem) >= 30 and "owner" not in export.file  # random, nothing guessable
    assert (Path(settings.MEDIA_ROOT) / export.file).is_file()
    assert export.expires_at - export.ready_at == timedelta(days=7)


def test_another_user_cannot_download_my_export(
    rich_account, owner_api, other_user, client, django_capture_on_commit_callbacks
):
    job = _export(owner_api, django_capture_on_commit_callbacks)
    theirs = APIClient()
    theirs.force_authenticate(other_user)
    assert theirs.get(f"/api/v1/me/export/{job.pk}/download/").status_code == 404
    assert APIClient().get(f"/api/v1/me/export/{job.pk}/download/").status_code == 401
    client.force_login(other_user)
    assert client.get(f"/settings/data/exports/{job.pk}/download/").status_code == 404
    assert owner_api.get("/api/v1/me/export/not-a-uuid/download/").status_code == 404


def test_export_by_api_token_and_the_audit_trail(rich_account, django_capture_on_commit_callbacks):
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {rich_account.token}")
    job = _export(api, django_capture_on_commit_callbacks)
    assert api.get(f"/api/v1/me/export/{job.pk}/download/").status_code == 200
    entry = AuditEntry.objects.get(action=AuditEntry.Action.DATA_EXPORT)
    assert entry.subject_user == rich_account.user and entry.after == {"job_id": str(job.pk)}


def test_asking_twice_while_one_is_running_returns_the_same_job(owner, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # keep it waiting in the broker
    first = services.data_export_start(user=owner)
    assert services.data_export_start(user=owner) == first
    assert DataExport.objects.filter(owner=owner).count() == 1


def test_download_before_it_is_ready_says_so(owner, owner_api):
    job = services.data_export_start(user=owner)  # on_commit never runs here: the job stays pending
    response = owner_api.get(f"/api/v1/me/export/{job.pk}/download/")
    assert response.status_code == 409 and response.json()["error"]["code"] == "export_not_ready"


def test_a_new_export_replaces_the_old_one_and_expired_ones_are_purged(
    rich_account, owner_api, django_capture_on_commit_callbacks
):
    first = DataExport.objects.get(job=_export(owner_api, django_capture_on_commit_callbacks))
    second = DataExport.objects.get(job=_export(owner_api, django_capture_on_commit_callbacks))
    first.refresh_from_db()
    assert first.removed_at is not None and not (Path(settings.MEDIA_ROOT) / (first.file or "x")).exists()
    assert owner_api.get(f"/api/v1/me/export/{first.job_id}/download/").status_code == 410

    path = Path(settings.MEDIA_ROOT) / second.file
    assert services.data_exports_purge() == 0  # nothing is old yet
    assert services.data_exports_purge(now=timezone.now() + timedelta(days=8)) == 1
    assert not path.exists()
    second.refresh_from_db()
    assert second.removed_at is not None and second.file == ""
    response = owner_api.get(f"/api/v1/me/export/{second.job_id}/download/")
    assert response.status_code == 410 and response.json()["error"]["code"] == "export_expired"
    assert services.data_exports_purge(now=timezone.now() + timedelta(days=8)) == 0  # idempotent


def test_purge_removes_orphaned_files_once_they_are_old(owner):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    name = default_storage.save(f"private/exports/{owner.pk}/orphan.zip", ContentFile(b"zip"))
    assert services.data_exports_purge() == 0
    assert services.data_exports_purge(now=timezone.now() + timedelta(days=8)) == 1
    assert not default_storage.exists(name)


def test_cancelled_export_stores_nothing(owner, django_capture_on_commit_callbacks, monkeypatch):
    from cohorta.jobs.errors import JobCancelled

    def cancelled(*args, **kwargs):
        raise JobCancelled("stop")

    monkeypatch.setattr("privacy.exports.profile_data", cancelled)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.data_export_start(user=owner)
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert not (Path(settings.MEDIA_ROOT) / "private" / "exports" / str(owner.pk)).exists() or not any(
        (Path(settings.MEDIA_ROOT) / "private" / "exports" / str(owner.pk)).iterdir()
    )


# --- the settings page ---------------------------------------------------------------------------


def test_your_data_page_starts_an_export_and_offers_the_download(
    rich_account, client, django_capture_on_commit_callbacks
):
    client.force_login(rich_account.user)
    page = client.get("/settings/data/").content.decode()
    assert "Export my data" in page and "Delete account" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/settings/data/export/")
    assert response.status_code == 302
    job = Job.objects.get(owner=rich_account.user, kind="account_export")
    status = client.get("/settings/data/status/").content.decode()
    assert "Your export is ready" in status and f"/settings/data/exports/{job.pk}/download/" in status
    download = client.get(f"/settings/data/exports/{job.pk}/download/")
    assert download.status_code == 200 and "profile.json" in _zip(download).namelist()


def test_your_data_page_shows_progress_while_it_runs(owner, client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    client.force_login(owner)
    response = client.post("/settings/data/export/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Preparing your export" in html and "every 2s" in html
