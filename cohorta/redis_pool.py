"""One Redis connection pool per process for Django's cache (and so for the API's rate limits), and one client.

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
from collections.abc import Callable, Iterable
from typing import Any

import redis
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

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


class ReusingRedisCacheClient(RedisCacheClient):
    """Django's Redis cache client, keeping one ``redis.Redis`` per pool instead of building one per call.

    Django's ``get_client`` builds a new ``redis.Redis`` for every cache call, and redis-py 8 fills a
    case-insensitive dict of response callbacks in each one: under load that was 13% of a cached page's
    time (issue #22), more than the round trip itself. A ``redis.Redis`` holds no connection of its own
    (it borrows from the pool per command), so one per pool is safe to share between threads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, redis.Redis] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> redis.Redis:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]  # Django's, not in its stubs
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = redis.Redis(connection_pool=pool)
        return client

    def get_many_piped(self, keys: list[str], queue: Callable[[Any], None]) -> tuple[dict[str, Any], list[Any]]:
        """``get_many`` on the first server, with the commands ``queue`` adds to the same pipeline."""
        pipe = self.get_client(write=True).pipeline(transaction=False)
        pipe.mget(keys)
        queue(pipe)
        values, *results = pipe.execute()
        loads = self._serializer.loads  # type: ignore[attr-defined]  # Django's, not in its stubs
        return {key: loads(value) for key, value in zip(keys, values, strict=True) if value is not None}, results


class RedisCache(DjangoRedisCache):
    """Django's ``RedisCache`` on ``ReusingRedisCacheClient``; keys are not checked for memcached's limits
    (Django's base cache warns about characters and lengths memcached refuses, scanning every key's
    characters on every call; Redis takes any key)."""

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient

    def validate_key(self, key: str) -> None:
        return None

    def get_many_piped(self, keys: Iterable[str], queue: Callable[[Any], None]) -> tuple[dict[str, Any], list[Any]]:
        """``get_many``, and in the same round trip the commands ``queue`` adds to its Redis pipeline (the API's rate
        limit counting a cached read: ``cohorta.read_cache``): the entries found, and those commands' results. On the
        first server, where Django writes and the rate limit counts."""
        key_map = {self.make_and_validate_key(key): key for key in keys}
        client: ReusingRedisCacheClient = self._cache  # type: ignore[attr-defined]  # Django's, not in its stubs
        found, results = client.get_many_piped(list(key_map), queue)
        return {key_map[key]: value for key, value in found.items()}, results
