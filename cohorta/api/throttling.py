"""The API's rate limits, counted cheaply: one Redis round trip per request, on the process's one pool.

DRF's own throttles keep every request's timestamp of the last window in one cache entry, read it, trim
it and write it back: two round trips and, for a busy script at 1,200 requests a minute, a pickled list
of up to 1,200 floats each way on every request. These count instead, per user (or address) and fixed
window, and estimate the sliding window from the current and the previous one (the previous window's
count weighted by how much of it still overlaps the last ``duration`` seconds): ``INCR`` + ``EXPIRE`` +
``GET`` in one pipelined round trip. A request refused still counts, so a client that keeps hammering
stays limited. A cached read (``read_cache.cached_read``) runs them in the round trip of its own versions
instead, and refuses the request there, before it serves or computes anything (issue #22: the counter was
half the Redis round trips of an API read served from the cache).

With Redis as the cache (service mode) the counters live in that Redis, under the cache's key prefix,
through ``cohorta.redis_pool`` (one connection pool per process, reused by every request). Any other
cache (the embedded default's local memory, the tests') is counted through Django's cache API.
"""

import re
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework import throttling

from cohorta import read_cache
from cohorta.redis_pool import SharedConnectionPool

_clients: dict[str, redis.Redis] = {}


def _redis() -> redis.Redis | None:
    """A client for the cache's Redis (its first server, where Django writes), or None for another cache."""
    config = settings.CACHES.get("default", {})
    if not str(config.get("BACKEND", "")).endswith(".RedisCache"):
        return None
    location = config["LOCATION"]
    url = re.split("[;,]", location)[0] if isinstance(location, str) else location[0]
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis(connection_pool=SharedConnectionPool.from_url(url))
    return client


class _Count:
    """One throttle's count of one request: ``INCR`` + ``EXPIRE`` of the current window, ``GET`` of the previous."""

    def __init__(self, throttle: "WindowCounterMixin", current_key: str, previous_key: str, ttl: int) -> None:
        self.throttle = throttle
        self.current_key, self.previous_key, self.ttl = current_key, previous_key, ttl
        self.counts: tuple[int, int] | None = None

    def queue(self, pipe) -> None:
        pipe.incr(cache.make_key(self.current_key))
        pipe.expire(cache.make_key(self.current_key), self.ttl)
        pipe.get(cache.make_key(self.previous_key))

    def take(self, results: list[Any]) -> None:
        current, _, previous = results
        self.counts = int(current), int(previous or 0)

    def allowed(self) -> bool:
        if self.counts is None:
            self.counts = _hit(self)
        return self.throttle.allowed(*self.counts)


def _hit(count: _Count) -> tuple[int, int]:
    """Count one request in the current window on its own round trip; the current and the previous windows' counts."""
    client = _redis()
    if client is not None:
        pipe = client.pipeline(transaction=False)
        count.queue(pipe)
        count.take(pipe.execute())
        assert count.counts is not None
        return count.counts
    if cache.add(count.current_key, 1, count.ttl):
        current = 1
    else:
        try:
            current = cache.incr(count.current_key)
        except ValueError:  # expired between the two calls
            cache.set(count.current_key, 1, count.ttl)
            current = 1
    return current, int(cache.get(count.previous_key) or 0)


class _Deferred:
    """A cached read's counts, left to ride in the round trip of its versions (``read_cache.ride``), and refused
    after it as DRF's ``check_throttles`` would have refused it before the view: with the longest of the waits."""

    def __init__(self, request, view) -> None:
        self.request, self.view = request, view
        self.counts: list[_Count] = []
        self.riding = False

    def queue(self, pipe) -> None:
        for count in self.counts:
            count.queue(pipe)

    def take(self, results: list[Any]) -> None:
        for index, count in enumerate(self.counts):
            count.take(results[3 * index : 3 * index + 3])

    def settle(self) -> None:
        refused = [count.throttle.wait() for count in self.counts if not count.allowed()]
        if refused:
            self.view.throttled(self.request, max((wait for wait in refused if wait is not None), default=None))


_DEFERRED = "cohorta_deferred_throttles"  # the request's attribute holding its ``_Deferred``


def _defer(request, view, count: _Count) -> bool:
    """Leave ``count`` to the request's cached read, if it makes one."""
    deferred: _Deferred | None = getattr(request, _DEFERRED, None)
    if deferred is None:
        deferred = _Deferred(request, view)
        deferred.riding = read_cache.ride(request, view, deferred)
        setattr(request, _DEFERRED, deferred)
    if deferred.riding:
        deferred.counts.append(count)
    return deferred.riding


class WindowCounterMixin:
    """``allow_request``/``wait`` for a ``SimpleRateThrottle``: counters per fixed window, not a history."""

    rate: str | None
    num_requests: int
    duration: int

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)  # type: ignore[attr-defined]  # SimpleRateThrottle's
        if key is None:
            return True
        now = self.timer()  # type: ignore[attr-defined]  # SimpleRateThrottle's
        window = int(now // self.duration)
        self.elapsed = now - window * self.duration
        count = _Count(self, f"{key}:{window}", f"{key}:{window - 1}", ttl=2 * self.duration)
        if _defer(request, view, count):
            return True  # counted and, over the limit, refused by the cached read before it serves anything
        return count.allowed()

    def allowed(self, current: int, previous: int) -> bool:
        self.estimate = previous * (1 - self.elapsed / self.duration) + current
        return self.estimate <= self.num_requests

    def wait(self) -> float | None:
        """Seconds until the current window ends: by then at most the previous window's share is left."""
        return max(self.duration - getattr(self, "elapsed", 0.0), 1.0)


class UserRateThrottle(WindowCounterMixin, throttling.UserRateThrottle):
    """Per signed-in user (``DEFAULT_THROTTLE_RATES["user"]``)."""


class AnonRateThrottle(WindowCounterMixin, throttling.AnonRateThrottle):
    """Per address, for requests without a user (``DEFAULT_THROTTLE_RATES["anon"]``)."""
