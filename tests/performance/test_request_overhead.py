"""Per-request work done once (issue #22): the token lookup, the rate limit's counters and their Redis pool."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers
from rest_framework.test import APIClient

from cohorta.accounts.models import ApiToken
from cohorta.accounts.services import api_token_create, api_token_revoke
from cohorta.api import throttling
from config import settings as project_settings
from personas.serializers import PersonaSerializer
from tests.personas.factories import PersonaFactory

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/"


def _client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _token_queries(captured) -> list[str]:
    return [q["sql"] for q in captured if "accounts_apitoken" in q["sql"]]


# --- the token lookup ------------------------------------------------------------------------------------


def test_a_token_costs_one_query_and_last_used_is_written_once_a_minute(owner):
    token, raw = api_token_create(user=owner, name="script")
    client = _client(raw)
    with CaptureQueriesContext(connection) as first:
        assert client.get(ME).status_code == 200
    lookups = _token_queries(first)
    # The lookup (the user joined in) and, the first time, the write of last_used_at.
    assert len(lookups) == 2 and "JOIN" in lookups[0] and lookups[1].startswith("UPDATE")
    # The write matches only while last_used_at is still old: concurrent requests do not all write it.
    assert "last_used_at" in lookups[1].split("WHERE", 1)[1]
    token.refresh_from_db()
    assert token.last_used_at is not None

    with CaptureQueriesContext(connection) as again:
        assert client.get(ME).status_code == 200
    assert len(_token_queries(again)) == 1  # within the minute: read only

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(seconds=61))
    with CaptureQueriesContext(connection) as later:
        assert client.get(ME).status_code == 200
    assert [sql.split()[0] for sql in _token_queries(later)] == ["SELECT", "UPDATE"]
    token.refresh_from_db()
    assert timezone.now() - token.last_used_at < timedelta(seconds=5)


def test_revoked_tokens_and_disabled_users_still_get_401(owner):
    token, raw = api_token_create(user=owner, name="script")
    client = _client(raw)
    assert client.get(ME).status_code == 200
    api_token_revoke(token=token)
    assert client.get(ME).status_code == 401
    _, raw = api_token_create(user=owner, name="second")
    owner.is_active = False
    owner.save()
    assert _client(raw).get(ME).status_code == 401


# --- rate limits -------------------------------------------------------------------------------------------


@pytest.fixture
def three_a_minute(monkeypatch):
    # DRF reads its settings once; the throttle classes read the rates at class creation.
    monkeypatch.setattr(throttling.UserRateThrottle, "THROTTLE_RATES", {"user": "3/min", "anon": "3/min"})
    monkeypatch.setattr(throttling.AnonRateThrottle, "THROTTLE_RATES", {"user": "3/min", "anon": "3/min"})


def test_the_user_limit_refuses_the_request_over_it_and_says_when_to_retry(owner, three_a_minute):
    _, raw = api_token_create(user=owner, name="script")
    client = _client(raw)
    statuses = [client.get(ME).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get(ME)
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60


def test_each_user_has_their_own_count(owner, other_user, three_a_minute):
    _, mine = api_token_create(user=owner, name="mine")
    _, theirs = api_token_create(user=other_user, name="theirs")
    assert [_client(mine).get(ME).status_code for _ in range(4)][-1] == 429
    assert _client(theirs).get(ME).status_code == 200


def test_the_previous_window_still_counts_for_the_part_that_overlaps(owner, three_a_minute, monkeypatch):
    """Two requests at the end of one minute, then more at the start of the next: the sliding estimate
    (2 × the share of the previous minute still inside the last 60 s, + this minute's) decides."""
    _, raw = api_token_create(user=owner, name="script")
    client = _client(raw)
    now = [6000.0 + 59.0]
    monkeypatch.setattr(throttling.UserRateThrottle, "timer", lambda self: now[0])
    assert [client.get(ME).status_code for _ in range(2)] == [200, 200]
    now[0] = 6000.0 + 60.0 + 1.0  # 1 s into the next minute: 2 × 59/60 + 1 = 2.97, then 3.97
    assert [client.get(ME).status_code for _ in range(2)] == [200, 429]
    now[0] = 6000.0 + 120.0 + 30.0  # half-way through the one after: 2 × 1/2 + 1 = 2
    assert client.get(ME).status_code == 200


@pytest.mark.service
@pytest.mark.django_db(transaction=True)
def test_requests_in_fresh_contexts_share_one_redis_pool_and_connection(owner, settings, three_a_minute):
    """Under ASGI every request runs in a new context, which gets its own cache backend: with the project's
    cache settings, every backend and the rate limit use the process's one pool, and a second request
    opens no connection."""
    prefix = f"test-pool-{uuid.uuid4().hex[:8]}"
    settings.CACHES = {"default": {**project_settings.CACHES["default"], "KEY_PREFIX": prefix}}
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    _, raw = api_token_create(user=owner, name="script")
    seen = []

    def request() -> None:
        # A new thread starts with an empty context, as an ASGI request does.
        response = _client(raw).get(ME)
        backend = caches["default"]
        backend.get("warm")
        cache_pool = backend._cache._get_connection_pool(write=True)
        throttle_pool = throttling._redis().connection_pool
        seen.append((response.status_code, id(backend), cache_pool, throttle_pool, throttle_pool._created_connections))

    for _ in range(2):
        thread = threading.Thread(target=request)
        thread.start()
        thread.join()
    (status_a, backend_a, cache_a, throttle_a, made_a), (status_b, backend_b, cache_b, throttle_b, made_b) = seen
    assert status_a == status_b == 200
    assert backend_a != backend_b  # Django did build a backend per context...
    assert cache_a is cache_b and throttle_a is throttle_b  # ...on one pool
    assert made_b == made_a  # the second request reused the first one's connection
    keys = throttling._redis().keys(f"{prefix}:*throttle_user_*")
    assert keys and int(throttling._redis().get(keys[0])) == 2  # both requests were counted, in Redis
    throttling._redis().delete(*keys)


@pytest.mark.service
def test_the_cache_keeps_one_redis_client_for_its_pool(settings):
    """Django's Redis cache builds a client for every call (13% of a cached page under load); the project's
    keeps one per pool, shared by every call and thread."""
    settings.CACHES = {
        "default": {**project_settings.CACHES["default"], "KEY_PREFIX": f"test-client-{uuid.uuid4().hex[:8]}"}
    }
    backend = caches["default"]
    clients = []
    for _ in range(2):
        thread = threading.Thread(target=lambda: clients.append(backend._cache.get_client(write=True)))
        thread.start()
        thread.join()
    backend.set("one", 1)
    assert clients[0] is clients[1] is backend._cache.get_client() and backend.get("one") == 1


# --- serializers -------------------------------------------------------------------------------------------


def test_a_persona_serializer_introspects_the_model_once_and_each_instance_gets_its_own_fields(owner, monkeypatch):
    persona = PersonaFactory(owner=owner)
    first = PersonaSerializer(persona).data
    monkeypatch.setattr(
        serializers.ModelSerializer, "build_field", lambda *a, **k: pytest.fail("the model was introspected again")
    )
    one, two = PersonaSerializer(persona), PersonaSerializer(persona)
    assert one.data == first == two.data
    assert one.fields["name"] is not two.fields["name"] and one.fields["name"].parent is one
