import pytest

from cohorta.accounts.services import api_token_create, api_token_revoke
from cohorta.jobs.models import Job, JobState
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_start_worker_check_returns_202_and_runs(owner_api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_api.post("/api/v1/jobs/worker-check/", {"steps": 2, "step_seconds": 0}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["kind"] == "worker_check" and body["state"] == "pending"
    detail = owner_api.get(f"/api/v1/jobs/{body['id']}/").json()
    assert detail["state"] == "done" and detail["percent"] == 100 and detail["progress_done"] == 2


def test_malformed_json_is_400_with_the_error_shape(owner_api):
    response = owner_api.post("/api/v1/jobs/worker-check/", data='{"steps": 2,', content_type="application/json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "malformed_request" and "parsed" in error["message"]


def test_wrong_types_are_400_with_field_errors(owner_api):
    response = owner_api.post("/api/v1/jobs/worker-check/", {"steps": "many", "step_seconds": 99}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"steps", "step_seconds"}
    assert not Job.objects.exists()


def test_a_json_list_body_is_a_validation_error_not_a_500(owner_api):
    response = owner_api.post("/api/v1/jobs/worker-check/", [1, 2], format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_wrong_content_type_is_415(owner_api):
    response = owner_api.post("/api/v1/jobs/worker-check/", "steps=2", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize("job_id", ["5f0c6a52-8a3e-4c1f-9a51-1d2b3c4d5e6f", "not-a-uuid", "0"])
def test_unknown_job_is_404(owner_api, job_id):
    response = owner_api.get(f"/api/v1/jobs/{job_id}/")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


@pytest.mark.parametrize("suffix", ["", "cancel/", "retry/"])
def test_another_users_job_is_404(owner_api, other_user, suffix):
    theirs = JobFactory(owner=other_user, state=JobState.FAILED)
    method = owner_api.get if suffix == "" else owner_api.post
    assert method(f"/api/v1/jobs/{theirs.pk}/{suffix}").status_code == 404
    assert Job.objects.get(pk=theirs.pk).state == JobState.FAILED


def test_list_shows_only_own_jobs_and_filters(owner_api, owner, other_user):
    mine_done = JobFactory(owner=owner, state=JobState.DONE)
    JobFactory(owner=owner)
    JobFactory(owner=other_user)
    body = owner_api.get("/api/v1/jobs/").json()
    assert body["count"] == 2
    filtered = owner_api.get("/api/v1/jobs/?state=done").json()
    assert [job["id"] for job in filtered["results"]] == [str(mine_done.pk)]


def test_cancel_and_illegal_cancel(owner_api, owner):
    job = JobFactory(owner=owner)
    response = owner_api.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    again = owner_api.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "illegal_transition"
    assert Job.objects.get(pk=job.pk).state == JobState.CANCELLED


def test_retry_of_a_done_job_is_409(owner_api, owner):
    job = JobFactory(owner=owner, state=JobState.DONE)
    assert owner_api.post(f"/api/v1/jobs/{job.pk}/retry/").status_code == 409


def test_unauthenticated_is_401(api_client):
    response = api_client.get("/api/v1/jobs/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_token_auth_works_and_revoked_token_is_401(api_client, owner):
    token, raw = api_token_create(user=owner, name="script")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api_client.get("/api/v1/me/").json()["email"] == "owner@example.com"
    api_token_revoke(token=token)
    response = api_client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_token_of_a_disabled_user_is_401(api_client, owner, owner_token):
    owner.is_active = False
    owner.save()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner_token}")
    assert api_client.get("/api/v1/me/").status_code == 401


def test_malformed_authorization_header_is_401(api_client, owner):
    api_client.credentials(HTTP_AUTHORIZATION="Basic abc")
    assert api_client.get("/api/v1/me/").status_code == 401


def test_disabled_users_session_no_longer_works(client, owner):
    client.force_login(owner)
    assert client.get("/api/v1/me/").status_code == 200
    owner.is_active = False
    owner.save()
    assert client.get("/api/v1/me/").status_code in (401, 403)


def test_unknown_api_url_is_json_404(owner_api):
    response = owner_api.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_tokens_are_stored_hashed(owner):
    token, raw = api_token_create(user=owner, name="x")
    assert raw not in token.key_hash and raw.startswith("coh_") and len(raw) > 40
