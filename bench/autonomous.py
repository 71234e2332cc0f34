"""Autonomous sessions in service mode (Postgres, Redis, Celery threads worker, daphne, fake LLM).

  single      one 30-turn session: wall time ÷ its critical path on the LLM's side    target ≤ 1.05
  concurrent  N sessions at once vs the same session alone: speed ratio per session  target ≥ 0.90
              (a CPU-bound neighbour busy on one core throughout, unless --no-neighbour)
  discussion  one session of P personas until U answers (utterances): wall time       target < 10.1 s
              (TinyTroupe tuned on the same fake: 500 ms to first token, 100 tokens/s)
  memory      worker RSS before and after many turns                                  target: flat

The critical path is measured from the LLM's side: the fake server logs when each request came in and when
its answer's last byte went out (tests/fakes/openai_server.py --log), each call is matched to its session by
the request id its usage event recorded, and a session's critical path is the time at least one of its
decision or answer calls was open (a round's parallel calls count once, the gaps between calls not at all).
A turn is one participant's answer (a round of four is four turns).

Run:  DATABASE_URL=postgres://postgres@127.0.0.1:5432/cohorta REDIS_URL=redis://127.0.0.1:6379/0 \\
      .venv/bin/python bench/autonomous.py single|concurrent|discussion|memory [--latency 0.5] [--runs 3] ...
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from _common import CpuSplit, busy_time, cpu_seconds, cpu_split_text, read_llm_log, report, rss_mb, service_stack

CRITICAL_FEATURES = ("conversation_decision", "persona_response")


def make_session(user, turns: int, index: int = 0, personas: int = 4, questions: int | None = None):
    from focusgroups.models import DiscussionGuide, FocusGroup, Participant
    from personas.services import persona_create

    # Every session is the same session (same title, people and guide), so the fake LLM, whose answers
    # follow from the prompt, gives each one the same decisions and answers as the solo run: the same
    # turns, the same lengths. Only the index in the database differs.
    session = FocusGroup.objects.create(owner=user, title="Bench", objective="How do parents choose meal kits?")
    for i in range(personas):
        Participant.objects.create(
            focus_group=session,
            position=i,
            persona=persona_create(
                owner=user, data={"name": f"Person{i} Bench", "age": 30 + i, "occupation": "Teacher"}
            ),
        )
    count = questions or turns
    questions_data = [{"text": f"Question {q}: what matters most when you choose?", "probes": []} for q in range(count)]
    DiscussionGuide.objects.create(
        focus_group=session,
        data={
            "title": "Bench",
            "sections": [{"title": "All", "goal": "Explore", "turn_budget": turns, "questions": questions_data}],
        },
    )
    return session


def run_and_wait(sessions, timeout: float = 1800) -> dict:
    """Start every session; returns run id → (started on the monotonic clock, wall seconds to its end)."""
    from focusgroups.autonomous.runs import run_start
    from focusgroups.models import AutonomousRun

    started = {}
    for session in sessions:
        mono, wall = time.monotonic(), time.time()
        run = run_start(focus_group=session)
        started[run.pk] = (mono, wall)
    finished: dict = {}
    deadline = time.monotonic() + timeout
    while len(finished) < len(started) and time.monotonic() < deadline:
        rows = AutonomousRun.objects.filter(pk__in=list(started), status="ended").values_list("pk", "ended_at")
        for run_id, ended_at in rows:
            if run_id not in finished:
                mono, wall = started[run_id]
                # The worker stamped the end (wall clock): no polling delay in the figure.
                finished[run_id] = (mono, ended_at.timestamp() - wall)
        time.sleep(0.05)
    return finished


def stack_worker_pids(first) -> list[int]:
    """Every Celery worker process this bench started: its own children only (other benches on the machine
    name their workers the same way)."""
    out = subprocess.run(
        ["pgrep", "-P", str(os.getpid()), "-f", "celery -A config worker -n bench"], capture_output=True, text=True
    ).stdout
    return [int(pid) for pid in out.split()] or [first.pid]


def critical_paths(session_ids, log_path: str) -> dict[int, tuple[float, int, int]]:
    """Per session: (its LLM-side critical path in seconds, its decision calls, its answer calls), from the fake
    server's log."""
    from usage.models import UsageEvent

    log = read_llm_log(log_path)
    calls: dict[int, list] = {}
    counts: dict[int, list[int]] = {}
    events = UsageEvent.objects.filter(
        focus_group_id__in=list(session_ids), status="ok", cached=False, feature__in=CRITICAL_FEATURES
    ).values_list("focus_group_id", "request_id", "feature")
    for session_id, request_id, feature in events:
        call = log.get(request_id)
        if call is None or call.get("completed_at") is None:
            continue
        calls.setdefault(session_id, []).append((call["received_monotonic"], call["completed_at"]))
        tally = counts.setdefault(session_id, [0, 0])
        tally[0 if feature == "conversation_decision" else 1] += 1
    return {sid: (busy_time(spans), *counts[sid]) for sid, spans in calls.items()}


def spread(values) -> str:
    values = sorted(values)
    return f"{values[0]:.2f} / {statistics.median(values):.2f} / {values[-1]:.2f}"


def load() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


def neighbour_start() -> subprocess.Popen:
    """A CPU-bound neighbour: one process spinning on one core for the whole measurement."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["single", "concurrent", "discussion", "memory"])
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--runs", type=int, default=1, help="repeat the measurement (min / median / max)")
    parser.add_argument("--personas", type=int, default=4)
    parser.add_argument("--utterances", type=int, default=20, help="discussion: answers to reach")
    parser.add_argument("--batches", type=int, default=6, help="memory: batches of 2 x 50-turn sessions")
    parser.add_argument("--worker-processes", type=int, default=1, help="Celery worker processes (threads pool each)")
    parser.add_argument(
        "--tokens-per-second", type=float, default=60, help="the fake LLM's streaming rate per answer (default 60)"
    )
    parser.add_argument(
        "--neighbour",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a CPU-bound process busy on one core throughout (default: on for concurrent, off otherwise)",
    )
    parser.add_argument("--database", default="cohorta_bench", help="the throwaway database to (re)create")
    args = parser.parse_args()
    neighbour_on = args.neighbour if args.neighbour is not None else args.mode == "concurrent"
    concurrency = max(32, args.sessions // args.worker_processes + 8) if args.mode == "concurrent" else 32
    llm_log = os.path.join(tempfile.mkdtemp(prefix="bench-llm-"), "calls.jsonl")
    stack = service_stack(
        ttft=args.latency,
        tokens_per_second=args.tokens_per_second,
        concurrency=concurrency,
        processes=args.worker_processes,
        database=args.database,
        llm_log=llm_log,
    )
    neighbour = neighbour_start() if neighbour_on else None
    try:
        with stack as (_, worker):
            run_mode(args, worker, llm_log, neighbour_on)
    finally:
        if neighbour is not None:
            neighbour.terminate()
            neighbour.wait(timeout=10)


def run_mode(args, worker, llm_log: str, neighbour_on: bool) -> None:
    worker_pids = stack_worker_pids(worker)
    from billing.services import credits_grant
    from cohorta.accounts.models import User
    from focusgroups.models import AutonomousRun

    user = User.objects.create_user("bench@example.com", "Correct-Horse-Battery-9", monthly_quota_usd=100000)
    credits_grant(user=user, amount=1_000_000, idempotency_key="bench")
    # A short session first, not measured: each worker process loads its tokenizer tables and provider client when
    # its consumer is ready, which on a busy machine took half a minute and landed on the solo run.
    run_and_wait([make_session(user, 4, index=-1, personas=args.personas) for _ in range(2 * args.worker_processes)])
    busy = "with a CPU-bound neighbour on one core" if neighbour_on else "no neighbour"

    if args.mode in ("single", "discussion"):
        rows, ratios, walls = [], [], []
        for index in range(args.runs):
            if args.mode == "single":
                session = make_session(user, args.turns, index=index, personas=args.personas)
            else:
                # U answers over a guide of four questions (its sections' budgets add up to U).
                session = make_session(user, args.utterances, index=index, personas=args.personas, questions=4)
            finished = run_and_wait([session])
            [(_, wall)] = finished.values()
            run = AutonomousRun.objects.get(focus_group=session)
            path, decisions, answers = critical_paths([session.pk], llm_log)[session.pk]
            ratios.append(wall / path)
            walls.append(wall)
            rows.append(
                (
                    f"run {index + 1}",
                    f"{wall:.2f} s wall, critical path {path:.2f} s, ratio {wall / path:.3f}; {answers} answers, "
                    f"{decisions} decisions, {run.turns_done} turns (ended: {run.end_reason}); {load()}",
                )
            )
        target = "≤ 1.05" if args.mode == "single" else "faster than 10.1 s (TinyTroupe tuned)"
        rows.append(("wall time min / median / max", f"{spread(walls)} s"))
        rows.append(("wall ÷ critical path min / median / max", f"{spread(ratios)}   target {target}"))
        title = (
            f"autonomous session, {args.turns} turns"
            if args.mode == "single"
            else f"autonomous discussion, {args.personas} personas, {args.utterances} answers"
        )
        pace = f"fake LLM {args.latency:.2f} s to first token, {args.tokens_per_second:g} tokens/s"
        report(f"{title}: {pace}; {busy}", rows)
    elif args.mode == "concurrent":
        solo_session = make_session(user, args.turns, index=999, personas=args.personas)
        # What idle workers spend anyway (the consumer's polling, heartbeats), taken off the solo session's share.
        idle_before, idle_started = cpu_seconds(worker_pids), time.monotonic()
        time.sleep(5)
        idle_rate = (cpu_seconds(worker_pids) - idle_before) / (time.monotonic() - idle_started)
        cpu_before = cpu_seconds(worker_pids)
        [(_, solo)] = run_and_wait([solo_session]).values()
        solo_cpu = max(0.0, cpu_seconds(worker_pids) - cpu_before - idle_rate * solo)
        solo_path, solo_decisions, solo_answers = critical_paths([solo_session.pk], llm_log)[solo_session.pk]
        # The same work alone: what a call costs the workers without 49 other sessions' threads in the way.
        solo_per_call = solo_cpu / max(solo_decisions + solo_answers, 1) * 1000
        rows = [
            (
                "solo wall time",
                f"{solo:.1f} s (critical path {solo_path:.1f} s, ratio {solo / solo_path:.3f}); "
                f"worker CPU {solo_per_call:.0f} ms per LLM call",
            )
        ]
        worst, median, cpu_turn, cpu_call = [], [], [], []
        for index in range(args.runs):
            sessions = [make_session(user, args.turns, index=i, personas=args.personas) for i in range(args.sessions)]
            cpu_before = cpu_seconds(worker_pids)
            machine = CpuSplit(worker_pids)
            machine.start()
            finished = run_and_wait(sessions)
            cores = machine.stop()
            cpu = cpu_seconds(worker_pids) - cpu_before
            by_run = dict(AutonomousRun.objects.filter(pk__in=list(finished)).values_list("pk", "focus_group_id"))
            paths = critical_paths(by_run.values(), llm_log)
            turns = sum(AutonomousRun.objects.filter(focus_group__in=sessions).values_list("turns_done", flat=True))
            calls = sum(d + a for _, d, a in paths.values())
            speeds = sorted(solo / wall for _, wall in finished.values())
            overhead = sorted((paths[by_run[pk]][0] / wall) / (solo_path / solo) for pk, (_, wall) in finished.items())
            worst.append(speeds[0])
            median.append(statistics.median(speeds))
            cpu_turn.append(cpu / max(turns, 1) * 1000)
            cpu_call.append(cpu / max(calls, 1) * 1000)
            rows.append(
                (
                    f"run {index + 1}",
                    f"speed vs solo worst {speeds[0]:.2f}, median {statistics.median(speeds):.2f}; "
                    f"critical path ÷ wall vs solo worst {overhead[0]:.2f}, median {statistics.median(overhead):.2f}; "
                    f"worker CPU {cpu_turn[-1]:.0f} ms per turn, {cpu_call[-1]:.0f} ms per LLM call "
                    f"({turns} turns, {calls} calls); {len(finished)} of {args.sessions} finished; {load()}",
                )
            )
            rows.append((f"run {index + 1}: cores used", cpu_split_text(cores)))
        rows.append(("worst session vs solo, min / median / max", f"{spread(worst)}   target ≥ 0.90"))
        rows.append(("median session vs solo, min / median / max", f"{spread(median)}   target ≥ 0.90"))
        rows.append(("worker CPU per turn, min / median / max", f"{spread(cpu_turn)} ms"))
        rows.append(("worker CPU per LLM call, min / median / max", f"{spread(cpu_call)} ms"))
        report(
            f"{args.sessions} autonomous sessions at once ({args.turns} turns each, {args.personas} personas), "
            f"{args.worker_processes} worker process(es), {busy}",
            rows,
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
                    f"{late[-1] - late[0]:+.0f} MB over {turns * (len(late) - 1) // args.batches} turns   target: flat",
                ),
            ],
        )


if __name__ == "__main__":
    main()
