"""Building a light panel in service mode (Postgres, Redis, Celery threads worker, fake LLM in its own process at a
fixed latency): issue #19's "with the fake LLM, a 1,000-persona light panel finishes within 1.2 × the critical
path its concurrency limit allows".

  ratio       wall time (``panel_build_start`` called → the panel's job done) ÷ the critical path the parallelism
              limit allows: ceil(size / P) × one member's LLM time, P = App settings' "panel personas at once".
              A member's LLM time is its one ``persona_light`` call, from the usage events (the mean over the
              panel's calls, as the gateway timed them).                                    target ≤ 1.20

Also reported, to find where time goes: the time ``panel_build_start`` itself takes (checks, sampling the cores,
the members' rows, the credit reserve, the job), the start (call → first member writing: the job's hop to a
worker, its first hand-out, the members' hop), how full the P slots were (members' writing time ÷ (P × wall)),
each member's time beyond its LLM call (claim, prompt, saving the persona with the panel's row locked), the gap
between a member finishing and the next one starting (its task's ``panel_advance``, the Celery hop, the claim),
the tail (last member done → job done) and the worker processes' CPU per persona.

Needs DATABASE_URL (Postgres; a database named cohorta_bench_panel is created, or --database) and REDIS_URL (its
Redis database is flushed first).
Run:  DATABASE_URL=postgres://postgres@127.0.0.1:5432/cohorta REDIS_URL=redis://127.0.0.1:6379/0 \\
      .venv/bin/python bench/panel_build.py [--size 1000] [--parallelism 8] [--latency 0.5] [--runs 3]
"""

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import redis
from _common import cpu_seconds, report, service_stack

TARGET = "bundled:us_adults"


def stack_worker_pids() -> list[int]:
    """The Celery worker processes this benchmark started: its own children (other benchmarks running on the same
    machine name their workers alike, so a match on the command line would count theirs too)."""
    me = os.getpid()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me and b"celery" in cmdline and b"worker" in cmdline:
            pids.append(int(entry.name))
    return pids


def alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


def make_owner(size: int, runs: int, parallelism: int):
    from billing.services import credits_grant
    from cohorta.accounts.models import User
    from cohorta.core.models import AppSettings

    app = AppSettings.objects.get_or_create(pk=1)[0]
    app.panel_parallelism = parallelism
    app.panel_max_size = max(app.panel_max_size, size)
    app.default_monthly_quota_usd = 100_000
    app.save()
    user = User.objects.create_user(f"bench-{time.time_ns()}@example.com", "Correct-Horse-Battery-9")
    per_person = max(1, app.panel_light_credit_cost)
    credits_grant(
        user=user, amount=2 * per_person * size * runs, idempotency_key=f"bench-{user.pk}", description="bench"
    )
    return user


def pct(values, q):
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def build_once(owner, *, size: int, parallelism: int, seed: int, worker_pids: list[int], stall_seconds: float) -> dict:
    from django.utils import timezone

    from cohorta.jobs.models import Job, JobState
    from panels.models import PanelMember
    from panels.services import panel_build_start
    from usage.models import UsageEvent

    cpu_before = cpu_seconds(worker_pids)
    called_at = timezone.now()
    started = time.perf_counter()
    panel = panel_build_start(owner=owner, target=TARGET, size=size, depth="light", seed=seed)
    start_call = time.perf_counter() - started
    job_id = panel.job_id
    assert job_id is not None, "panel_build_start made no job"
    last_done, last_change = -1, time.perf_counter()
    while True:
        state, done_so_far = Job.objects.filter(pk=job_id).values_list("state", "progress_done").first() or ("", 0)
        if state not in (JobState.QUEUED, JobState.RUNNING, JobState.PENDING):
            break
        if not all(alive(pid) for pid in worker_pids):
            sys.exit("A Celery worker died: the panel cannot finish. Start a worker by hand to see why.")
        if done_so_far != last_done:
            last_done, last_change = done_so_far, time.perf_counter()
        elif time.perf_counter() - last_change > stall_seconds:
            sys.exit(
                f"No member finished for {stall_seconds:g} s ({done_so_far} of {size} done): its tasks were lost "
                "(was the Redis database flushed?) or the workers are stuck. Nothing was measured."
            )
        time.sleep(0.02)
    wall = time.perf_counter() - started
    cpu = cpu_seconds(worker_pids) - cpu_before
    job = Job.objects.get(pk=job_id)
    members = list(PanelMember.objects.filter(panel=panel).order_by("started_at"))
    done = [m for m in members if m.state == "done"]
    calls = list(
        UsageEvent.objects.filter(job_id=job_id, feature="persona_light", status="ok").values_list(
            "latency_ms", "output_tokens"
        )
    )
    call_s = sorted((ms or 0) / 1000 for ms, _ in calls)
    per_member = statistics.mean(call_s) if call_s else float("nan")
    critical = math.ceil(size / parallelism) * per_member
    spans = [(m.finished_at - m.started_at).total_seconds() for m in members if m.started_at and m.finished_at]
    finishes = sorted(m.finished_at for m in members if m.finished_at)
    starts = sorted(m.started_at for m in members if m.started_at)
    # A slot is free when a member finishes; the next member starts writing when its task claims it.
    # Pair the k-th finish with the (k + P)-th start.
    gaps = sorted(
        (starts[k + parallelism] - finishes[k]).total_seconds() * 1000
        for k in range(len(starts) - parallelism)
        if k < len(finishes)
    )
    return {
        "state": job.state,
        "done": len(done),
        "failed": sum(m.state == "failed" for m in members),
        "wall": wall,
        "start_call": start_call,
        "first_start": (starts[0] - called_at).total_seconds() if starts else float("nan"),
        "tail": (job.finished_at - finishes[-1]).total_seconds() if finishes and job.finished_at else float("nan"),
        "critical": critical,
        "ratio": wall / critical,
        "call_s": per_member,
        "call_p90": pct(call_s, 0.9),
        "tokens": statistics.mean(t or 0 for _, t in calls) if calls else float("nan"),
        "calls": len(calls),
        "beyond_call": (statistics.mean(spans) - per_member) * 1000 if spans else float("nan"),
        "fill": sum(spans) / (parallelism * wall),
        "gaps": gaps,
        "cpu": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1000, help="people in the panel (at most 1,000)")
    parser.add_argument("--parallelism", type=int, default=8, help='App settings\' "panel personas at once"')
    parser.add_argument("--latency", type=float, default=0.5, help="fake LLM seconds to first token")
    parser.add_argument("--tokens-per-second", type=float, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker-processes", type=int, default=1, help="Celery worker processes (threads pool)")
    parser.add_argument("--concurrency", type=int, default=32, help="threads per worker process")
    parser.add_argument("--database", default="cohorta_bench_panel")
    parser.add_argument(
        "--stall-seconds", type=float, default=120, help="give up when no member finishes for this long"
    )
    args = parser.parse_args()
    if os.environ.get("REDIS_URL"):
        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    results = []
    stack = service_stack(
        ttft=args.latency,
        tokens_per_second=args.tokens_per_second,
        database=args.database,
        processes=args.worker_processes,
        concurrency=args.concurrency,
    )
    with stack:
        worker_pids = stack_worker_pids()
        owner = make_owner(args.size, args.runs, args.parallelism)
        for index in range(args.runs):
            r = build_once(
                owner,
                size=args.size,
                parallelism=args.parallelism,
                seed=1000 + index,
                worker_pids=worker_pids,
                stall_seconds=args.stall_seconds,
            )
            results.append(r)
            print(
                f"panel: {r['state']}, {r['done']} done, {r['failed']} failed, wall {r['wall']:.1f} s, "
                f"critical path {r['critical']:.1f} s, ratio {r['ratio']:.3f}",
                flush=True,
            )

    waves = math.ceil(args.size / args.parallelism)
    report(
        f"light panel: {args.size} people from {TARGET}, {args.parallelism} at once, "
        f"{args.worker_processes} worker process(es) × {args.concurrency} threads, "
        f"fake LLM {args.latency:.2f} s to first token, {args.tokens_per_second:g} tokens/s",
        [
            ("wall ÷ critical path (each run)", ", ".join(f"{r['ratio']:.3f}" for r in results) + "   target ≤ 1.20"),
            ("wall time (each run)", ", ".join(f"{r['wall']:.1f} s" for r in results)),
            ("critical path", ", ".join(f"{waves} × {r['call_s']:.2f} s" for r in results)),
            (
                "one persona_light call (mean / p90)",
                ", ".join(f"{r['call_s']:.2f} / {r['call_p90']:.2f} s, {r['tokens']:.0f} tokens" for r in results),
            ),
            ("panel_build_start itself", ", ".join(f"{r['start_call'] * 1000:.0f} ms" for r in results)),
            ("call → first member writing", ", ".join(f"{r['first_start'] * 1000:.0f} ms" for r in results)),
            ("slots busy (writing ÷ P × wall)", ", ".join(f"{r['fill']:.2f}" for r in results)),
            ("member time beyond its call (mean)", ", ".join(f"{r['beyond_call']:.0f} ms" for r in results)),
            (
                "hand-out gap, finish → next start",
                ", ".join(f"p50 {pct(r['gaps'], 0.5):.0f} ms, p90 {pct(r['gaps'], 0.9):.0f} ms" for r in results),
            ),
            ("last member done → job done", ", ".join(f"{r['tail'] * 1000:.0f} ms" for r in results)),
            (
                "worker CPU per persona",
                ", ".join(f"{r['cpu'] / max(1, r['done']) * 1000:.0f} ms ({r['cpu']:.1f} s)" for r in results),
            ),
            (
                "members done / failed (calls)",
                ", ".join(f"{r['done']} / {r['failed']} ({r['calls']})" for r in results),
            ),
        ],
    )


if __name__ == "__main__":
    main()
