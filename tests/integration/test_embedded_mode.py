"""Embedded mode end to end: nothing configured, one daphne process. The job
runs on the in-process worker thread, the request does not wait for it, and
progress reaches the websocket through the thread-safe in-memory layer."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import (
    ROOT,
    base_env,
    free_port,
    processes,
    run_worker_check_over_websocket,
    wait_for_health,
)

pytestmark = pytest.mark.slow


def _processes_serving(port: int) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "daphne" in text and f"-p {port} " in text:
            found.append(text)
    return found


CREATE_TOKEN = (
    "from cohorta.accounts.models import User;"
    "from cohorta.accounts.services import api_token_create;"
    "u = User.objects.create_user('laptop@example.com', 'Correct-Horse-Battery-9');"
    "print(api_token_create(user=u, name='it')[1])"
)


def test_embedded_server_runs_jobs_in_process_and_streams_progress(tmp_path):
    env = base_env(SQLITE_PATH=str(tmp_path / "embedded.sqlite3"))
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=300)
    token = (
        subprocess.run(
            [*manage, "shell", "-v", "0", "-c", CREATE_TOKEN],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = free_port()
    with processes(tmp_path) as group:
        group.start(
            "web", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"], env
        )
        base_url = f"http://127.0.0.1:{port}"
        health = wait_for_health(base_url, group)
        outcome = run_worker_check_over_websocket(base_url, token, steps=3)
        logs = group.logs()
    # Nothing outlives the server: embedded beat is a thread, not a forked process.
    assert _processes_serving(port) == [], "a process of the embedded server survived it"
    assert health["mode"] == "embedded" and set(health["checks"]) == {"database"}
    job = outcome["job"]
    assert job["state"] == "done", (outcome, logs)
    assert job["result"]["mode"] == "embedded" and job["result"]["database"] == "sqlite"
    # The POST answered before the job ran: the socket saw it queue, then run.
    assert outcome["states"][0] in {"pending", "queued"}, outcome
    assert "running" in outcome["states"] and {1, 2} & set(outcome["progress"]), outcome
