"""How production is served: the Procfile runs gunicorn (WSGI, gthread) for HTTP and daphne for websockets,
gunicorn's config file loads as gunicorn reads it, and the WSGI process finds the client's address
behind the proxy."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

from config.forwarded import ForwardedForMiddleware

ROOT = Path(__file__).resolve().parent.parent


def procfile() -> dict[str, list[str]]:
    processes = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            processes[name.strip()] = shlex.split(command)
    return processes


def test_procfile_serves_http_with_gunicorn_and_websockets_with_daphne():
    processes = procfile()
    web, ws = processes["web"], processes["ws"]
    assert web[0] == "gunicorn"
    assert web[web.index("--config") + 1] == "config/gunicorn.conf.py"
    assert web[-1] == "config.wsgi:application"
    assert ws[0] == "daphne" and ws[-1] == "config.asgi:application"
    assert "--proxy-headers" in ws
    # Nothing else serves the ASGI app: HTTP must not fall back onto daphne.
    others = [command for name, command in processes.items() if name != "ws"]
    assert not any("daphne" in command or "config.asgi:application" in command for command in others)
    # The proxy configs route /ws/ to daphne's port and the rest to gunicorn's.
    ws_port = ws[ws.index("-p") + 1]
    assert ws_port == "${WS_PORT:-8001}"
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "location /ws/" in nginx and "server 127.0.0.1:8001;" in nginx and "server 127.0.0.1:8000;" in nginx
    caddy = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "handle /ws/*" in caddy and "127.0.0.1:8001" in caddy and "127.0.0.1:8000" in caddy


def gunicorn(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    clean.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1", **env})
    command = [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.conf.py", *args]
    return subprocess.run(
        [*command, "config.wsgi:application"], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def settings_printed(output: str) -> dict[str, str]:
    pairs = (line.split(" = ", 1) for line in output.splitlines() if " = " in line)
    return {name.strip(): value.strip() for name, value in pairs}


def test_gunicorn_config_loads_with_the_app_and_reads_its_environment():
    checked = gunicorn("--check-config", REDIS_URL="redis://127.0.0.1:6379/2")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    printed = gunicorn(
        "--print-config", REDIS_URL="redis://127.0.0.1:6379/2", WEB_CONCURRENCY="3", GUNICORN_THREADS="6", PORT="9123"
    )
    assert printed.returncode == 0, printed.stderr
    values = settings_printed(printed.stdout)
    assert values["worker_class"] == "gthread"
    assert values["workers"] == "3" and values["threads"] == "6"
    assert values["bind"] == "['0.0.0.0:9123']"
    assert values["preload_app"] == "True"
    assert values["accesslog"] == "None"
    if Path("/dev/shm").is_dir():
        assert values["worker_tmp_dir"] == "/dev/shm"


def test_gunicorn_refuses_embedded_mode_and_says_what_to_run_instead():
    refused = gunicorn("--check-config")
    assert refused.returncode != 0
    assert "set REDIS_URL" in refused.stdout + refused.stderr
    assert "make run" in refused.stdout + refused.stderr


def remote_addr(peer: str, forwarded: str | None, trusted: list[str]) -> str:
    seen = {}

    def app(environ, start_response):
        seen["addr"] = environ["REMOTE_ADDR"]
        return [b""]

    environ = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    ForwardedForMiddleware(app, trusted=trusted)(environ, lambda *a: None)
    return seen["addr"]


def test_client_address_comes_from_a_trusted_proxy_only():
    local = ["127.0.0.1", "::1"]
    # The proxy on this machine says who the client is.
    assert remote_addr("127.0.0.1", "203.0.113.7", local) == "203.0.113.7"
    # Anyone else sending the header is ignored.
    assert remote_addr("198.51.100.2", "203.0.113.7", local) == "198.51.100.2"
    # No header, nothing changes.
    assert remote_addr("127.0.0.1", None, local) == "127.0.0.1"


def test_client_address_is_read_past_trusted_proxies_never_from_what_the_client_wrote():
    behind_router = ["127.0.0.1", "10.0.0.0/8"]
    # The client's own header comes first; the router appended the real client; the proxy appended the router.
    assert remote_addr("127.0.0.1", "1.2.3.4, 203.0.113.7, 10.1.2.3", behind_router) == "203.0.113.7"
    # Garbage where the client's address should be leaves the proxy's address (the audit log stores an IP).
    assert remote_addr("127.0.0.1", "not-an-ip", ["127.0.0.1"]) == "127.0.0.1"
    assert remote_addr("127.0.0.1", "1.2.3.4, ", ["127.0.0.1"]) == "127.0.0.1"
    # '*' trusts every hop: the left-most entry.
    assert remote_addr("192.0.2.1", "203.0.113.7, 10.1.2.3", ["*"]) == "203.0.113.7"
    # A unix socket (no peer address) can only be opened locally.
    assert remote_addr("", "203.0.113.7", ["127.0.0.1"]) == "203.0.113.7"


def test_the_worker_runs_on_the_connection_pool():
    # Its round helpers close their connection after each answer: without the pool every answer of every
    # round would open a Postgres connection (the integration and reliability workers run the same way).
    worker = procfile()["worker"]
    assert worker[0] == "DB_POOL=1" and worker[1:4] == ["celery", "-A", "config"]


def test_the_master_loads_what_a_first_request_would_without_connecting():
    """when_ready (before the fork) builds the URL tables and Celery's tasks and broker transport, so no worker's
    first request pays for them; it opens no broker connection a forked worker would share."""
    script = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("gunicorn_conf", "config/gunicorn.conf.py")
conf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conf)
import config.wsgi  # as preload_app loads it, before when_ready
assert "kombu.transport.redis" not in sys.modules and not conf.celery_app.finalized
conf.when_ready(None)
assert "kombu.transport.redis" in sys.modules and conf.celery_app.finalized
assert "focusgroups.tasks.generate_round" in conf.celery_app.tasks
assert conf.celery_app._pool is None  # no connection pool, so nothing to share across the fork
print("ok")
"""
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    clean.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1", "WEB_NICE": "0"})
    clean["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there: a connection attempt would fail
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr
