"""Moderated round of 8 through the real service stack, and token → websocket latency.

Starts the fake LLM (its own process), a Celery worker (threads pool) and daphne
against Postgres + Redis, posts one question to 8 personas through the API and
follows it on the session websocket.

  * round ratio: time from the POST until the websocket has all 8 saved answers ÷ the round's longest call,
    measured by the fake LLM itself (its log: when each request came in, when its last byte went out)
    (target ≤ 1.10)
  * POST → provider: from sending the POST to the fake receiving the round's first request (target < 30 ms)
  * token latency: from the worker receiving a token from the model to the websocket
    client receiving it (target p99 < 25 ms in service mode)

Served as the Procfile serves it (``--serving procfile``, the default): the POST goes to gunicorn
(config/gunicorn.conf.py, ``DEBUG=0``) and the websocket to daphne, each on its own port as behind the proxy;
``--serving daphne`` sends both to daphne (``DEBUG=1``), as before issue #22. ``--http-load N`` keeps N wrk
connections reading the personas API on the same web server during the rounds: websockets streaming while
HTTP is under load.

Needs DATABASE_URL (Postgres; a database named cohorta_bench is created) and REDIS_URL.
Run:  DATABASE_URL=postgres://postgres@127.0.0.1:5432/cohorta REDIS_URL=redis://127.0.0.1:6379/0 \\
      .venv/bin/python bench/moderated_round.py [--latency 1.0] [--personas 8] [--rounds 3]
"""

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from _common import ROOT, free_port, read_llm_log, report, service_stack, wait_healthy


@contextlib.contextmanager
def gunicorn_web():
    """The Procfile's web process on its own port, against the stack's database and Redis (os.environ)."""
    port = free_port()
    env = {
        **os.environ,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"),
        # The load's requests are the bench's, not a script to slow down: the limit's bookkeeping still runs.
        "API_THROTTLE_USER": "1000000/min",
    }
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "config.wsgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        web.terminate()
        web.wait(timeout=10)


@contextlib.contextmanager
def http_load(url: str, token: str, connections: int):
    """wrk reading ``url`` with ``connections`` connections until the block ends (nothing when 0)."""
    if not connections:
        yield
        return
    if shutil.which("wrk") is None:
        sys.exit("--http-load needs wrk (apt-get install wrk)")
    load = subprocess.Popen(
        ["wrk", "-t", "2", "-c", str(connections), "-d", "600s", "-H", f"Authorization: Bearer {token}", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)  # under load before the first round
        yield
    finally:
        load.terminate()
        load.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--personas", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--warmup", type=int, default=2, help="unmeasured rounds first (a fresh server's threads connect on first use)"
    )
    parser.add_argument("--database", default="cohorta_bench", help="the throwaway database to (re)create")
    parser.add_argument("--serving", choices=["procfile", "daphne"], default="procfile")
    parser.add_argument("--http-load", type=int, default=0, help="wrk connections on the personas API meanwhile")
    args = parser.parse_args()
    llm_log = os.path.join(tempfile.mkdtemp(prefix="bench-llm-"), "calls.jsonl")
    stack = service_stack(ttft=args.latency, tokens_per_second=60, database=args.database, llm_log=llm_log)
    with stack as (daphne_url, _worker), contextlib.ExitStack() as serving:
        ws_port = int(daphne_url.rsplit(":", 1)[1])
        web_url = serving.enter_context(gunicorn_web()) if args.serving == "procfile" else daphne_url
        from cohorta.accounts.models import User
        from cohorta.accounts.services import api_token_create
        from focusgroups.models import FocusGroup, Participant
        from personas.services import persona_create
        from usage.models import UsageEvent

        user = User.objects.create_user("bench@example.com", "Correct-Horse-Battery-9")
        _, token = api_token_create(user=user, name="bench")
        session = FocusGroup.objects.create(owner=user, title="Bench", objective="How do parents choose meal kits?")
        for i in range(args.personas):
            persona = persona_create(
                owner=user, data={"name": f"Person {i} Bench", "age": 30 + i, "occupation": "Teacher"}
            )
            Participant.objects.create(focus_group=session, persona=persona, position=i)
        if True:
            from websockets.sync.client import connect

            ws = connect(
                f"ws://127.0.0.1:{ws_port}/ws/focus-groups/{session.pk}/",
                additional_headers={"Authorization": f"Bearer {token}"},
            )
            ws.send(json.dumps({"type": "hello", "last_seq": 0}))
            json.loads(ws.recv(timeout=10))

            ratios, latencies, in_worker, to_consumer, to_client = [], [], [], [], []
            longest_calls, to_provider, post_ms = [], [], []
            serving.enter_context(http_load(f"{web_url}/api/v1/personas/", token, args.http_load))
            for round_number in range(-args.warmup, args.rounds):
                if round_number == 0:  # the warm-up rounds (negative numbers) are not measured
                    for values in (ratios, latencies, in_worker, to_consumer, to_client, longest_calls, to_provider):
                        values.clear()
                    post_ms.clear()
                request = urllib.request.Request(
                    f"{web_url}/api/v1/focus-groups/{session.pk}/messages/",
                    data=json.dumps(
                        {"content": f"Question {round_number}: what would make you try a meal kit?"}
                    ).encode(),
                    method="POST",
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                )
                started = time.monotonic()  # the fake's log is on this clock too
                urllib.request.urlopen(request, timeout=10).read()
                post_ms.append((time.monotonic() - started) * 1000)
                done = 0
                while done < args.personas:
                    event = json.loads(ws.recv(timeout=30))
                    if event["type"] == "token.delta" and event.get("t"):
                        now = time.time()
                        latencies.append((now - event["t"]) * 1000)
                        if event.get("forwarded_at") and event.get("sent_at"):
                            in_worker.append((event["sent_at"] - event["t"]) * 1000)
                            to_consumer.append((event["forwarded_at"] - event["sent_at"]) * 1000)
                            to_client.append((now - event["forwarded_at"]) * 1000)
                    elif event["type"] in ("message.complete", "message.error"):
                        done += 1
                round_wall = time.monotonic() - started
                time.sleep(0.3)  # the fake writes its log line once the last byte is out
                ids = set(
                    UsageEvent.objects.filter(
                        focus_group_id=session.pk, feature="persona_response", status="ok"
                    ).values_list("request_id", flat=True)
                )
                calls = [c for c in read_llm_log(llm_log).values() if c["request_id"] in ids]
                calls = [c for c in calls if c["received_monotonic"] >= started and c["completed_at"]]
                longest = max(c["completed_at"] - c["received_monotonic"] for c in calls)
                longest_calls.append(longest)
                to_provider.append((min(c["received_monotonic"] for c in calls) - started) * 1000)
                ratios.append(round_wall / longest)
            ws.close()

    def pct(values, q):
        values = sorted(values)
        return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")

    p50, p99 = statistics.median(latencies), pct(latencies, 0.99)
    report(
        f"moderated round: {args.personas} personas, fake LLM {args.latency:.1f} s to first token, "
        f"served by {'gunicorn + daphne (Procfile)' if args.serving == 'procfile' else 'daphne'}"
        + (f", {args.http_load} wrk connections on the personas API meanwhile" if args.http_load else ""),
        [
            ("longest call of each round (fake's log)", ", ".join(f"{c:.2f} s" for c in longest_calls)),
            ("round ÷ its longest call", ", ".join(f"{r:.3f}" for r in ratios) + "   target ≤ 1.10"),
            ("POST → first provider request", ", ".join(f"{t:.0f} ms" for t in to_provider) + "   target < 30 ms"),
            ("POST answered in", ", ".join(f"{t:.0f} ms" for t in post_ms)),
            ("load average", " / ".join(f"{x:.1f}" for x in os.getloadavg())),
            (
                "token → websocket latency",
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(latencies)} tokens   target p99 < 25 ms",
            ),
            ("  of which queued in the worker", f"p50 {pct(in_worker, 0.5):.1f} ms, p99 {pct(in_worker, 0.99):.1f} ms"),
            ("  of which Redis → consumer", f"p50 {pct(to_consumer, 0.5):.1f} ms, p99 {pct(to_consumer, 0.99):.1f} ms"),
            ("  of which consumer → client", f"p50 {pct(to_client, 0.5):.1f} ms, p99 {pct(to_client, 0.99):.1f} ms"),
        ],
    )


if __name__ == "__main__":
    main()
