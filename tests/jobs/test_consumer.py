import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from cohorta.jobs import services
from cohorta.jobs.events import publish_job_update
from cohorta.jobs.models import JobState
from config.asgi import application
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _token_socket(raw_token: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, "/ws/jobs/", headers=[(b"authorization", f"Bearer {raw_token}".encode())])


@database_sync_to_async
def _cookie_socket(user, origin: bytes = b"http://localhost") -> WebsocketCommunicator:
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    return WebsocketCommunicator(application, "/ws/jobs/", headers=[(b"cookie", cookie), (b"origin", origin)])


async def _receive_until(communicator, predicate, timeout=3.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        message = await communicator.receive_json_from(timeout=max(0.01, remaining))
        if predicate(message):
            return message


async def test_anonymous_socket_is_refused():
    communicator = WebsocketCommunicator(application, "/ws/jobs/", headers=[(b"origin", b"http://localhost")])
    connected, code = await communicator.connect()
    assert not connected and code == 4401


async def test_bad_token_is_refused():
    connected, _code = await _token_socket("coh_not-a-real-token").connect()
    assert not connected


async def test_cookie_socket_from_a_foreign_origin_is_refused(owner):
    connected, _ = await (await _cookie_socket(owner, origin=b"http://evil.example")).connect()
    assert not connected


async def test_owner_gets_snapshot_then_live_progress(owner, owner_token):
    existing = await database_sync_to_async(JobFactory)(owner=owner)
    communicator = _token_socket(owner_token)
    connected, _ = await communicator.connect()
    assert connected
    snapshot = await communicator.receive_json_from()
    assert snapshot["type"] == "jobs.snapshot"
    assert [job["id"] for job in snapshot["jobs"]] == [str(existing.pk)]

    await database_sync_to_async(services.job_transition)(job=existing, to=JobState.QUEUED)
    update = await _receive_until(communicator, lambda m: m["type"] == "job.update")
    assert update["job"]["id"] == str(existing.pk) and update["job"]["state"] == "queued"
    await communicator.disconnect()


async def test_session_cookie_socket_works(owner):
    communicator = await _cookie_socket(owner)
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "jobs.snapshot"
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_other_users_jobs_never_reach_the_socket(owner, other_user, owner_token):
    communicator = _token_socket(owner_token)
    await communicator.connect()
    await communicator.receive_json_from()  # snapshot
    theirs = await database_sync_to_async(JobFactory)(owner=other_user)
    await database_sync_to_async(publish_job_update)(theirs.pk)
    # A forged event into the owner's group carrying someone else's job is dropped too.
    await get_channel_layer().group_send(
        f"user.{owner.pk}", {"type": "job.update", "owner_id": other_user.pk, "job": {"id": str(theirs.pk)}}
    )
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_disabled_user_is_disconnected_on_next_event(owner, owner_token):
    communicator = _token_socket(owner_token)
    await communicator.connect()
    await communicator.receive_json_from()
    job = await database_sync_to_async(JobFactory)(owner=owner)
    owner.is_active = False
    await database_sync_to_async(owner.save)(update_fields=["is_active"])
    await database_sync_to_async(publish_job_update)(job.pk)
    output = await communicator.receive_output(timeout=2)
    assert output == {"type": "websocket.close", "code": 4403}
