"""Autonomous sessions in service mode (Postgres, Redis, Celery threads worker, daphne, fake LLM).

  single      one 30-turn session: wall time ÷ the LLM latency on its critical path
              (each turn's decision call + persona call, from the usage events)     target ≤ 1.10
  concurrent  N sessions at once vs the same session alone: speed ratio per session  target ≥ 0.90
  memory      worker RSS before and after many turns                                  target: flat

Run:  DATABASE_URL=postgres://postgres@127.0.0.1:5432/cohorta REDIS_URL=redis://127.0.0.1:6379/0 \\
      .venv/bin/python bench/autonomous.py single|concurrent|memory [--latency 0.5] [--sessions 50] [--turns 30]
"""

import argparse
import statistics
import time

from _common import cpu_seconds, report, rss_mb, service_stack


def make_session(user, turns: int, index: int = 0):
    from focusgroups.models import DiscussionGuide, FocusGroup, Participant
    from personas.services import persona_create

    # Every session is the same session (same title, people and guide), so the fake LLM, whose answers
    # follow from the prompt, gives each one the same decisions and answers as the solo run: the same
    # turns, the same lengths. Only the index in the database differs.
    session = FocusGroup.objects.create(owner=user, title="Bench", objective="How do parents choose meal kits?")
    for i in range(4):
        Participant.objects.create(
            focus_group=session,
            position=i,
            persona=persona_create(
                owner=user, data={"name": f"Person{i} Bench", "age": 30 + i, "occupation": "Teacher"}
            ),
        )
    questions = [{"text": f"Question {q}: what matters most when you choose?", "probes": []} for q in range(turns)]
    DiscussionGuide.objects.create(
        focus_group=session,
        data={
            "title": "Bench",
            "sections": [{"title": "All", "goal": "Explore", "turn_budget": turns, "questions": questions}],
        },
    )
    return session


def run_and_wait(sessions, timeout: float = 1800) -> dict:
    from focusgroups.autonomous.runs import run_start
    from focusgroups.models import AutonomousRun

    started = {}
    for session in sessions:
        run = run_start(focus_group=session)
        started[run.pk] = time.perf_counter()
    finished: dict = {}
    deadline = time.perf_counter() + timeout
    while len(finished) < len(started) and time.perf_counter() < deadline:
        for run_id, status in AutonomousRun.objects.filter(pk__in=list(started)).values_list("pk", "status"):
            if status == "ended" and run_id not in finished:
                finished[run_id] = time.perf_counter() - started[run_id]
        time.sleep(0.05)
    return finished


def stack_worker_pids(first) -> list[int]:
    """Every Celery worker process the stack started (they are the bench's children, like the first)."""
    import subprocess as sp

    out = sp.run(["pgrep", "-f", "celery -A config worker -n bench"], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()] or [first.pid]


def critical_path_seconds(session) -> float:
    from usage.models import UsageEvent

    latencies = UsageEvent.objects.filter(
        focus_group_id=session.pk, status="ok", feature__in=["conversation_decision", "persona_response"]
    )
    return sum(e.latency_ms for e in latencies) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["single", "concurrent", "memory"])
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--batches", type=int, default=6, help="memory: batches of 2 x 50-turn sessions")
    parser.add_argument("--worker-processes", type=int, default=1, help="Celery worker processes (threads pool each)")
    parser.add_argument(
        "--tokens-per-second", type=float, default=60, help="the fake LLM's streaming rate per answer (default 60)"
    )
    args = parser.parse_args()
    concurrency = max(32, args.sessions // args.worker_processes + 8) if args.mode != "single" else 32
    stack = service_stack(
        ttft=args.latency,
        tokens_per_second=args.tokens_per_second,
        concurrency=concurrency,
        processes=args.worker_processes,
    )
    with stack as (_, worker):
        worker_pids = stack_worker_pids(worker)
        from billing.services import credits_grant
        from cohorta.accounts.models import User
        from focusgroups.models import AutonomousRun

        user = User.objects.create_user("bench@example.com", "Correct-Horse-Battery-9", monthly_quota_usd=100000)
        credits_grant(user=user, amount=1_000_000, idempotency_key="bench")

        if args.mode == "single":
            session = make_session(user, args.turns)
            [wall] = run_and_wait([session]).values()
            run = AutonomousRun.objects.get(focus_group=session)
            floor = critical_path_seconds(session)
            report(
                f"autonomous session: {run.turns_done} turns, fake LLM {args.latency:.2f} s to first token",
                [
                    ("wall time", f"{wall:.1f} s (ended: {run.end_reason})"),
                    ("LLM time on the critical path", f"{floor:.1f} s"),
                    ("ratio", f"{wall / floor:.3f}   target ≤ 1.10"),
                ],
            )
        elif args.mode == "concurrent":
            solo_session = make_session(user, args.turns, index=999)
            [solo] = run_and_wait([solo_session]).values()
            solo_llm = critical_path_seconds(solo_session)
            sessions = [make_session(user, args.turns, index=i) for i in range(args.sessions)]
            cpu_before = cpu_seconds(worker_pids)
            finished = run_and_wait(sessions)
            walls = list(finished.values())
            cpu = cpu_seconds(worker_pids) - cpu_before
            turns = sum(AutonomousRun.objects.filter(focus_group__in=sessions).values_list("turns_done", flat=True))
            llm_of = {
                run.pk: critical_path_seconds(run.focus_group)
                for run in AutonomousRun.objects.filter(pk__in=list(finished)).select_related("focus_group")
            }
            llm = statistics.median(llm_of.values())
            speeds = sorted(solo / wall for wall in walls)
            # The same, per second of LLM work: what this stack adds on top of the model, whatever the
            # fake LLM's own pace under 50 streams.
            overhead_speeds = sorted((llm_of[pk] / wall) / (solo_llm / solo) for pk, wall in finished.items())
            report(
                f"{args.sessions} autonomous sessions at once ({args.turns} turns each)",
                [
                    ("solo wall time", f"{solo:.1f} s (LLM on the critical path {solo_llm:.1f} s)"),
                    (
                        "concurrent wall time (median / worst)",
                        f"{statistics.median(walls):.1f} s / {max(walls):.1f} s (LLM, median {llm:.1f} s)",
                    ),
                    (
                        "speed vs solo (worst / median)",
                        f"{speeds[0]:.2f} / {statistics.median(speeds):.2f}   target ≥ 0.90 each",
                    ),
                    (
                        "LLM time ÷ wall time vs solo (worst / median)",
                        f"{overhead_speeds[0]:.2f} / {statistics.median(overhead_speeds):.2f}",
                    ),
                    ("worker CPU per turn", f"{cpu / max(turns, 1) * 1000:.0f} ms ({cpu:.1f} s for {turns} turns)"),
                    ("finished", f"{len(walls)} of {args.sessions}"),
                ],
            )
        else:
            # Equal batches (2 sessions x 50 turns at a time), so each reading follows the same work:
            # a leak shows as growth batch after batch, warm-up only in the first ones.
            readings = [rss_mb(worker.pid)]
            for batch in range(args.batches):
                run_and_wait([make_session(user, 50, index=batch * 2 + i) for i in range(2)])
                readings.append(rss_mb(worker.pid))
            turns = sum(AutonomousRun.objects.values_list("turns_done", flat=True))
            late = readings[2:]
            report(
                f"worker memory over {turns} turns ({args.batches} batches of 2 sessions x 50 turns)",
                [
                    ("RSS at start, then after each batch", " / ".join(f"{r:.0f}" for r in readings) + " MB"),
                    (
                        "growth after the first two batches",
                        f"{late[-1] - late[0]:+.0f} MB over {turns * (len(late) - 1) // args.batches} turns"
                        "   target: flat",
                    ),
                ],
            )


if __name__ == "__main__":
    main()
