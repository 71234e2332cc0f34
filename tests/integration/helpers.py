"""Start real Cohorta processes and drive them over HTTP and websockets."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path

from django.db import connection
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "integration-" + "Zq8#vL2@pX9!mR4$tW7^yB1&nC6*eF3(hJ5)uA0-sD" * 2


def service_database_url() -> str:
    """The pytest-django test database (what ``connection`` points at once the test DB is set up)."""
    params = connection.settings_dict
    user = params["USER"] or "postgres"
    password = f":{params['PASSWORD']}" if params["PASSWORD"] else ""
    host = params["HOST"] or "127.0.0.1"
    port = params["PORT"] or "5432"
    return f"postgres://{user}{password}@{host}:{port}/{params['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(**overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PYTEST_XDIST_WORKER"}
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "1",
            "SECRET_KEY": STRONG_KEY,
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update(overrides)
    return env


class Processes:
    """Child processes with their output captured to files, killed on exit."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        # Its own process group: a child started through a shell (the Procfile's lines) or one that forks (gunicorn's
        # workers) is stopped whole, not just the process we started.
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.children.append((name, proc))
        return proc

    def logs(self) -> str:
        parts = []
        for name, _ in self.children:
            path = self.tmp_path / f"{name}.log"
            parts.append(f"--- {name} ---\n" + (path.read_text()[-4000:] if path.exists() else ""))
        return "\n".join(parts)

    def stop(self) -> None:
        for _, proc in self.children:
            _signal_group(proc, signal.SIGTERM)
        for _, proc in self.children:
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            _signal_group(proc, signal.SIGKILL)  # whatever of the group is still there (a shell's child)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with suppress(ProcessLookupError):  # the whole group has exited
        os.killpg(proc.pid, sig)


@contextmanager
def processes(tmp_path: Path):
    group = Processes(tmp_path)
    try:
        yield group
    finally:
        group.stop()


def http_json(method: str, url: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_for_health(base_url: str, group: Processes, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        for name, proc in group.children:
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}\n{group.logs()}")
        try:
            status, body = http_json("GET", f"{base_url}/healthz")
            if status == 200:
                return body
            last = body
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"server never became healthy: {last}\n{group.logs()}")


def run_worker_check_over_websocket(base_url: str, token: str, steps: int = 3, timeout: float = 60) -> dict:
    """Start a worker check through the API and follow it on the jobs websocket.

    Returns {"job": final job payload, "states": [...], "progress": [...]}.
    """
    ws_url = base_url.replace("http://", "ws://") + "/ws/jobs/"
    with connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10) as ws:
        snapshot = json.loads(ws.recv(timeout=10))
        assert snapshot["type"] == "jobs.snapshot", snapshot
        status, job = http_json(
            "POST", f"{base_url}/api/v1/jobs/worker-check/", token, {"steps": steps, "step_seconds": 0.3}
        )
        assert status == 202, job
        states: list[str] = []
        progress: list[int] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("type") != "job.update" or message["job"]["id"] != job["id"]:
                continue
            payload = message["job"]
            states.append(payload["state"])
            progress.append(payload["progress_done"])
            if payload["state"] in {"done", "failed", "cancelled", "interrupted"}:
                return {"job": payload, "states": states, "progress": progress}
    raise AssertionError(f"job did not finish over the websocket in {timeout}s; saw {states}")


# What the Procfile's worker line sets for itself: workers run on psycopg's pool (tests/test_procfile.py).
WORKER_ENV = {"DB_POOL": "1"}


def celery_worker_args(hostname: str, *, concurrency: int, queues: str = "llm,default") -> list[str]:
    """The command of a test worker: the production worker (threads pool, our queues), without the
    cluster chatter a single test worker does not need."""
    args = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "--pool", "threads"]
    args += ["--concurrency", str(concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat"]
    return [*args, "-n", hostname, "--loglevel", "INFO"]


def wait_until(predicate, timeout: float, what: str, logs=None) -> None:
    """Poll ``predicate`` until it holds; on timeout fail, saying what was awaited (and the logs, if given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}\n{logs() if logs else ''}")
