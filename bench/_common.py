"""Shared set-up for benchmarks: a fake LLM in its own process and a throwaway Cohorta database.

Benchmarks report ratios to the LLM time they cannot avoid, so results compare
across machines; they are run by hand and recorded in bench/README.md, never
asserted in CI."""

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def fake_llm(*, ttft: float, tokens_per_second: float = 0.0, log_path: str | None = None):
    """The project's fake OpenAI server in a separate process (so it does not share our GIL). ``log_path``: it
    writes a JSON line per finished chat completion there (``read_llm_log``)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.openai_server",
            "--port",
            str(port),
            "--ttft",
            str(ttft),
            "--tokens-per-second",
            str(tokens_per_second),
            "--api-key",
            "test-key",
            *(["--log", log_path] if log_path else []),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(100):
            try:
                request = urllib.request.Request(f"{base_url}/models", headers={"Authorization": "Bearer test-key"})
                urllib.request.urlopen(request, timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the fake LLM did not start")
        yield base_url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def setup_django(base_url: str) -> None:
    """Point Cohorta at the fake LLM and a fresh database, migrated and priced."""
    if not os.environ.get("DATABASE_URL"):
        os.environ["SQLITE_PATH"] = str(Path(tempfile.mkdtemp()) / "bench.sqlite3")
    os.environ.update(
        {
            "OPENAI_API_KEY": "test-key",
            "OPENAI_BASE_URL": base_url,
            "CELERY_TASK_ALWAYS_EAGER": "1",  # run jobs inline: we time the work, not the queue
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_model_pricing", verbosity=0)


def report(name: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    print(f"\n{name}")
    for label, value in rows:
        print(f"  {label.ljust(width)}  {value}")


def wait_healthy(url: str, *, tries: int = 100) -> None:
    """Until the web server at ``url`` answers its health check (or 20 s have gone)."""
    for _ in range(tries):
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.2)


@contextlib.contextmanager
def service_stack(
    *,
    ttft: float,
    tokens_per_second: float = 60,
    concurrency: int = 32,
    processes: int = 1,
    database: str = "cohorta_bench",
    llm_log: str | None = None,
):
    """The fake LLM, a fresh Postgres database, Django set up against it, a Celery worker
    (threads pool; ``processes`` of them, ``concurrency`` threads each) and daphne. Yields
    (base_url, the first worker process). Needs DATABASE_URL and REDIS_URL."""
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("Set DATABASE_URL (Postgres) and REDIS_URL: this benchmark runs the service stack.")
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    for statement in (f"DROP DATABASE IF EXISTS {database}", f"CREATE DATABASE {database}"):
        subprocess.run(["psql", f"{base}/postgres", "-qc", statement], check=True, capture_output=True)
    with fake_llm(ttft=ttft, tokens_per_second=tokens_per_second, log_path=llm_log) as llm_url:
        env = {
            **os.environ,
            "DATABASE_URL": f"{base}/{database}",
            "OPENAI_API_KEY": "test-key",
            "OPENAI_BASE_URL": llm_url,
            "DEBUG": "1",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": "bench-" + "k" * 60,
        }
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("seed_model_pricing", verbosity=0)
        port = free_port()
        # One worker process per core by default: each has its own GIL, so streaming
        # answers in one does not hold up the turns of the other.
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-n",
                    f"bench{index}@%h",
                    "-Q",
                    "llm,default",
                    "--pool",
                    "threads",
                    "--concurrency",
                    str(concurrency),
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "WARNING",
                ],
                cwd=ROOT,
                # Workers run as in production: with DEBUG on, Django keeps every query of every
                # thread's connection (up to 9,000 each), which reads as a memory leak.
                # and pooled, as the Procfile's worker line runs them.
                env={**env, "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1", "DB_POOL": env.get("DB_POOL", "1")},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for index in range(processes)
        ]
        worker = workers[0]
        web = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}")
            time.sleep(2)  # the worker connects and warms up
            yield f"http://127.0.0.1:{port}", worker
        finally:
            for proc in (*workers, web):
                proc.terminate()
            for proc in (*workers, web):
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()


def read_llm_log(path: str) -> dict[str, dict]:
    """The fake LLM's own record of each finished chat completion, by request id: ``received_monotonic`` and
    ``completed_at`` on the machine's monotonic clock (``time.monotonic()`` here reads the same clock)."""
    calls: dict[str, dict] = {}
    if not os.path.exists(path):
        return calls
    with open(path, encoding="utf-8") as log:
        for line in log:
            if line.strip():
                call = json.loads(line)
                calls[call["request_id"]] = call
    return calls


def busy_time(intervals: list[tuple[float, float]]) -> float:
    """How long at least one of the intervals was open: a session's LLM-side critical path, when the intervals
    are its calls (a round's parallel calls count once, the gaps between calls not at all)."""
    total, end = 0.0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes so far (Linux), in seconds."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def _process_cpu() -> dict[int, tuple[str, int]]:
    """Every process's command line and CPU ticks so far (Linux)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        found[int(entry.name)] = (command, int(fields[11]) + int(fields[12]))
    return found


def _machine_ticks() -> tuple[int, int]:
    """(busy, all) CPU ticks of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


class CpuSplit:
    """Where the machine's cores went between ``start()`` and ``stop()``: the CPU of each kind of process as
    cores (CPU seconds ÷ wall seconds), and what stayed idle. ``workers``: this bench's worker processes."""

    ROLES = (
        ("neighbour", "while True: pass"),
        ("fake LLM", "tests.fakes.openai_server"),
        ("Postgres", "postgres"),
        ("Redis", "redis-server"),
    )

    def __init__(self, workers: list[int]) -> None:
        self.workers = set(workers)

    def start(self) -> None:
        self.before, self.machine_before, self.started = _process_cpu(), _machine_ticks(), time.monotonic()

    def stop(self) -> dict[str, float]:
        after, (busy, total), wall = _process_cpu(), _machine_ticks(), time.monotonic() - self.started
        tick = os.sysconf("SC_CLK_TCK")
        split: dict[str, float] = {}
        for pid, (command, ticks) in after.items():
            used = ticks - self.before.get(pid, (command, 0))[1]
            if pid in self.workers:
                role = "workers"
            elif pid == os.getpid():
                role = "the bench itself"
            else:
                role = next((name for name, mark in self.ROLES if mark in command), "other")
            split[role] = split.get(role, 0.0) + used / tick / wall
        cores = os.cpu_count() or 1
        busy_ticks, all_ticks = busy - self.machine_before[0], total - self.machine_before[1]
        split["idle"] = cores * (1 - busy_ticks / all_ticks) if all_ticks else 0.0
        return split


def cpu_split_text(split: dict[str, float]) -> str:
    order = ["workers", "neighbour", "fake LLM", "Postgres", "Redis", "the bench itself", "other", "idle"]
    return ", ".join(f"{role} {split[role]:.2f}" for role in order if role in split)


def seed_reader(tag: str) -> tuple[str, str, int]:
    """The read benches' researcher (bench/api_read.py, bench/http_serving.py): 200 personas and a 300-message
    session, an API token and a signed-in browser's cookies (its session, and the CSRF cookie a browser has after
    its first page). Returns (token, Cookie header value, session id). Django must be set up first, hence the
    imports here."""
    from django.test import Client

    from billing.services import credits_grant
    from cohorta.accounts.models import User
    from cohorta.accounts.services import api_token_create
    from focusgroups.models import FocusGroup, Message, MessageRole, Participant
    from personas.services import persona_create

    user = User.objects.create_user(f"reader-{tag}@example.com", "Correct-Horse-Battery-9")
    credits_grant(user=user, amount=100, idempotency_key=f"bench-read-{tag}")
    personas = [
        persona_create(owner=user, data={"name": f"Reader {i}", "age": 20 + i % 50, "occupation": "Analyst"})
        for i in range(200)
    ]
    session = FocusGroup.objects.create(owner=user, title="Read bench", objective="Throughput", last_sequence=300)
    for position, persona in enumerate(personas[:6]):
        Participant.objects.create(focus_group=session, persona=persona, position=position)
    Message.objects.bulk_create(
        Message(
            focus_group=session,
            sequence=n,
            role=MessageRole.PERSONA,
            persona=personas[n % 6],
            speaker_name=personas[n % 6].name,
            content=f"Turn {n}: I would switch if the price per litre were clearer. " * 3,
        )
        for n in range(1, 301)
    )
    _, token = api_token_create(user=user, name="bench")
    browser = Client()
    browser.force_login(user)  # a session in the configured engine, as a signed-in browser has
    cookies = f"sessionid={browser.cookies['sessionid'].value}; csrftoken={secrets.token_hex(16)}"
    return token, cookies, session.pk
