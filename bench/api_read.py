"""API and page read throughput in service mode (Postgres, Redis), measured with wrk.

A researcher with 200 personas and a 300-message session; wrk reads three API endpoints with a Bearer
token and three pages with a signed-in session cookie, for a fixed time each, and reports requests/s and
latency percentiles, with the same server's ceiling in the same run: a trivial view through the whole
middleware stack (``/favicon.ico``, a redirect: no database, no session). Each endpoint is read ``--runs``
times (interleaved: every endpoint once, then again), reported as min / median / max with the machine's
load average. No LLM is involved, so there is no ratio.

The web process is gunicorn with gthread workers (as the Procfile's ``web`` serves HTTP: its
``config/gunicorn.conf.py``, ``--workers``/``--threads`` as ``WEB_CONCURRENCY``/``GUNICORN_THREADS``, not niced,
``DEBUG=0``, static files collected into a temporary folder), or daphne (``--server daphne``, as before issue #22).
``--db-pool`` runs the web process with ``DB_POOL=1`` (psycopg's pool instead of persistent connections).
The environment reaches the web process: ``READ_CACHE_SECONDS=0`` serves without the read cache
(``cohorta/read_cache.py``; on by default with Redis). Nothing writes during the reads, so with the cache on
this is its hit path: what a client polling unchanged data costs.

Run:  DATABASE_URL=postgres://postgres@127.0.0.1:5432/cohorta REDIS_URL=redis://127.0.0.1:6379/0 \\
      .venv/bin/python bench/api_read.py [--seconds 10] [--connections 16] [--runs 3] [--workers 4 --threads 2]
Needs wrk (apt-get install wrk) and gunicorn (requirements.txt).
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
from pathlib import Path

from _common import ROOT, free_port, report, seed_reader, service_stack


def wrk(url: str, header: str, seconds: int, connections: int) -> dict:
    # A 10 s timeout: wrk's 2 s default drops the slowest pages' latencies from the percentiles.
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", url]
    if header:
        command[-1:-1] = ["-H", header]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": latency.get("50", "?"), "p99": latency.get("99", "?"), "errors": errors}


def _ms(value: str) -> float:
    """wrk's latency ("812.00us", "12.31ms", "1.02s", "1.20m") in milliseconds; NaN when it printed none."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        return float("nan")
    number, unit = match.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _check(url: str, header: str) -> None:
    """Fail loudly (with the body) when an endpoint does not answer 200/302 before timing it."""
    name, _, value = header.partition(": ")
    request = urllib.request.Request(url, headers={name: value} if header else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        if exc.code != 302:
            sys.exit(f"{url}: {exc.code}: {exc.read()[:500]!r}")


def start_gunicorn(args, root=ROOT) -> tuple[subprocess.Popen, str]:
    static_root = tempfile.mkdtemp(prefix="bench-static-")
    env = {
        **os.environ,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "STATIC_ROOT": static_root,
    }
    if args.db_pool:
        env["DB_POOL"] = "1"
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    # The Procfile's configuration (its hooks too), with the bench's processes and threads and without the nice
    # level the Procfile gives it beside a worker (here the ceiling is measured on the same server anyway).
    env.update(WEB_CONCURRENCY=str(args.workers), GUNICORN_THREADS=str(args.threads), WEB_NICE="0", LOG_LEVEL="WARNING")
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "config/gunicorn.conf.py",
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
    ]
    # PYTHONPATH: the tree's own code, not this one's (the bench process put ROOT on its path).
    env["PYTHONPATH"] = str(root)
    proc = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1).read()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.terminate()
        sys.exit("gunicorn did not start")
    return proc, base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--server", choices=["gunicorn", "daphne"], default="gunicorn")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (the Procfile's on 2 cores)")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker")
    parser.add_argument("--db-pool", action="store_true", help="the web process with DB_POOL=1")
    parser.add_argument("--only", default="", help="comma-separated labels to read (default: all)")
    parser.add_argument("--database", default="cohorta_bench_read", help="dropped and created for the run")
    parser.add_argument(
        "--compare",
        default="",
        help="another checkout of the code (e.g. `git archive` of the previous commit): served by a second "
        "gunicorn on the same database, and read right after this one for every endpoint and run, so both "
        "see the same machine load",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    # The per-user rate limit (1,200/min by default) would answer most of the load with 429s;
    # this measures how fast reads are served, so it is lifted for the run.
    os.environ["API_THROTTLE_USER"] = "100000000/min"
    with service_stack(ttft=0.0, database=args.database) as (daphne_url, _):
        token, session_cookie, session_id = seed_reader("api")
        servers: list[subprocess.Popen] = []
        if args.server == "gunicorn":
            proc, base_url = start_gunicorn(args)
            servers.append(proc)
        else:
            base_url = daphne_url
        bases = [("", base_url)]
        if args.compare:
            proc, other_url = start_gunicorn(args, root=Path(args.compare).resolve())
            servers.append(proc)
            bases.append((f"[{Path(args.compare).name}] ", other_url))
        bearer, cookie = f"Authorization: Bearer {token}", f"Cookie: {session_cookie}"
        targets = [
            ("ceiling: trivial view (/favicon.ico redirect)", "/favicon.ico", ""),
            ("API personas, page of 25", "/api/v1/personas/", bearer),
            ("API one session", f"/api/v1/focus-groups/{session_id}/", bearer),
            ("API messages, page of a 300-turn session", f"/api/v1/focus-groups/{session_id}/messages/", bearer),
            ("page: dashboard", "/", cookie),
            ("page: personas library", "/personas/", cookie),
            ("page: a session (300 turns)", f"/focus-groups/{session_id}/", cookie),
        ]
        if args.only:
            wanted = [part.strip() for part in args.only.split(",")]
            targets = [t for t in targets if any(w in t[0] for w in wanted) or t[0].startswith("ceiling")]
        try:
            for _, path, header in targets:
                for _, base in bases:
                    _check(base + path, header)
                    wrk(base + path, header, 2, args.connections)  # warm every thread's connections
            results: dict[str, list[dict]] = {tag + label: [] for tag, _ in bases for label, _, _ in targets}
            for _ in range(args.runs):
                for label, path, header in targets:
                    for tag, base in bases:
                        load = os.getloadavg()[0]
                        result = wrk(base + path, header, args.seconds, args.connections)
                        if result["errors"]:
                            sys.exit(f"{tag}{path}: {result['errors'].group(0)}")
                        result["load"] = load
                        results[tag + label].append(result)
                        print(
                            f"{tag}{label}: {result['rps']:.0f} req/s p50 {result['p50']} "
                            f"p99 {result['p99']} load {load:.1f}"
                        )
        finally:
            for proc in servers:
                proc.terminate()
                proc.wait(timeout=15)
        rows = []
        for label, runs in results.items():
            tag = next((tag for tag, _ in bases if tag and label.startswith(tag)), "")
            ceiling = statistics.median(r["rps"] for r in results[tag + targets[0][0]])
            rps = sorted(r["rps"] for r in runs)
            p99 = sorted(_ms(r["p99"]) for r in runs)
            p50 = sorted(_ms(r["p50"]) for r in runs)
            loads = sorted(r["load"] for r in runs)
            rows.append(
                (
                    label,
                    f"{rps[0]:.0f} / {statistics.median(rps):.0f} / {rps[-1]:.0f} req/s "
                    f"({100 * statistics.median(rps) / ceiling:.0f}% of the ceiling)   "
                    f"p50 {statistics.median(p50):.1f} ms   p99 {p99[0]:.1f} / {statistics.median(p99):.1f} / "
                    f"{p99[-1]:.1f} ms   load {loads[0]:.1f}–{loads[-1]:.1f}",
                )
            )
        server = (
            f"gunicorn gthread {args.workers}×{args.threads}{' DB_POOL=1' if args.db_pool else ''}"
            if args.server == "gunicorn"
            else "one daphne process"
        )
        report(
            f"Reads, {server}, {args.connections} connections, {args.seconds} s each, "
            f"{args.runs} runs (min / median / max)",
            rows,
        )


if __name__ == "__main__":
    main()
