"""Service mode end to end: Postgres, Redis, a real Celery worker process and a
real daphne with channels-redis. A job started through the API runs on the
worker and its progress reaches a websocket client."""

import os
import re
import sys
import uuid

import pytest
import redis

from cohorta.accounts.services import api_token_create
from tests.factories import UserFactory
from tests.integration.helpers import (
    WORKER_ENV,
    base_env,
    celery_worker_args,
    free_port,
    http_json,
    processes,
    run_worker_check_over_websocket,
    service_database_url,
    wait_for_health,
)

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _isolated_redis_url() -> str:
    # Its own Redis database, so queues and groups never mix with a developer's
    # running Cohorta or another test worker.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = 10 + int(re.sub(r"\D", "", worker) or 0) % 5
    return re.sub(r"(/\d+)?$", f"/{index}", os.environ["REDIS_URL"].rstrip("/"), count=1)


def test_job_runs_on_a_separate_worker_and_progress_reaches_the_websocket(tmp_path):
    user = UserFactory(email="service@example.com")
    _, token = api_token_create(user=user, name="integration")
    redis_url = _isolated_redis_url()
    redis.Redis.from_url(redis_url).flushdb()
    env = base_env(DATABASE_URL=service_database_url(), REDIS_URL=redis_url, DB_CONN_MAX_AGE="0")
    port = free_port()
    worker_name = f"itest-{uuid.uuid4().hex[:8]}"

    with processes(tmp_path) as group:
        group.start(
            "worker",
            celery_worker_args(f"{worker_name}@%h", concurrency=4),
            {**env, **WORKER_ENV},
        )
        group.start(
            "web", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"], env
        )
        base_url = f"http://127.0.0.1:{port}"
        health = wait_for_health(base_url, group)
        assert health["mode"] == "service"
        assert set(health["checks"]) == {"database", "redis", "broker"}

        outcome = run_worker_check_over_websocket(base_url, token, steps=3)
        status, detail = http_json("GET", f"{base_url}/api/v1/jobs/{outcome['job']['id']}/", token)
        logs = group.logs()

    job = outcome["job"]
    assert job["state"] == "done", (outcome, logs)
    # It ran in the worker process, not in the web process.
    assert job["result"]["worker"].startswith(worker_name), logs
    assert job["result"]["mode"] == "service" and job["result"]["database"] == "postgresql"
    # Progress arrived step by step, not only the final state.
    assert "running" in outcome["states"]
    assert {1, 2} & set(outcome["progress"]), outcome
    assert status == 200 and detail["state"] == "done" and detail["progress_done"] == 3
    redis.Redis.from_url(redis_url).flushdb()
