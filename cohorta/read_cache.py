"""Cached API reads that can never be stale by more than a commit: responses keyed by what they read.

A cached read (``@cached_read`` on a DRF ``get``) is stored with the version of every table it read. Any
write through Django's database connection (the ORM's save, ``update()``, ``bulk_create``, deletes, raw
SQL) bumps the version of the tables it wrote, once its transaction commits; a cached response whose tables
changed is not served again. Nothing has to remember to invalidate: the write side is an execute wrapper on
every connection (``install``), which sees each statement, so a write no one thought about still counts.
A statement it cannot read (DDL, TRUNCATE, a CTE) bumps the epoch, which every cached response depends on,
and so does every ``migrate`` (the release step), so a deploy never serves a response shaped by the old code.

Why it is safe without locks: a version is bumped after the commit that changed the data. A reader reads
the versions first, then the data. Either it read the data before the commit and stored it under the old
versions, which no one will ask for once they are bumped, or after it, and the data it stored is new.

What it is not: per owner. Versions are per table, so a write by anyone to a table a response read turns
that response into a miss for everyone. It pays off for reads of tables that change less often than they
are read (a library of personas polled by a client), not for a live session's messages while answers
arrive. The key holds the user, so a response is only ever served to whoever it was made for.

Each process keeps a copy of the entries it stored or served, so a hit reads only the versions from Redis and a
large body (a session's messages) is not fetched again per request; the copy is served under the same check.

Limits: a process killed between its commit and its bump, or a Redis that loses a bump, leaves a response
stale for at most ``READ_CACHE_SECONDS``; writes made outside Django (psql) too. Off unless the cache is
shared by every process (Redis): with a per-process cache a worker's writes would not reach the web's reads.
Off inside a transaction (a test's, or a view's own): its writes are not committed, so no version moves.
"""

import functools
import hashlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any, Protocol, TypeVar, runtime_checkable

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache, caches
from django.db import connections
from django.http import HttpResponse
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

T = TypeVar("T")

EPOCH = "*"  # the version every cached response depends on: bumped by writes this module cannot read, and deploys

# Django writes these with the table name in double quotes right after the verb; raw SQL may leave them off.
_WRITE = re.compile(r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?([\w.]+)"?', re.IGNORECASE)
# Statements that never change a table's rows.
_HARMLESS = re.compile(
    r"^\s*(?:SELECT|SAVEPOINT|RELEASE|ROLLBACK|COMMIT|BEGIN|START|SET|SHOW|EXPLAIN|DECLARE|FETCH|CLOSE|LISTEN|"
    r"UNLISTEN|NOTIFY|PRAGMA|DEALLOCATE|PREPARE|VALUES)\b",
    re.IGNORECASE,
)
_READ = re.compile(r'\b(?:FROM|JOIN)\s+"?(\w+)"?', re.IGNORECASE)


def written_tables(sql: str) -> set[str]:
    """The tables a statement writes: empty for a read, ``{EPOCH}`` for a write this cannot name."""
    write = _WRITE.match(sql)
    if write:
        return {write.group(1).rsplit(".", 1)[-1].lower()}
    if _HARMLESS.match(sql):
        return set()
    return {EPOCH}


def read_tables(sql: str) -> set[str]:
    return {table.lower() for table in _READ.findall(sql)}


def enabled() -> bool:
    return settings.READ_CACHE_SECONDS > 0


def _version_key(table: str) -> str:
    return f"rc:v:{table}"


def _bump(tables: set[str]) -> None:
    """A new version for each table (after the commit that wrote them): a fresh random value, all in one round trip
    (a value never seen before is as good as a counter, and needs no read). Never raises: the write is already
    committed, and a lost bump is bounded by the cached response's lifetime."""
    try:
        cache.set_many({_version_key(table): secrets.randbits(62) for table in tables}, timeout=None)
    except Exception:
        logger.exception("Could not bump the read cache's versions of %s", ", ".join(sorted(tables)))


class _Written:
    """The tables a transaction wrote, bumped once when it commits (one callback per transaction)."""

    def __init__(self) -> None:
        self.tables: set[str] = set()

    def __call__(self) -> None:
        _bump(self.tables)


def _track_writes(execute, sql, params, many, context):
    result = execute(sql, params, many, context)
    if not enabled():
        return result
    tables = written_tables(sql)
    if tables:
        connection = context["connection"]
        if not connection.in_atomic_block:
            _bump(tables)  # autocommit: already committed
        else:
            written = getattr(connection, "cohorta_written", None)
            # The callback of a savepoint that rolled back is gone: start another (bumping more is harmless).
            if written is None or not any(entry[1] is written for entry in connection.run_on_commit):
                written = _Written()
                setattr(connection, "cohorta_written", written)  # noqa: B010 (an attribute Django does not declare)
                connection.on_commit(written)
            written.tables |= tables
    return result


def install(sender=None, connection=None, **kwargs) -> None:
    """Track the writes of a connection (the ``connection_created`` signal calls this on each connect)."""
    if _track_writes not in connection.execute_wrappers:
        connection.execute_wrappers.append(_track_writes)


def bump_epoch(**kwargs) -> None:
    """Every cached response goes stale (``post_migrate``: a deploy may change what responses look like)."""
    _bump({EPOCH})


class _Reads:
    def __init__(self) -> None:
        self.tables: set[str] = set()

    def __call__(self, execute, sql, params, many, context):
        self.tables |= read_tables(sql)
        return execute(sql, params, many, context)


class Rider(Protocol):
    """Redis commands that another check of the same request leaves to its cached read, to run in the round trip of
    the read's versions (the API's rate limit counting it: ``cohorta.api.throttling``)."""

    def queue(self, pipe: Any) -> None:
        """Add the commands to the read's pipeline."""
        ...

    def take(self, results: list[Any]) -> None:
        """The results of the commands ``queue`` added, in order."""
        ...

    def settle(self) -> None:
        """Called once before anything is served or computed, whether the commands rode or not (then it runs them
        itself): raises to refuse the request."""
        ...


@runtime_checkable
class PipedCache(Protocol):
    """A cache that runs other commands in the round trip of a ``get_many`` (``cohorta.redis_pool.RedisCache``)."""

    def get_many_piped(self, keys: Sequence[str], queue: Callable[[Any], None]) -> tuple[dict[str, Any], list[Any]]: ...


def _get_many(keys: list[str], riders: Sequence[Rider]) -> dict[str, Any]:
    backend = caches["default"]
    if not riders or not isinstance(backend, PipedCache):
        return cache.get_many(keys)  # riders not given their results run on their own when settled
    spans: list[tuple[Rider, int, int]] = []

    def queue(pipe) -> None:
        for rider in riders:
            start = len(pipe)
            rider.queue(pipe)
            spans.append((rider, start - 1, len(pipe) - 1))  # the results come after the MGET's

    found, results = backend.get_many_piped(keys, queue)
    for rider, start, end in spans:
        rider.take(results[start:end])
    return found


# What each cached view reads, learned from its misses (a view's queries name the same tables each time; a branch
# that reads one more adds it). Per process: a new process learns it again on its first request of each view.
_DEPENDS: dict[str, frozenset[str]] = {}


def _versions(
    tables: frozenset[str],
    entry_key: str | None = None,
    extra_keys: Sequence[str] = (),
    riders: Sequence[Rider] = (),
) -> tuple[list[str], list[Any], Any, dict[str, Any]]:
    """The tables (with the epoch, sorted), the current version of each (made where missing, so no stored vector
    ever holds a gap that an eviction could match again), the stored entry, and the cache entries of
    ``extra_keys`` that exist, in one round trip when all versions exist; ``riders``' commands in the same one."""
    names = sorted(tables | {EPOCH})
    keys = [_version_key(t) for t in names]
    found = _get_many([*keys, *([entry_key] if entry_key else []), *extra_keys], riders)
    versions = []
    for key in keys:
        value = found.get(key)
        if value is None:
            value = secrets.randbits(62)
            if not cache.add(key, value, timeout=None):
                value = cache.get(key)
        versions.append(value)
    extra = {key: found[key] for key in extra_keys if key in found}
    return names, versions, found.get(entry_key) if entry_key else None, extra


# Values kept in this process by ``remembered``: key -> (tables with the epoch, their versions, monotonic time kept,
# value).
_REMEMBERED: dict[Hashable, tuple[list[str], list[Any], float, Any]] = {}
_REMEMBERED_LIMIT = 10_000


def remembered(key: Hashable, tables: frozenset[str], load: Callable[[], T]) -> T:
    """``load()``'s result, kept in this process while none of ``tables`` changes (and at most
    ``READ_CACHE_SECONDS``): one Redis round trip for their versions instead of ``load``'s query.

    For small, hot reads every request makes before its view (the API token's user, the signed-in user's
    row), where building the ORM's SQL costs more than running it. ``load`` must return a value no caller
    mutates (a tuple of a row's values, not a model instance): it is shared by every thread of the process.
    Same safety as cached responses: the versions are read before ``load`` runs."""
    if not enabled() or connections["default"].in_atomic_block:
        return load()
    try:
        names, versions, _, _ = _versions(tables)
    except Exception:
        logger.exception("The read cache is unavailable; reading from the database")
        return load()
    now = time.monotonic()
    kept = _REMEMBERED.get(key)
    if kept is not None and kept[:2] == (names, versions) and now - kept[2] < settings.READ_CACHE_SECONDS:
        return kept[3]
    value = load()
    if len(_REMEMBERED) >= _REMEMBERED_LIMIT:
        _REMEMBERED.clear()  # rare (ten thousand tokens or users in one process): start over, not an LRU's cost
    _REMEMBERED[key] = (names, versions, now, value)
    return value


@dataclass(frozen=True)
class Unchecked:
    """A value ``remembered`` kept, handed out before its versions were read: for a cached read to check with the
    versions it reads anyway (``cached_read``, ``cached_page``), saving a round trip. ``recheck`` is called, before
    anything is read or served, when they no longer match: it reads the value again, and raises or returns the
    response that refuses the request (a page's redirect to sign in) when it no longer holds."""

    names: list[str]  # the tables it was kept under, with the epoch
    versions: list[Any]  # theirs, as they were when it was kept
    value: Any
    recheck: Callable[[], HttpResponse | None]

    @property
    def tables(self) -> frozenset[str]:
        return frozenset(self.names) - {EPOCH}

    def holds(self, names: list[str], versions: list[Any]) -> bool:
        current = dict(zip(names, versions, strict=True))
        return all(current.get(table) == version for table, version in zip(self.names, self.versions, strict=True))


def remembered_unchecked(key: Hashable, recheck: Callable[[], HttpResponse | None]) -> Unchecked | None:
    """What ``remembered(key, ...)`` kept, without checking it is current (None when nothing is kept, it is too
    old, or the cache is off): only for a caller that hands it to ``cached_read`` to check."""
    if not enabled() or connections["default"].in_atomic_block:
        return None
    kept = _REMEMBERED.get(key)
    if kept is None or time.monotonic() - kept[2] >= settings.READ_CACHE_SECONDS:
        return None
    names, versions, _, value = kept
    return Unchecked(names=names, versions=versions, value=value, recheck=recheck)


# Entries kept in this process as well: entry key -> the entry as stored in the cache. A hit checks the versions in
# the cache as always, but takes the body from here, so a large read (a session's 300 messages, 130 KB) is not
# fetched again on every request. Bounded by size; cleared, not evicted one by one, when full.
_LOCAL: dict[str, tuple] = {}
_LOCAL_SIZE = [0]
_LOCAL_LIMIT_BYTES = 64 * 1024 * 1024
_local_lock = threading.Lock()


def _keep_local(entry_key: str, entry: tuple) -> None:
    size = len(entry[4])
    with _local_lock:
        replaced = _LOCAL.pop(entry_key, None)
        if replaced is not None:
            _LOCAL_SIZE[0] -= len(replaced[4])
        if _LOCAL_SIZE[0] + size > _LOCAL_LIMIT_BYTES:
            _LOCAL.clear()
            _LOCAL_SIZE[0] = 0
        _LOCAL[entry_key] = entry
        _LOCAL_SIZE[0] += size


def _local_entry(entry_key: str) -> tuple | None:
    """This process's copy of an entry, while it is younger than the cache lifetime: the copy in the cache has
    expired by then, and a bump lost with a killed process stays bounded as before."""
    entry = _LOCAL.get(entry_key)
    if entry is None or time.time() - entry[5] >= settings.READ_CACHE_SECONDS:
        return None
    return entry


def _store(entry_key: str, names: list[str], versions: list[Any], varies: tuple, response) -> None:
    entry = (names, versions, varies, response["Content-Type"], response.content, time.time())
    try:
        cache.set(entry_key, entry, settings.READ_CACHE_SECONDS)
    except Exception:
        logger.exception("Could not store a read in the read cache")
        return
    _keep_local(entry_key, entry)


def _no_vary(found: dict[str, Any]) -> tuple:
    return ()


def _serve(
    route: str,
    identity: str,
    compute: Callable[[], Any],
    *,
    always: frozenset[str] = frozenset(),
    vary_keys: Sequence[str] = (),
    vary: Callable[[dict[str, Any]], tuple] = _no_vary,
    unchecked: Unchecked | None = None,
    riders: Sequence[Rider] = (),
):
    """The cached response for ``identity`` while no table it read (or ``always``) changed and ``vary`` of the
    cache entries of ``vary_keys`` (read in the same round trip) says what it said; else ``compute()``, stored
    (once rendered) with the versions read before it ran. ``unchecked`` (who is asking, not yet checked) is checked
    with the same versions, and rechecked before anything is served or computed when they moved; then ``riders``
    are settled, their commands having run in the same round trip."""
    connection = connections["default"]
    entry_key = "rc:e4:" + hashlib.sha256(f"{route}\n{identity}".encode()).hexdigest()
    depends = _DEPENDS.get(route)
    names = versions = None
    varies: tuple = ()
    checked = unchecked is None
    hit: tuple[str, bytes] | None = None
    if unchecked is not None:
        always = always | unchecked.tables
    local = _local_entry(entry_key)
    try:
        if depends is not None:
            # With a copy here, the round trip reads only the versions: the body is fetched when the copy is stale.
            names, versions, entry, found = _versions(
                depends | always, None if local is not None else entry_key, vary_keys, riders
            )
            checked = checked or (unchecked is not None and unchecked.holds(names, versions))
            varies = vary(found)
            if local is not None:
                if local[:3] == (names, versions, varies):
                    hit = (local[3], local[4])
                else:
                    entry = cache.get(entry_key)  # another process may have stored the current one
            if hit is None and entry is not None:
                stored_names, stored_versions, stored_varies, content_type, body, _ = entry
                if stored_names == names and stored_versions == versions and stored_varies == varies:
                    hit = (content_type, body)
                    _keep_local(entry_key, entry)
                else:
                    # Another process learned that this view reads more (a table read once per process, such as
                    # content types, is seen by whichever process read it first): learn it too, or the processes
                    # would overwrite each other's entries forever, each under its own list of tables. Not stored
                    # this time: the versions read do not cover what was learned.
                    more = frozenset(stored_names) - frozenset(names)
                    if more:
                        depends = _DEPENDS[route] = depends | more
                        names = versions = None
    except Exception:
        logger.exception("The read cache is unavailable; reading from the database")
        refused = _settle(None if checked else unchecked, riders)
        return refused if refused is not None else compute()
    # The versions read before a recheck still cover what it reads again.
    refused = _settle(None if checked else unchecked, riders)
    if refused is not None:
        return refused
    if hit is not None and checked:
        return HttpResponse(hit[1], content_type=hit[0])
    reads = _Reads()
    with connection.execute_wrapper(reads):
        response = compute()
    learned = frozenset(reads.tables)
    if depends is None or not learned <= depends:
        _DEPENDS[route] = learned | (depends or frozenset())
        return response  # its versions were not read before its data: not stored this time
    if (
        response.status_code != 200
        or versions is None
        or names is None
        or getattr(response, "streaming", False)
        or response.cookies
        or getattr(response, "read_cache_skip", False)
    ):
        return response
    if hasattr(response, "add_post_render_callback") and not response.is_rendered:
        response.add_post_render_callback(lambda rendered: _store(entry_key, names, versions, varies, rendered))
    else:
        _store(entry_key, names, versions, varies, response)
    return response


def _settle(unchecked: Unchecked | None, riders: Sequence[Rider]) -> HttpResponse | None:
    """Who is asking, then whether they may (as DRF checks authentication before the rate limit): the response that
    refuses the request, or None. Raises to refuse it too (the API's 401 and 429)."""
    if unchecked is not None:
        refused = unchecked.recheck()
        if refused is not None:
            return refused
    for rider in riders:
        rider.settle()
    return None


def cached_read(handler: Callable) -> Callable:
    """Serve a DRF ``get`` from the cache while nothing it read has changed. Runs after authentication,
    permissions and throttling (inside the view's dispatch): every request is still checked and counted, the kept
    API token (``Unchecked``) and the rate limit's count (``ride``) in the round trip of the read's versions."""

    @wraps(handler)
    def get(view, request, *args, **kwargs):
        unchecked = request.auth if isinstance(request.auth, Unchecked) else None
        riders: list[Rider] = getattr(request, _RIDERS, [])
        if not enabled() or connections["default"].in_atomic_block or request.accepted_renderer.format != "json":
            refused = _settle(unchecked, riders)
            return refused if refused is not None else handler(view, request, *args, **kwargs)
        route = f"{type(view).__module__}.{type(view).__qualname__}"
        return _serve(
            route,
            f"{request.user.pk}\n{request.get_full_path()}",
            lambda: handler(view, request, *args, **kwargs),
            unchecked=unchecked,
            riders=riders,
        )

    get.cached_read = True  # type: ignore[attr-defined]  # read by authentication and the rate limit
    return get


def is_cached_read(view, method: str) -> bool:
    """Whether ``view`` answers ``method`` with ``cached_read`` (and so checks an ``Unchecked`` caller and settles
    a ``Rider``)."""
    return bool(getattr(getattr(view, method.lower(), None), "cached_read", False))


_RIDERS = "read_cache_riders"  # the request's attribute holding what ``ride`` left to its cached read


def ride(request, view, rider: Rider) -> bool:
    """Leave ``rider`` to the cached read that will answer this DRF request, to run its commands in the round trip
    of its versions and settle it before serving anything. False (and the rider must run on its own) when no cached
    read will: the view is not one, or the cache cannot run other commands with its reads (off, or not Redis)."""
    if not is_cached_read(view, request.method) or not isinstance(caches["default"], PipedCache) or not enabled():
        return False
    riders = getattr(request, _RIDERS, None)
    if riders is None:
        riders = []
        setattr(request, _RIDERS, riders)
    riders.append(rider)
    return True


def skip(response):
    """Keep this response out of the cache: it shows something that changes without a write (a countdown)."""
    response.read_cache_skip = True
    return response


# A page shows its reader's name and balance from the user's row, read by the authentication middleware before
# the view (so not seen by the view's recorder): every cached page depends on it.
_PAGE_ALWAYS = frozenset({"accounts_user"})


class PageVary(Protocol):
    """Something every page shows that lives in the cache, not in a table (``READ_CACHE_PAGE_VARY``): no version
    would tell a cached page it changed, so a page is served again only while this says what it said."""

    def cache_keys(self, request) -> list[str]:
        """The cache entries it is made from: read in the same round trip as the page's versions."""
        ...

    def __call__(self, request, found: dict[str, Any]) -> str:
        """What it shows, from those of its entries that exist (``found``)."""
        ...


@functools.cache
def _page_vary() -> list[PageVary]:
    # Named in settings, as context processors are: what every page shows comes from apps above this one.
    return [import_string(path) for path in settings.READ_CACHE_PAGE_VARY]


def cached_page(view_func: Callable) -> Callable:
    """Serve a signed-in GET page from the cache while nothing it read has changed (below ``login_required``).

    The key holds the reader, the URL, htmx's request header and the browser's CSRF cookie (the page's forms carry
    a token made from it, valid for that browser only); the entry holds what ``READ_CACHE_PAGE_VARY`` said (the
    budget banner every page shows, which lives in the cache, not in a table), checked on every hit. Not cached: a
    request with no CSRF cookie yet (its response sets one), or with messages waiting (showing them uses them
    up)."""

    @wraps(view_func)
    def page(request, *args, **kwargs):
        unchecked: Unchecked | None = getattr(request, _UNCHECKED_READER, None)
        csrf_cookie = request.META.get("CSRF_COOKIE")
        if (
            not enabled()
            or connections["default"].in_atomic_block
            or request.method != "GET"
            or not request.user.is_authenticated
            or not csrf_cookie
            or len(messages.get_messages(request))
        ):
            refused = _settle(unchecked, ())
            return refused if refused is not None else view_func(request, *args, **kwargs)
        identity = "\n".join(
            [str(request.user.pk), request.get_full_path(), request.headers.get("HX-Request", ""), csrf_cookie]
        )
        route = f"{view_func.__module__}.{view_func.__qualname__}"
        varies = _page_vary()
        return _serve(
            route,
            identity,
            lambda: view_func(request, *args, **kwargs),
            always=_PAGE_ALWAYS,
            vary_keys=[key for vary in varies for key in vary.cache_keys(request)],
            vary=lambda found: tuple(vary(request, found) for vary in varies),
            unchecked=unchecked,
        )

    page.cached_page = True  # type: ignore[attr-defined]  # kept by ``wraps`` through the decorators above it
    return page


def answers_through_cached_page(view_func: Callable) -> Callable:
    """Mark a view that answers a signed-in reader only by calling a ``cached_page`` view (the home page, which is
    the dashboard once signed in): the reader is handed to it unchecked too, and that page checks it."""
    view_func.cached_page = True  # type: ignore[attr-defined]
    return view_func


def is_cached_page(view_func: Callable) -> bool:
    """Whether ``view_func`` (with any decorators above ``cached_page``) checks an ``Unchecked`` reader."""
    return bool(getattr(view_func, "cached_page", False))


_UNCHECKED_READER = "read_cache_unchecked_reader"


def check_later(request, reader: Unchecked) -> None:
    """Leave the signed-in ``reader`` to the cached page that answers ``request`` (``is_cached_page``), to check
    with the versions it reads anyway; the authentication middleware hands it out unchecked until then."""
    setattr(request, _UNCHECKED_READER, reader)
