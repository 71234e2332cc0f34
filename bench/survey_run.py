"""A survey run of 200 respondents × 10 questions in service mode (Postgres, Redis, Celery threads worker,
fake LLM in its own process at a fixed latency).

  ratio       wall time (run started → its job done) ÷ the critical path the parallelism limit allows:
              ceil(respondents / P) × one respondent's LLM time, P = App settings' "survey respondents at
              once". A respondent's LLM time is its structured answer call plus its embedding requests
              (SSR), both from the usage events (the mean over respondents).       target ≤ 1.20
  batching    embedding requests (usage events of ``survey_rating``: one per request) per respondent:
              small and the same for every respondent, not one per answer.

Also reported, to find where time goes: how full the P slots were (respondent answering time ÷ (P × wall)),
and the gap between a respondent finishing and the next one starting (the hand-out: the task's end, the
Celery hop, the claim).

Needs DATABASE_URL (Postgres; a database named cohorta_bench_survey is created, or --database) and
REDIS_URL (its Redis database is flushed first: the benchmark's run ids start again at 1, and results
cached under an earlier run's id must not be served).
Run:  DATABASE_URL=postgres://postgres@127.0.0.1:5432/cohorta REDIS_URL=redis://127.0.0.1:6379/0 \\
      .venv/bin/python bench/survey_run.py [--respondents 200] [--latency 0.5] [--parallelism 8] [--runs 3]
"""

import argparse
import math
import os
import statistics
import time

import redis
from _common import report, service_stack

CITIES = ("Leeds", "Manchester", "Bristol", "Glasgow", "Cardiff", "London")
JOBS = ("Teacher", "Nurse", "Software developer", "Shop manager", "Accountant", "Retired", "Student", "Chef")
QUESTIONS = [
    {
        "kind": "likert5",
        "text": "A weekly meal-kit subscription would save me time.",
        "labels": ["Strongly disagree", "Disagree", "Neither agree nor disagree", "Agree", "Strongly agree"],
    },
    {
        "kind": "likert5",
        "text": "£8 a portion is a fair price for a meal kit.",
        "labels": ["Strongly disagree", "Disagree", "Neither agree nor disagree", "Agree", "Strongly agree"],
        "anchor_preset": "likert5_agreement",
    },
    {"kind": "nps", "text": "How likely are you to recommend a meal kit to a friend?"},
    {
        "kind": "likert7",
        "text": "I trust a meal-kit company with my weekly food shop.",
        "labels": [
            "Strongly disagree",
            "Disagree",
            "Somewhat disagree",
            "Neither agree nor disagree",
            "Somewhat agree",
            "Agree",
            "Strongly agree",
        ],
    },
    {
        "kind": "likert5",
        "text": "How likely are you to try a meal kit in the next three months?",
        "labels": ["Very unlikely", "Unlikely", "Fifty-fifty", "Likely", "Very likely"],
        "anchor_preset": "likelihood5",
    },
    {
        "kind": "single",
        "text": "Which plan would you pick?",
        "options": ["2 meals a week", "3 meals a week", "4 meals a week", "None"],
    },
    {
        "kind": "multiple",
        "text": "What would put you off?",
        "options": ["Price", "Packaging waste", "Portion size", "Delivery times", "Recipes"],
        "randomize_options": True,
    },
    {"kind": "open", "text": "What would make you switch from your usual shop?"},
    {"kind": "nps", "text": "How likely are you to recommend our recipes?"},
    {"kind": "open", "text": "Describe your ideal weeknight dinner."},
]


def make_run_inputs(respondents: int, parallelism: int):
    from billing.services import credits_grant
    from cohorta.accounts.models import User
    from cohorta.core.models import AppSettings
    from personas.services import persona_create
    from surveys.services import survey_create

    app = AppSettings.objects.get_or_create(pk=1)[0]
    app.survey_parallelism = parallelism
    app.survey_max_panel = max(app.survey_max_panel, respondents)
    app.default_monthly_quota_usd = 100_000
    app.save()
    user = User.objects.create_user(f"bench-{time.time_ns()}@example.com", "Correct-Horse-Battery-9")
    credits_grant(user=user, amount=100 * respondents, idempotency_key=f"bench-{user.pk}", description="bench")
    personas = [
        persona_create(
            owner=user,
            data={
                "name": f"Person{i} Bench",
                "age": 19 + (i * 7) % 60,
                "gender": ("female", "male")[i % 2],
                "location": f"{CITIES[i % len(CITIES)]}, UK",
                "occupation": JOBS[i % len(JOBS)],
            },
        )
        for i in range(respondents)
    ]
    survey = survey_create(
        owner=user, title="Meal kits", intro="A meal-kit service, £8 a portion.", questions=QUESTIONS
    )
    return survey, [p.pk for p in personas]


def run_once(survey, persona_ids, parallelism: int) -> dict:
    from cohorta.jobs.models import Job, JobState
    from surveys.models import Respondent
    from surveys.services import run_start
    from usage.models import UsageEvent

    started = time.perf_counter()
    run = run_start(survey=survey, persona_ids=persona_ids)
    while True:
        state = Job.objects.filter(pk=run.job_id).values_list("state", flat=True).first()
        if state not in (JobState.QUEUED, JobState.RUNNING, JobState.PENDING):
            break
        time.sleep(0.02)
    wall = time.perf_counter() - started
    job = Job.objects.get(pk=run.job_id)
    respondents = list(Respondent.objects.filter(run=run).order_by("started_at"))
    done = [r for r in respondents if r.state == "done"]
    answer_events = UsageEvent.objects.filter(job_id=run.job_id, feature="survey_answer", status="ok")
    answer_s = [e.latency_ms / 1000 for e in answer_events]
    embed_events = list(
        UsageEvent.objects.filter(
            feature="survey_rating", created_at__gte=job.created_at, created_at__lte=job.finished_at
        )
    )
    embed_total = sum(e.latency_ms for e in embed_events) / 1000
    per_respondent = statistics.mean(answer_s) + embed_total / max(1, len(done))
    critical = math.ceil(len(respondents) / parallelism) * per_respondent
    busy = sum((r.finished_at - r.started_at).total_seconds() for r in respondents if r.started_at and r.finished_at)
    # The hand-out gap: a slot is free when a respondent finishes; the next respondent starts answering when its
    # task claims it. Pair the k-th finish with the (k + P)-th start.
    finishes = sorted(r.finished_at for r in respondents if r.finished_at)
    starts = sorted(r.started_at for r in respondents if r.started_at)
    gaps = [
        (starts[k + parallelism] - finishes[k]).total_seconds() * 1000
        for k in range(len(starts) - parallelism)
        if k < len(finishes)
    ]
    return {
        "state": job.state,
        "done": len(done),
        "failed": sum(r.state == "failed" for r in respondents),
        "wall": wall,
        "critical": critical,
        "ratio": wall / critical,
        "answer_s": statistics.mean(answer_s),
        "embed_requests": len(embed_events),
        "embed_s": embed_total,
        "fill": busy / (parallelism * wall),
        "gaps": sorted(gaps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--respondents", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.5, help="fake LLM seconds to first token")
    parser.add_argument("--tokens-per-second", type=float, default=60)
    parser.add_argument("--parallelism", type=int, default=8, help='App settings\' "survey respondents at once"')
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", default="cohorta_bench_survey")
    args = parser.parse_args()
    if os.environ.get("REDIS_URL"):
        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    results = []
    with service_stack(ttft=args.latency, tokens_per_second=args.tokens_per_second, database=args.database):
        survey, persona_ids = make_run_inputs(args.respondents, args.parallelism)
        for _ in range(args.runs):
            results.append(run_once(survey, persona_ids, args.parallelism))
            r = results[-1]
            print(
                f"run: {r['state']}, {r['done']} done, {r['failed']} failed, wall {r['wall']:.1f} s, "
                f"critical path {r['critical']:.1f} s, ratio {r['ratio']:.3f}",
                flush=True,
            )

    def pct(values, q):
        return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")

    report(
        f"survey run: {args.respondents} respondents × {len(QUESTIONS)} questions, {args.parallelism} at once, "
        f"fake LLM {args.latency:.2f} s to first token, {args.tokens_per_second:g} tokens/s",
        [
            ("wall ÷ critical path (each run)", ", ".join(f"{r['ratio']:.3f}" for r in results) + "   target ≤ 1.20"),
            ("wall time (each run)", ", ".join(f"{r['wall']:.1f} s" for r in results)),
            (
                "critical path",
                ", ".join(
                    f"{math.ceil(args.respondents / args.parallelism)} × "
                    f"{r['critical'] / math.ceil(args.respondents / args.parallelism):.2f} s"
                    for r in results
                ),
            ),
            ("one answer call (mean)", ", ".join(f"{r['answer_s']:.2f} s" for r in results)),
            (
                "embedding requests per respondent",
                ", ".join(f"{r['embed_requests'] / max(1, r['done']):.2f}" for r in results)
                + f" ({', '.join(str(r['embed_requests']) for r in results)} requests)",
            ),
            (
                "embedding time per respondent",
                ", ".join(f"{r['embed_s'] / max(1, r['done']) * 1000:.0f} ms" for r in results),
            ),
            ("slots busy (answering ÷ P × wall)", ", ".join(f"{r['fill']:.2f}" for r in results)),
            (
                "hand-out gap, finish → next start",
                ", ".join(f"p50 {pct(r['gaps'], 0.5):.0f} ms, p90 {pct(r['gaps'], 0.9):.0f} ms" for r in results),
            ),
            ("respondents done / failed", ", ".join(f"{r['done']} / {r['failed']}" for r in results)),
        ],
    )


if __name__ == "__main__":
    main()
