"""The API's rate limits, counted cheaply: one Redis round trip per request, on the process's one pool.

DRF's own throttles keep every request's timestamp of the last window in one cache entry, read it, trim
it and write it back: two round trips and, for a busy script at 1,200 requests a minute, a pickled list
of up to 1,200 floats each way on every request. These count instead, per user (or address) and fixed
window, and estimate the sliding window from the current and the previous one (the previous window's
count weighted by how much of it still overlaps the last ``duration`` seconds): ``INCR`` + ``EXPIRE`` +
``GET`` in one pipelined round trip. A request refused still counts, so a client that keeps hammering
stays limited.

With Redis as the cache (service mode) the counters live in that Redis, under the cache's key prefix,
through ``cohorta.redis_pool`` (one connection pool per process, reused by every request). Any other
cache (the embedded default's local memory, the tests') is counted through Django's cache API.
"""

import re

import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework import throttling

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


def _hit(current_key: str, previous_key: str, ttl: int) -> tuple[int, int]:
    """Count one request in the current window; the current and the previous windows' counts."""
    client = _redis()
    if client is not None:
        pipe = client.pipeline(transaction=False)
        pipe.incr(cache.make_key(current_key))
        pipe.expire(cache.make_key(current_key), ttl)
        pipe.get(cache.make_key(previous_key))
        current, _, previous = pipe.execute()
        return int(current), int(previous or 0)
    if cache.add(current_key, 1, ttl):
        current = 1
    else:
        try:
            current = cache.incr(current_key)
        except ValueError:  # expired between the two calls
            cache.set(current_key, 1, ttl)
            current = 1
    return current, int(cache.get(previous_key) or 0)


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
        current, previous = _hit(f"{key}:{window}", f"{key}:{window - 1}", ttl=2 * self.duration)
        self.estimate = previous * (1 - self.elapsed / self.duration) + current
        return self.estimate <= self.num_requests

    def wait(self) -> float | None:
        """Seconds until the current window ends: by then at most the previous window's share is left."""
        return max(self.duration - getattr(self, "elapsed", 0.0), 1.0)


class UserRateThrottle(WindowCounterMixin, throttling.UserRateThrottle):
    """Per signed-in user (``DEFAULT_THROTTLE_RATES["user"]``)."""


class AnonRateThrottle(WindowCounterMixin, throttling.AnonRateThrottle):
    """Per address, for requests without a user (``DEFAULT_THROTTLE_RATES["anon"]``)."""
