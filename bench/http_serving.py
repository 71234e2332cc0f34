"""HTTP serving: the same app and database under daphne (ASGI, as the Procfile ran it before issue #22)
and under gunicorn gthread workers (WSGI, as the Procfile's ``web`` runs it now), measured with wrk.

Each server runs alone, in production settings (DEBUG=0), against the same Postgres database and
Redis. Every run measures a trivial view on that server first (``/bench/bare/``, through Cohorta's
middleware: bench/serving_settings.py), then the API reads and pages of a researcher with 200
personas and a 300-message session, each as a share of that run's trivial view. Three runs per
server; the 1-minute load average is read before each measurement (the machine is shared).

Run:  DATABASE_URL=postgres://postgres@127.0.0.1:5432/cohorta REDIS_URL=redis://127.0.0.1:6379/2 \\
      .venv/bin/python bench/http_serving.py [--seconds 10] [--connections 16] [--runs 3] [--servers daphne,gunicorn]
Needs wrk (apt-get install wrk). The database named by --database (on DATABASE_URL's server) is
created and migrated on the first run and kept; each run seeds a researcher of its own.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

import psycopg
from _common import ROOT, free_port, report, seed_reader
from psycopg import sql

TARGETS = (
    ("personas API, page of 25", "api"),
    ("one session API", "api"),
    ("messages API, a 300-turn session", "api"),
    ("dashboard HTML", "page"),
    ("personas library HTML", "page"),
    ("session page HTML", "page"),
)


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    load: float


def prepare_database(name: str) -> str:
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{base}/{name}"


def server_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "bench.serving_settings",
        "DEBUG": "0",
        "SECRET_KEY": "bench-serving-" + "Zq8#vL2@pX9!mR4$tW7^yB1&nC6*eF3" * 2,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "LOG_LEVEL": "WARNING",
        # The per-user API limit (1,200/min) would answer most of the load with 429s; the limit's own
        # bookkeeping still runs on every request.
        "API_THROTTLE_USER": "100000000/min",
        "PYTHONPATH": str(ROOT),
        "STATIC_ROOT": os.path.join(tempfile.gettempdir(), "cohorta-bench-serving-static"),
    }


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_model_pricing", verbosity=0)
    # The servers run with DEBUG=0: the hashed static files must exist for pages to render.
    call_command("collectstatic", interactive=False, verbosity=0)


def seed() -> tuple[str, str, dict[str, str]]:
    """The read benches' researcher (``seed_reader``). Returns (token, session cookie, label -> path)."""
    from django.urls import reverse

    token, cookie, session_id = seed_reader(f"serving-{uuid.uuid4().hex[:8]}")
    paths = {
        "personas API, page of 25": "/api/v1/personas/",
        "one session API": f"/api/v1/focus-groups/{session_id}/",
        "messages API, a 300-turn session": f"/api/v1/focus-groups/{session_id}/messages/",
        "dashboard HTML": reverse("dashboard"),
        "personas library HTML": reverse("personas:index"),
        "session page HTML": reverse("focusgroups:detail", args=[session_id]),
    }
    return token, cookie, paths


def start(kind: str, port: int, env: dict[str, str]) -> subprocess.Popen:
    if kind == "daphne":
        args = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
    else:  # the Procfile's web line, bound to this port
        args = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "config/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "config.wsgi:application",
        ]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(150):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/bare/", timeout=1).read()
            return proc
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"{kind} exited with {proc.returncode}")
            time.sleep(0.2)
    proc.terminate()
    sys.exit(f"{kind} did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def check(url: str, headers: dict[str, str]) -> None:
    """One request first: a 4xx/5xx or a redirect to the log-in page would measure the wrong thing."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status != 200 or response.url != url:
                sys.exit(f"{url}: {response.status}, ended at {response.url}")
    except urllib.error.HTTPError as exc:
        sys.exit(f"{url}: {exc.code}: {exc.read()[:500]!r}")


def milliseconds(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, headers: dict[str, str], seconds: int, connections: int) -> Result:
    load = os.getloadavg()[0]
    # wrk's own 2 s timeout would drop the slowest requests from the latency figures.
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "60s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*timeout (\d*[1-9]\d*)", out)
    if errors:
        sys.exit(f"{url}: {errors.group(0)}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    if "99" not in latency:
        sys.exit(f"{url}: no latency figures from wrk:\n{out}")
    return Result(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        p50_ms=milliseconds(latency["50"]),
        p99_ms=milliseconds(latency["99"]),
        load=load,
    )


def spread(values: list[float], fmt: str) -> str:
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--servers", default="daphne,gunicorn")
    parser.add_argument("--database", default="cohorta_serve_bench")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("Set DATABASE_URL (Postgres) and REDIS_URL: this benchmark runs the service stack.")

    env = server_env(prepare_database(args.database))
    setup_django(env)
    token, cookie, paths = seed()
    headers = {
        "api": {"Authorization": f"Bearer {token}"},
        "page": {"Cookie": cookie},
    }
    kinds = dict(TARGETS)
    print(f"{os.cpu_count()} CPUs; {args.connections} connections, {args.seconds} s per measurement, {args.runs} runs")
    for server in args.servers.split(","):
        port = free_port()
        proc = start(server, port, env)
        base = f"http://127.0.0.1:{port}"
        try:
            for label, path in paths.items():
                check(base + path, headers[kinds[label]])
            # Warm-up: imports, template loading, each worker's database connections.
            wrk(base + "/bench/bare/", {}, 2, args.connections)
            for label, path in paths.items():
                wrk(base + path, headers[kinds[label]], 2, args.connections)
            runs: list[dict[str, Result]] = []
            for run in range(args.runs):
                results = {"bare view": wrk(base + "/bench/bare/", {}, args.seconds, args.connections)}
                for label, path in paths.items():
                    results[label] = wrk(base + path, headers[kinds[label]], args.seconds, args.connections)
                runs.append(results)
                print(f"  {server} run {run + 1}: " + ", ".join(f"{k} {r.rps:.0f}" for k, r in results.items()))
        finally:
            stop(proc)
        rows = []
        for label in ["bare view", *paths]:
            results = [run[label] for run in runs]
            share = [run[label].rps / run["bare view"].rps * 100 for run in runs]
            rows.append(
                (
                    label,
                    f"{spread([r.rps for r in results], '{:.0f}')} req/s"
                    + ("" if label == "bare view" else f" ({spread(share, '{:.0f}')}% of bare)")
                    + f"   p50 {spread([r.p50_ms for r in results], '{:.1f}')} ms"
                    + f"   p99 {spread([r.p99_ms for r in results], '{:.1f}')} ms"
                    + f"   load {spread([r.load for r in results], '{:.2f}')}",
                )
            )
        report(f"{server}: min / median / max of {args.runs} runs", rows)


if __name__ == "__main__":
    main()
