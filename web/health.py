"""Checks behind /healthz: each configured backing service, bounded in time."""

import time

import redis
from celery import current_app
from django.conf import settings
from django.db import connection

from cohorta.secrets import scrub

_TIMEOUT_SECONDS = 2.0


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
    except Exception as exc:  # any failure is a failed check, reported without secrets
        return {"ok": False, "error": scrub(f"{exc.__class__.__name__}: {exc}")[:300]}
    result = {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
    if detail:
        result.update(detail)
    return result


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _redis() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=_TIMEOUT_SECONDS, socket_timeout=_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()


def _broker() -> dict:
    # The project's app (config/celery.py), made current when Django loads the config package.
    app = current_app
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=_TIMEOUT_SECONDS)
    return {"transport": app.conf.broker_url.split(":", 1)[0]}


def run_health_checks() -> dict:
    checks = {"database": _timed(_database)}
    if settings.REDIS_URL:
        checks["redis"] = _timed(_redis)
    if not settings.EMBEDDED_WORKER:
        checks["broker"] = _timed(_broker)
    return checks
