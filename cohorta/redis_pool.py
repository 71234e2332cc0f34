"""One Redis connection pool per process for Django's cache (and so for the API's rate limits).

Django builds a cache backend per context (``caches`` is an asgiref ``Local``), and each ``RedisCache``
builds its own connection pool. Under ASGI every request runs in a fresh context, so every request that
touched the cache (DRF's throttle does, on every API call) opened a new TCP connection to Redis, and
redis-py looks up its own version through ``importlib.metadata`` on each connect (issue #22: a new
connection per request, 6.4% of an API read). With ``OPTIONS={"pool_class": ...}`` pointing here, every
backend instance with the same URL and options shares one pool: connections are opened once and reused
by every request and thread of the process. redis-py's pool is thread-safe and resets itself in a forked
child (it checks the pid), so a pool made before gunicorn forks is never shared across processes.
"""

import threading
from typing import Any

import redis

_lock = threading.Lock()
_pools: dict[tuple, redis.ConnectionPool] = {}


class SharedConnectionPool(redis.ConnectionPool):
    """``from_url`` returns the process's pool for that URL and those options, made on first use."""

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Any:
        key = (cls, url, tuple(sorted((name, repr(value)) for name, value in kwargs.items())))
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                pool = _pools[key] = super().from_url(url, **kwargs)
        return pool
