"""API read throughput in service mode (daphne, Postgres, Redis), measured with wrk.

A researcher with 200 personas and a 300-message session; wrk reads three API
endpoints with a Bearer token for a fixed time each and reports requests/s and
latency percentiles. One daphne process, as `make web` runs it: scale out with
more processes behind the proxy. No LLM is involved, so there is no ratio.

Run:  DATABASE_URL=postgres://postgres@127.0.0.1:5432/cohorta REDIS_URL=redis://127.0.0.1:6379/0 \\
      .venv/bin/python bench/api_read.py [--seconds 15] [--connections 16]
Needs wrk (apt-get install wrk).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

from _common import report, service_stack


def seed():
    from billing.services import credits_grant
    from cohorta.accounts.models import User
    from cohorta.accounts.services import api_token_create
    from focusgroups.models import FocusGroup, Message, MessageRole, Participant
    from personas.services import persona_create

    user = User.objects.create_user("reader@example.com", "Correct-Horse-Battery-9")
    credits_grant(user=user, amount=100, idempotency_key="bench-read")
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
    return token, session.pk


def wrk(url: str, token: str, seconds: int, connections: int) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": latency.get("50", "?"), "p99": latency.get("99", "?"), "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    # The per-user rate limit (1,200/min by default) would answer most of the load with 429s;
    # this measures how fast reads are served, so it is lifted for the run.
    os.environ["API_THROTTLE_USER"] = "100000000/min"
    with service_stack(ttft=0.0, database="cohorta_bench_read") as (base_url, _):
        token, session_id = seed()
        rows = []
        for label, path in (
            ("personas, page of 25", "/api/v1/personas/"),
            ("one session", f"/api/v1/focus-groups/{session_id}/"),
            ("messages, page of a 300-turn session", f"/api/v1/focus-groups/{session_id}/messages/"),
        ):
            result = wrk(base_url + path, token, args.seconds, args.connections)
            if result["errors"]:
                import urllib.error
                import urllib.request

                request = urllib.request.Request(base_url + path, headers={"Authorization": f"Bearer {token}"})
                try:
                    urllib.request.urlopen(request, timeout=10)
                except urllib.error.HTTPError as exc:
                    sys.exit(f"{path}: {result['errors'].group(0)}; now {exc.code}: {exc.read()[:500]!r}")
                sys.exit(f"{path}: {result['errors'].group(0)}")
            rows.append((label, f"{result['rps']:.0f} req/s   p50 {result['p50']}   p99 {result['p99']}"))
        report(f"API reads, one daphne process, {args.connections} connections, {args.seconds} s each", rows)


if __name__ == "__main__":
    main()
