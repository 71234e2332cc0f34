"""A service-mode Cohorta for the reliability suite: Celery worker and daphne processes against the
pytest-django Postgres test database, a Redis database of their own and the fake OpenAI server running
in the test process. Workers can be killed with SIGKILL and started again."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.integration.helpers import (
    ROOT,
    WORKER_ENV,
    base_env,
    celery_worker_args,
    free_port,
    http_json,
    service_database_url,
    wait_for_health,
)


def isolated_redis_url() -> str:
    """A Redis database of this suite's own, flushed before and after: REDIS_URL's database + 5 + the
    xdist worker number (in CI, REDIS_URL=/0: databases 5-6, apart from the integration tests' 10-14 and
    the journeys' 1-2), so queues and groups never mix with another suite or a running Cohorta."""
    url = os.environ["REDIS_URL"].rstrip("/")
    match = re.search(r"/(\d+)$", url)
    base = int(match.group(1)) if match else 0
    worker = int(re.sub(r"\D", "", os.environ.get("PYTEST_XDIST_WORKER", "")) or 0)
    return re.sub(r"(/\d+)?$", f"/{(base + 5 + worker) % 16}", url, count=1)


class Stack:
    """Cohorta processes for one test. ``env`` overrides go to every process started."""

    def __init__(self, tmp_path: Path, *, llm_base_url: str | None = None, **env: str) -> None:
        self.tmp_path = tmp_path
        self.redis_url = isolated_redis_url()
        redis.Redis.from_url(self.redis_url).flushdb()
        overrides = {"DATABASE_URL": service_database_url(), "REDIS_URL": self.redis_url, "DB_CONN_MAX_AGE": "0"}
        if llm_base_url:
            overrides.update(OPENAI_API_KEY="test-key", OPENAI_BASE_URL=llm_base_url)
        overrides.update(env)
        self.env = base_env(**overrides)
        self.procs: dict[str, subprocess.Popen] = {}
        self.workers: list[Worker] = []
        self.worker_count = 0
        self._zygote: subprocess.Popen | None = None
        self.base_url = ""
        self._sender = None

    # --- processes ----------------------------------------------------------------------

    def _log(self, name: str) -> Path:
        return self.tmp_path / f"{name}.log"

    def _spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None, *, stdin=None, pipe: bool = False
    ) -> subprocess.Popen:
        log = open(self._log(name), "a")  # noqa: SIM115 - closed once the child has its own descriptor
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdin=stdin,
            stdout=subprocess.PIPE if pipe else log,
            stderr=log if pipe else subprocess.STDOUT,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def spawn_worker(
        self, *, queues: str = "llm,default", concurrency: int = 4, env: dict[str, str] | None = None
    ) -> Worker:
        """Start a worker process (``worker-N``, its own log) and return at once."""
        name, hostname = self._next_worker()
        proc = self._spawn(
            name, celery_worker_args(hostname, concurrency=concurrency, queues=queues), {**WORKER_ENV, **(env or {})}
        )
        return Worker(self, name, hostname, proc.pid, proc)

    def start_worker(self, *, concurrency: int = 4, env: dict[str, str] | None = None) -> Worker:
        """Start a worker on the real queues and wait until it is ready."""
        return self.spawn_worker(concurrency=concurrency, env=env).wait_ready()

    def fork_worker(self, *, concurrency: int = 4, visibility_timeout: int | None = None) -> Worker:
        """A worker forked from the zygote (see ``tests/reliability/zygote.py``): a cold start's imports
        are already done, so a killed worker is replaced in a fraction of a second."""
        if self._zygote is None:
            self._zygote = self._spawn(
                "zygote",
                [sys.executable, "-m", "tests.reliability.zygote"],
                WORKER_ENV,
                stdin=subprocess.PIPE,
                pipe=True,
            )
            assert self._zygote.stdout is not None
            line = self._zygote.stdout.readline().decode()
            assert line.strip() == "zygote ready", line + self.logs()
        name, hostname = self._next_worker()
        assert self._zygote.stdin is not None and self._zygote.stdout is not None
        options = f" visibility_timeout={visibility_timeout}" if visibility_timeout else ""
        self._zygote.stdin.write(f"{hostname} {self._log(name)} {concurrency}{options}\n".encode())
        self._zygote.stdin.flush()
        pid = int(self._zygote.stdout.readline())
        return Worker(self, name, hostname, pid, None).wait_ready()

    def _next_worker(self) -> tuple[str, str]:
        self.worker_count += 1
        return f"worker-{self.worker_count}", f"rel-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"

    def start_web(self) -> str:
        port = free_port()
        self._spawn(
            "web", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
        )
        self.base_url = f"http://127.0.0.1:{port}"
        group = _HealthView(self)
        wait_for_health(self.base_url, group)  # type: ignore[arg-type]
        return self.base_url

    def logs(self, tail: int = 3000) -> str:
        parts = []
        for name in [*self.procs, *(w.name for w in self.workers if w.proc is None)]:
            text = self._log(name).read_text() if self._log(name).exists() else ""
            parts.append(f"--- {name} ---\n{text[-tail:]}")
        return "\n".join(parts)

    def crashes(self) -> list[str]:
        """Tasks that raised, and tracebacks, in any process's log: the work must handle its failures."""
        found = []
        for name in [*self.procs, *(w.name for w in self.workers if w.proc is None)]:
            lines = self.log_text(name).splitlines()
            for index, line in enumerate(lines):
                if "raised unexpected" in line or line.startswith("Traceback"):
                    # The whole traceback, so a failure says what crashed, not only that something did.
                    found.append(f"{name}: " + "\n".join(lines[index : index + 80])[-3000:])
        return found

    def log_text(self, name: str) -> str:
        return self._log(name).read_text() if self._log(name).exists() else ""

    def stop(self) -> None:
        for worker in self.workers:
            if worker.proc is None and worker.alive():
                os.kill(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while any(w.proc is None and w.alive() for w in self.workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        for worker in self.workers:
            if worker.proc is None and worker.alive():
                os.kill(worker.pid, signal.SIGKILL)
        if self._sender is not None:
            self._sender.close()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        redis.Redis.from_url(self.redis_url).flushdb()

    # --- talking to it ------------------------------------------------------------------

    def send_task(self, name: str, args, *, queue: str) -> None:
        """Send a task to this stack's broker, as another Cohorta process would."""
        if self._sender is None:
            from celery import Celery

            self._sender = Celery("reliability-sender", broker=self.redis_url, set_as_current=False)
            self._sender.conf.update(task_serializer="json", accept_content=["json"])
        self._sender.send_task(name, args=list(args), queue=queue)

    def api(self, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, dict]:
        return http_json(method, f"{self.base_url}{path}", token, body)

    def ws_url(self, path: str) -> str:
        return self.base_url.replace("http://", "ws://") + path


class Worker:
    def __init__(self, stack: Stack, name: str, hostname: str, pid: int, proc: subprocess.Popen | None) -> None:
        self.stack, self.name, self.hostname, self.pid, self.proc = stack, name, hostname, pid, proc
        stack.workers.append(self)

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def log(self) -> str:
        return self.stack.log_text(self.name)

    def wait_ready(self, timeout: float = 45) -> Worker:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"{self.name} exited\n{self.stack.logs()}")
            if " ready." in self.log():
                return self
            time.sleep(0.02)
        raise AssertionError(f"{self.name} never became ready\n{self.stack.logs()}")

    def kill(self) -> None:
        """kill -9: no shutdown handlers, no acks; the kernel drops its connections."""
        os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        if self.proc is not None:
            self.proc.wait(timeout=10)
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not self.alive(), f"{self.name} survived SIGKILL"


class _HealthView:
    """What ``wait_for_health`` needs from a process group: children to watch and their logs."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    @property
    def children(self):
        return list(self.stack.procs.items())

    def logs(self) -> str:
        return self.stack.logs()


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class SessionClient:
    """A websocket client of ``/ws/focus-groups/<id>/`` that speaks the hello/replay protocol.

    It keeps every saved message by sequence number and says hello with the highest sequence up to
    which it has *everything* (its contiguous watermark)."""

    def __init__(self, stack: Stack, focus_group_id: int, token: str, name: str = "client") -> None:
        self.url = stack.ws_url(f"/ws/focus-groups/{focus_group_id}/")
        self.token = token
        self.name = name
        self.messages: dict[int, dict] = {}
        self.deliveries: list[tuple[int, int, bool]] = []  # (connection number, sequence, replayed)
        self.hellos: dict[int, int] = {}  # connection number -> the last_seq its hello sent
        self.connections = 0
        self.closed_by_server: list[str] = []
        self.ws: ClientConnection | None = None

    @property
    def watermark(self) -> int:
        n = 0
        while n + 1 in self.messages:
            n += 1
        return n

    def open(self, *, sock: socket.socket | None = None, max_queue: int | None = 16, **options) -> ClientConnection:
        self.connections += 1
        self.ws = connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {self.token}"},
            open_timeout=10,
            sock=sock,
            max_queue=max_queue,
            max_size=None,
            legacy=True,
            **options,
        )
        return self.ws

    def hello(self) -> int:
        last = self.watermark
        assert self.ws is not None
        self.ws.send(json.dumps({"type": "hello", "last_seq": last}))
        self.hellos[self.connections] = last
        return last

    def handle(self, event: dict) -> str:
        kind = event.get("type", "")
        if kind in ("message.new", "message.complete", "message.error"):
            message = event["message"]
            self.deliveries.append((self.connections, message["sequence"], bool(event.get("replayed"))))
            self.messages.setdefault(message["sequence"], message)  # saved messages never change
        return kind

    def order_violations(self) -> list[str]:
        """Each connection must carry the saved messages after its hello's sequence: each once, in order,
        no gaps (a connection cut short carries a prefix of them)."""
        problems = []
        for conn, start in self.hellos.items():
            got = [seq for c, seq, _ in self.deliveries if c == conn]
            if got != list(range(start + 1, start + 1 + len(got))):
                problems.append(f"{self.name} connection {conn} (hello {start}): {got[:12]}…")
        return problems

    def recv(self, timeout: float) -> dict | None:
        assert self.ws is not None
        try:
            raw = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            self.closed_by_server.append(repr(exc))
            return None
        event = json.loads(raw)
        self.handle(event)
        return event

    def until_replay_done(self, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self.recv(max(0.05, deadline - time.monotonic()))
            if event is not None and event["type"] == "replay.done":
                return event
        raise AssertionError(f"{self.name}: no replay.done in {timeout}s")

    def catch_up(self, last_sequence: int, timeout: float = 30) -> None:
        """Connect, say hello, and read until every message up to ``last_sequence`` is here."""
        self.open()
        self.hello()
        self.until_replay_done(timeout)
        deadline = time.monotonic() + timeout
        while self.watermark < last_sequence and time.monotonic() < deadline:
            self.recv(0.2)
        self.close()

    def close(self, abrupt: bool = False) -> None:
        if self.ws is None:
            return
        try:
            if abrupt:
                # Gone without a close frame: a laptop lid, a dropped Wi-Fi.
                self.ws.socket.shutdown(socket.SHUT_RDWR)
                self.ws.socket.close()
            self.ws.close()
        except OSError:
            pass
        self.ws = None
