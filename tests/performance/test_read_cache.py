"""Cached API reads: served again only while nothing they read has changed, whoever or whatever wrote it."""

import re
import threading
import time
import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.core.cache import cache, caches
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import resolve, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from cohorta import read_cache
from cohorta.accounts.models import ApiToken
from cohorta.accounts.services import api_token_create, api_token_revoke, user_set_active
from cohorta.api import throttling
from config import settings as project_settings
from focusgroups.models import FocusGroup
from personas.models import Persona
from personas.services import persona_create, persona_delete
from usage.quotas import banner_cache_key, quota_banner_payload, quota_status

# Committed writes are what move versions: a test's own transaction would hide them (and turns the cache off).
pytestmark = pytest.mark.django_db(transaction=True)

LIST = "/api/v1/personas/"


def make(owner, name, age=30):
    return persona_create(owner=owner, data={"name": name, "age": age, "occupation": "Nurse"})


def names(client, url=LIST):
    return sorted(p["name"] for p in client.get(url).json()["results"])


def persona_queries(client, url=LIST) -> tuple[int, dict]:
    """How many queries of a GET read the personas table, and its body."""
    with CaptureQueriesContext(connection) as queries:
        body = client.get(url).json()
    return sum('"personas_persona"' in q["sql"] for q in queries.captured_queries), body


def warm(client, url=LIST):
    client.get(url)  # learns what the view reads
    client.get(url)  # stores it


def test_a_repeated_read_is_served_from_the_cache_with_the_same_body(owner, owner_api):
    make(owner, "Priya Shah")
    read_first, first = persona_queries(owner_api)
    assert read_first > 0
    owner_api.get(LIST)
    read_again, again = persona_queries(owner_api)
    assert read_again == 0 and again == first
    # A different query string is another response.
    assert owner_api.get(LIST + "?q=nobody").json()["results"] == []


@pytest.fixture
def local_copies(monkeypatch):
    """This process's copies of cached reads, starting empty (as in a new process)."""
    monkeypatch.setattr(read_cache, "_LOCAL", {})


def _entry_keys() -> list[str]:
    return list(read_cache._LOCAL)


def test_a_process_serves_its_own_copy_while_the_versions_hold_then_reads_again(owner, owner_api, local_copies):
    make(owner, "Priya Shah")
    warm(owner_api)
    [key] = _entry_keys()
    cache.delete(key)  # only this process's copy is left: the versions alone say it is current
    read, body = persona_queries(owner_api)
    assert read == 0 and [p["name"] for p in body["results"]] == ["Priya Shah"]
    make(owner, "Tom Reed")  # a write moves the personas' version: the copy no longer matches
    read, body = persona_queries(owner_api)
    assert read > 0 and sorted(p["name"] for p in body["results"]) == ["Priya Shah", "Tom Reed"]


def test_a_copy_stored_by_another_process_is_fetched_once_then_kept(owner, owner_api, local_copies):
    make(owner, "Priya Shah")
    warm(owner_api)
    [key] = _entry_keys()
    stored = read_cache._LOCAL.pop(key)  # as in a process that has not served this read yet
    assert persona_queries(owner_api)[0] == 0
    assert read_cache._LOCAL[key] == stored


def test_copies_count_each_entry_once_and_are_cleared_when_over_their_size(monkeypatch, local_copies):
    monkeypatch.setattr(read_cache, "_LOCAL_SIZE", [0])
    monkeypatch.setattr(read_cache, "_LOCAL_LIMIT_BYTES", 250)
    entry = ([], [], (), "application/json", b"x" * 100, time.time())
    for _ in range(2):  # the same read stored again takes its size once
        read_cache._keep_local("a", entry)
    assert (list(read_cache._LOCAL), read_cache._LOCAL_SIZE[0]) == (["a"], 100)
    read_cache._keep_local("b", entry)
    read_cache._keep_local("c", entry)  # over the limit: start over with this one
    assert (list(read_cache._LOCAL), read_cache._LOCAL_SIZE[0]) == (["c"], 100)


def test_a_kept_copy_is_not_served_past_the_cache_lifetime(owner, owner_api, monkeypatch, local_copies):
    make(owner, "Priya Shah")
    warm(owner_api)
    [key] = _entry_keys()
    cache.delete(key)
    later = time.time() + settings.READ_CACHE_SECONDS + 1
    monkeypatch.setattr(read_cache.time, "time", lambda: later)
    assert persona_queries(owner_api)[0] > 0


def test_a_read_inside_a_transaction_is_never_cached(owner, owner_api):
    make(owner, "Priya Shah")
    warm(owner_api)
    with transaction.atomic():
        Persona.objects.filter(owner=owner).update(name="Changed In Transaction")
        # Uncommitted: no version has moved, so a cached answer would be the old one.
        assert names(owner_api) == ["Changed In Transaction"]
        transaction.set_rollback(True)
    assert names(owner_api) == ["Priya Shah"]


def _raw_sql(owner):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE personas_persona SET name = %s WHERE owner_id = %s", ["Tom Reed", owner.pk])


def _update(owner):
    Persona.objects.filter(owner=owner).update(name="Tom Reed")


def _save(owner):
    persona = Persona.objects.get(owner=owner)
    persona.name = "Tom Reed"
    persona.save()


def _in_a_transaction(owner):
    with transaction.atomic():
        Persona.objects.filter(owner=owner, name="Nobody").delete()  # reads and writes nothing
        _update(owner)


def _after_a_rolled_back_savepoint(owner):
    with transaction.atomic():
        try:
            with transaction.atomic():
                make(owner, "Never Saved")
                raise RuntimeError
        except RuntimeError:
            pass
        _update(owner)  # its bump must not have gone with the savepoint's


def _from_another_thread(owner):
    """As a worker would: its own connection."""

    def write():
        try:
            _update(owner)
        finally:
            connection.close()

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()


def _replace(owner):
    persona_delete(persona=Persona.objects.get(owner=owner))
    make(owner, "Tom Reed")


@pytest.mark.parametrize(
    "write",
    [_save, _update, _raw_sql, _in_a_transaction, _after_a_rolled_back_savepoint, _from_another_thread, _replace],
)
def test_every_kind_of_committed_write_shows_on_the_next_read(owner, owner_api, write):
    make(owner, "Priya Shah")
    warm(owner_api)
    assert persona_queries(owner_api)[0] == 0  # served from the cache
    write(owner)
    assert names(owner_api) == ["Tom Reed"]


def test_the_detail_of_an_edited_persona_is_read_again(owner, owner_api):
    persona = make(owner, "Priya Shah")
    url = f"/api/v1/personas/{persona.pk}/"
    warm(owner_api, url)
    assert owner_api.get(url).json()["age"] == 30
    Persona.objects.filter(pk=persona.pk).update(age=41)
    assert owner_api.get(url).json()["age"] == 41


def test_a_cached_read_is_only_ever_served_to_whoever_it_was_made_for(owner, other_user, owner_api, api_client):
    persona = make(owner, "Priya Shah")
    detail = f"/api/v1/personas/{persona.pk}/"
    warm(owner_api)
    warm(owner_api, detail)
    api_client.force_authenticate(other_user)
    assert names(api_client) == []  # the same URL, their own (empty) library
    assert api_client.get(detail).status_code == 404
    api_client.force_authenticate(None)
    assert api_client.get(LIST).status_code in (401, 403)


def test_a_migrate_makes_every_cached_read_stale(owner, owner_api):
    make(owner, "Priya Shah")
    warm(owner_api)
    assert persona_queries(owner_api)[0] == 0
    read_cache.bump_epoch()
    assert persona_queries(owner_api)[0] > 0


def test_off_means_every_read_goes_to_the_database(owner, owner_api, settings):
    settings.READ_CACHE_SECONDS = 0
    make(owner, "Priya Shah")
    warm(owner_api)
    assert persona_queries(owner_api)[0] > 0


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ('INSERT INTO "personas_persona" ("name") VALUES (%s)', {"personas_persona"}),
        ('UPDATE "focusgroups_message" SET "status" = %s', {"focusgroups_message"}),
        ('DELETE FROM "usage_usageevent" WHERE "id" = %s', {"usage_usageevent"}),
        ("update personas_persona set name = 'x'", {"personas_persona"}),
        ('SELECT "personas_persona"."id" FROM "personas_persona"', set()),
        ("SAVEPOINT s1", set()),
        ("RELEASE SAVEPOINT s1", set()),
        ('TRUNCATE "personas_persona"', {read_cache.EPOCH}),
        ("WITH moved AS (DELETE FROM personas_persona RETURNING *) SELECT 1", {read_cache.EPOCH}),
        ('ALTER TABLE "personas_persona" ADD COLUMN "x" int', {read_cache.EPOCH}),
    ],
)
def test_what_a_statement_writes(sql, tables):
    assert read_cache.written_tables(sql) == tables


def test_what_a_query_reads():
    sql = (
        'SELECT * FROM "personas_persona" INNER JOIN "personas_folder" ON (1=1) '
        'WHERE EXISTS(SELECT 1 FROM "personas_persona_tags" U0)'
    )
    assert read_cache.read_tables(sql) == {"personas_persona", "personas_folder", "personas_persona_tags"}


# --- pages ----------------------------------------------------------------------------------------------------


@pytest.fixture
def browser(owner):
    """A signed-in browser that has its CSRF cookie (a first visit sets it)."""
    client = Client()
    client.force_login(owner)
    client.get(reverse("personas:index"))
    assert client.cookies.get(settings.CSRF_COOKIE_NAME)
    return client


def page_queries(client, url) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        html = client.get(url).content.decode()
    return sum('"personas_persona"' in q["sql"] for q in queries.captured_queries), html


def test_a_page_is_served_again_until_what_it_shows_changes(owner, browser):
    url = reverse("personas:index")
    make(owner, "Priya Shah")
    warm(browser, url)
    read, html = page_queries(browser, url)
    assert read == 0 and "Priya Shah" in html
    make(owner, "Tom Reed")
    assert "Tom Reed" in browser.get(url).content.decode()


def test_the_reader_and_their_budget_in_the_page_chrome_are_never_stale(owner, browser):
    url = reverse("personas:index")
    warm(browser, url)
    type(owner).objects.filter(pk=owner.pk).update(name="Renamed Researcher")
    assert "Renamed Researcher" in browser.get(url).content.decode()
    # The budget banner lives in the cache, not in a table (an AI call crossing 80% writes it): it is part of the
    # page's key.
    owner.refresh_from_db()
    crossed = {**quota_banner_payload(quota_status(user=owner)), "warning": True, "percent": 83}
    cache.set(banner_cache_key(owner.pk), crossed, 60)
    assert "used 83% of your monthly AI budget" in browser.get(url).content.decode()


def test_a_cached_page_keeps_each_browsers_forms_valid(owner, browser):
    """The same person in two browsers: each page's CSRF token is for that browser's cookie."""
    url = reverse("personas:index")
    make(owner, "Priya Shah")
    warm(browser, url)
    other = Client(enforce_csrf_checks=True)
    other.force_login(owner)
    other.get(url)
    for client in (browser, other):
        client.handler.enforce_csrf_checks = True
        html = client.get(url).content.decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        response = client.post(reverse("personas:create"), {"csrfmiddlewaretoken": token})
        assert response.status_code != 403


def test_a_flash_message_is_shown_once_and_never_cached(owner, browser):
    url = reverse("personas:index")
    persona = make(owner, "Priya Shah")
    warm(browser, url)
    response = browser.post(reverse("personas:delete", args=[persona.pk]), follow=True)
    shown = response.content.decode()
    assert "Priya Shah" in shown  # the message naming the deleted persona
    assert "Priya Shah" not in browser.get(url).content.decode()


def test_another_user_gets_their_own_page_and_a_404_for_a_session_that_is_not_theirs(owner, other_user, browser):
    session = FocusGroup.objects.create(owner=owner, title="Meal kits", objective="Why?")
    detail = reverse("focusgroups:detail", args=[session.pk])
    make(owner, "Priya Shah")
    warm(browser, reverse("personas:index"))
    warm(browser, detail)
    intruder = Client()
    intruder.force_login(other_user)
    intruder.get(reverse("personas:index"))
    assert "Priya Shah" not in intruder.get(reverse("personas:index")).content.decode()
    assert intruder.get(detail).status_code == 404


# --- who is asking: the API token's user and the signed-in user, kept while their rows do not change --------


def table_queries(client, url, table) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    return sum(f'"{table}"' in q["sql"] for q in queries.captured_queries), response


@pytest.fixture
def token_api(owner):
    token, raw = api_token_create(user=owner, name="script")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.token = token
    return client


def test_an_api_token_is_looked_up_once_then_kept_until_the_token_or_its_user_changes(owner, token_api):
    assert token_api.get(LIST).status_code == 200  # looks it up (and writes last_used_at)
    assert token_api.get(LIST).status_code == 200  # looks it up again: its row changed
    read, response = table_queries(token_api, LIST, "accounts_apitoken")
    assert (read, response.status_code) == (0, 200)
    api_token_revoke(token=token_api.token)
    read, response = table_queries(token_api, LIST, "accounts_apitoken")
    assert read > 0 and response.status_code == 401


def test_a_kept_api_token_stops_working_as_soon_as_its_user_is_disabled(owner, token_api):
    for _ in range(3):
        token_api.get(LIST)
    user_set_active(user=owner, active=False)
    assert token_api.get(LIST).status_code == 401


def test_a_kept_api_token_still_records_when_it_was_last_used(owner, token_api):
    for _ in range(3):
        token_api.get(LIST)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    ApiToken.objects.filter(pk=token_api.token.pk).update(last_used_at=an_hour_ago)
    assert token_api.get(LIST).status_code == 200
    token_api.token.refresh_from_db()
    assert token_api.token.last_used_at > an_hour_ago + timedelta(minutes=59)


def test_the_signed_in_user_is_read_once_then_kept_until_their_row_changes(owner, browser):
    url = reverse("personas:index")
    warm(browser, url)
    read, response = table_queries(browser, url, "accounts_user")
    assert (read, response.status_code) == (0, 200)
    user_set_active(user=owner, active=False)
    read, response = table_queries(browser, url, "accounts_user")
    assert read > 0 and response.status_code == 302 and reverse("account_login") in response["Location"]


def test_a_kept_value_is_not_served_past_the_cache_lifetime(owner, browser, settings, monkeypatch):
    url = reverse("personas:index")
    warm(browser, url)
    assert table_queries(browser, url, "accounts_user")[0] == 0
    later = time.monotonic() + settings.READ_CACHE_SECONDS + 1
    monkeypatch.setattr(read_cache.time, "monotonic", lambda: later)
    # A lost version bump (Redis restarted without its data, a process killed after its commit) is bounded.
    assert table_queries(browser, url, "accounts_user")[0] > 0


def test_processes_that_learned_different_tables_for_a_view_end_up_sharing_its_entry(owner, owner_api):
    """Each process learns what a view reads from its own misses, and a table read once per process (content
    types, cached by Django after the first query) is only seen by some. Two processes taking turns must not
    overwrite each other's entry forever, each under its own list of tables."""
    make(owner, "Priya Shah")
    warm(owner_api)
    view = resolve(LIST).func.cls
    route = f"{view.__module__}.{view.__qualname__}"
    learned = {"a": read_cache._DEPENDS[route] | {"django_content_type"}, "b": read_cache._DEPENDS[route]}
    reads = []
    for turn in ["a", "b"] * 4:
        read_cache._DEPENDS[route] = learned[turn]  # this request is served by process `turn`
        reads.append(persona_queries(owner_api)[0])
        learned[turn] = read_cache._DEPENDS[route]
    assert learned["a"] == learned["b"]
    assert reads[-4:] == [0, 0, 0, 0], reads


def test_a_cached_api_read_checks_its_kept_token_in_the_same_round_trip_as_its_entry(owner, token_api, monkeypatch):
    for _ in range(3):
        assert token_api.get(LIST).status_code == 200
    calls = []
    versions = read_cache._versions
    monkeypatch.setattr(read_cache, "_versions", lambda *a, **k: calls.append(a[0]) or versions(*a, **k))
    read, response = table_queries(token_api, LIST, "accounts_apitoken")
    assert (read, response.status_code, len(calls)) == (0, 200, 1)
    assert {"accounts_apitoken", "accounts_user"} <= calls[0]


def test_a_kept_token_revoked_meanwhile_is_refused_by_reads_that_are_not_cached_too(owner, token_api):
    for _ in range(3):
        token_api.get(LIST)
    api_token_revoke(token=token_api.token)
    assert token_api.get("/api/v1/usage/").status_code == 401
    assert token_api.get(LIST).status_code == 401


def test_a_kept_token_revoked_while_redis_is_down_is_refused(owner, token_api, monkeypatch):
    for _ in range(3):
        token_api.get(LIST)
    api_token_revoke(token=token_api.token)

    def down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(read_cache, "_versions", down)
    assert token_api.get(LIST).status_code == 401


# --- round trips, on the project's Redis cache (the suite's is per process): an API hit is one, a page hit two ------


@pytest.fixture
def redis_cache(settings):
    """The cache of service mode, under a prefix of this test's own."""
    prefix = f"test-rc-{uuid.uuid4().hex[:8]}"
    settings.CACHES = {"default": {**project_settings.CACHES["default"], "KEY_PREFIX": prefix}}
    assert isinstance(caches["default"], read_cache.PipedCache)
    yield
    client = throttling._redis()
    client.delete(*client.keys(f"{prefix}:*"))


@pytest.fixture
def round_trips(monkeypatch):
    """The Redis round trips this thread makes: one send each (a pipeline sends all its commands at once)."""
    sent: list[bytes] = []
    send = redis.connection.AbstractConnection.send_packed_command
    this_thread = threading.get_ident()

    def counted(connection, command, check_health=True):
        if threading.get_ident() == this_thread:
            sent.append(command)
        return send(connection, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    return sent


def throttle_count(user) -> int:
    keys = throttling._redis().keys(cache.make_key(f"throttle_user_{user.pk}:*"))
    return sum(int(throttling._redis().get(key) or 0) for key in keys)


@pytest.mark.service
def test_a_cached_api_read_counts_its_rate_limit_in_the_round_trip_of_its_entry(
    redis_cache, owner, token_api, round_trips
):
    for _ in range(3):
        assert token_api.get(LIST).status_code == 200
    counted = throttle_count(owner)
    round_trips.clear()
    read, response = table_queries(token_api, LIST, "personas_persona")
    assert (read, response.status_code, len(round_trips)) == (0, 200, 1)
    assert throttle_count(owner) == counted + 1


@pytest.mark.service
@pytest.mark.parametrize("page", ["personas:index", "dashboard"], ids=["personas library", "dashboard"])
def test_a_cached_page_is_two_round_trips_the_session_then_the_reader_with_the_page(
    redis_cache, owner, browser, round_trips, page
):
    url = reverse(page)
    warm(browser, url)
    round_trips.clear()
    read, response = table_queries(browser, url, "accounts_user")
    assert (read, response.status_code, len(round_trips)) == (0, 200, 2)


# --- the rate limit still holds on cached reads ----------------------------------------------------------------


@pytest.fixture
def three_a_minute(monkeypatch):
    # DRF reads its settings once; the throttle classes read the rates at class creation.
    for throttle in (throttling.UserRateThrottle, throttling.AnonRateThrottle):
        monkeypatch.setattr(throttle, "THROTTLE_RATES", {"user": "3/min", "anon": "3/min"})


@pytest.mark.service
@pytest.mark.parametrize("url", [LIST, "/api/v1/me/"], ids=["cached", "not cached"])
@pytest.mark.parametrize("cache_seconds", [120, 0], ids=["cache on", "cache off"])
def test_the_rate_limit_refuses_the_request_over_it(
    redis_cache, owner, token_api, three_a_minute, settings, url, cache_seconds
):
    settings.READ_CACHE_SECONDS = cache_seconds
    assert [token_api.get(url).status_code for _ in range(3)] == [200, 200, 200]
    refused = token_api.get(url)
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json() == token_api.get("/api/v1/usage/").json()  # DRF's own refusal, as anywhere else


@pytest.mark.service
def test_a_cached_read_over_the_limit_is_refused_in_its_one_round_trip_before_anything_is_read(
    redis_cache, owner, token_api, three_a_minute, round_trips
):
    """Its entry is there (the third request stored it): the count that rode with its versions refuses it."""
    make(owner, "Priya Shah")
    assert [token_api.get(LIST).status_code for _ in range(3)] == [200, 200, 200]
    round_trips.clear()
    read, response = table_queries(token_api, LIST, "personas_persona")
    assert (read, response.status_code, len(round_trips)) == (0, 429, 1)
    assert "results" not in response.json()


# --- the signed-in reader a cached page checks itself ----------------------------------------------------------


@pytest.mark.service
def test_a_password_change_signs_other_browsers_out_even_once_the_new_row_is_kept(redis_cache, owner, browser):
    url = reverse("personas:index")
    warm(browser, url)
    owner.set_password("a new long password")
    owner.save()
    again = Client()
    again.force_login(owner)  # signs in with the new password's hash...
    warm(again, url)  # ...and keeps the new row in this process, current for every browser's check
    assert again.get(url).status_code == 200
    response = browser.get(url)
    assert response.status_code == 302 and reverse("account_login") in response["Location"]
    assert browser.get(url).status_code == 302  # signed out: the session no longer names the user


@pytest.mark.service
@pytest.mark.parametrize("condition", ["redis up", "redis down", "cache off"])
@pytest.mark.parametrize("page", ["personas:index", "dashboard"], ids=["personas library", "dashboard"])
def test_a_disabled_kept_reader_is_sent_to_sign_in(redis_cache, owner, browser, monkeypatch, settings, condition, page):
    url = reverse(page)
    warm(browser, url)
    if condition == "cache off":
        settings.READ_CACHE_SECONDS = 0
    user_set_active(user=owner, active=False)
    if condition == "redis down":

        def down(*args, **kwargs):
            raise ConnectionError("Redis is down")

        monkeypatch.setattr(read_cache, "_versions", down)
    response = browser.get(url)
    if response.status_code == 200:  # the home page once signed out, when nothing kept the reader to recheck
        assert page == "dashboard" and "web/landing.html" in [t.name for t in response.templates]
    else:
        assert response.status_code == 302 and reverse("account_login") in response["Location"]
