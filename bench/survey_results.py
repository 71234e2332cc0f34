"""The survey results page for a finished run of 1,000 respondents (no LLM: no ratio).

Creates the run directly in the database: 10 questions of mixed kinds (three 5-point Likert, one 7-point
Likert, two 0–10, a single and a multiple choice, two open), 1,000 respondents with persona profiles
(age, gender, location: the segments), and their answers drawn from distributions that differ by segment
(older people like the price less, Londoners recommend more…), with a few empty and refused answers.
Then GETs the run's page through Django's test client (in process: the view, the queries and the
template, no HTTP server; the heap frozen for the collector first, as config/asgi.py does at start-up),
logged in as the owner:

  cold    the run's results not computed yet (the results cache emptied before each GET)
  warm    the results already computed (the page a researcher reloads)     target < 300 ms

each the median and worst of 5 (after one GET not counted), with the queries of one warm GET.

Needs DATABASE_URL (Postgres; a database named cohorta_bench_survey_results is created, or --database).
With REDIS_URL the results cache is Redis (as in service mode; that Redis database is flushed first),
without it the local-memory cache.
Run:  DATABASE_URL=postgres://postgres@127.0.0.1:5432/cohorta [REDIS_URL=redis://127.0.0.1:6379/0] \\
      .venv/bin/python bench/survey_results.py [--respondents 1000] [--runs 5]
"""

import argparse
import gc
import math
import os
import random
import statistics
import subprocess
import sys
import time

import redis
from _common import ROOT, report

CITIES = ("London", "Leeds", "Manchester", "Bristol", "Glasgow", "Cardiff", "Belfast", "Norwich")
GENDERS = ("female", "male", "female", "male", "non-binary")
OPEN_TEXTS = (
    "A cheaper price per portion would make me switch.",
    "If the recipes were quicker on weeknights I'd try it.",
    "Less packaging, honestly, the waste puts me off.",
    "I'd need to trust the ingredients are fresh.",
    "Bigger portions for the kids and I'd be in.",
    "Nothing really, I like choosing my own food at the shop.",
    "Something quick, one pan, under half an hour, with vegetables.",
    "A curry I can make from scratch without a trip to the shops.",
)
LIKERT5 = ["Strongly disagree", "Disagree", "Neither agree nor disagree", "Agree", "Strongly agree"]
QUESTIONS = [
    {"kind": "likert5", "text": "A weekly meal-kit subscription would save me time.", "labels": LIKERT5},
    {"kind": "likert5", "text": "£8 a portion is a fair price for a meal kit.", "labels": LIKERT5},
    {"kind": "nps", "text": "How likely are you to recommend a meal kit to a friend?"},
    {
        "kind": "likert7",
        "text": "I trust a meal-kit company with my weekly food shop.",
        "labels": ["1", "2", "3", "4", "5", "6", "7"],
    },
    {
        "kind": "likert5",
        "text": "How likely are you to try a meal kit in the next three months?",
        "labels": ["Very unlikely", "Unlikely", "Fifty-fifty", "Likely", "Very likely"],
        "anchor_preset": "likelihood5",
    },
    {"kind": "single", "text": "Which plan would you pick?", "options": ["2 meals", "3 meals", "4 meals", "None"]},
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


def setup(database: str) -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a Postgres server.")
    base = url.rsplit("/", 1)[0]
    for statement in (f"DROP DATABASE IF EXISTS {database}", f"CREATE DATABASE {database}"):
        subprocess.run(["psql", f"{base}/postgres", "-qc", statement], check=True, capture_output=True)
    if os.environ.get("REDIS_URL"):
        # Run ids start again at 1 in the new database: results cached under an earlier run's id must go.
        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    os.environ.update(
        {
            "DATABASE_URL": f"{base}/{database}",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            # DEBUG=1 as in bench/analytics.py: DEBUG=0 needs collected static files and HTTPS; the page does a few
            # queries, so the query log DEBUG keeps costs nothing here.
            "DEBUG": "1",
            "SECRET_KEY": "bench-" + "k" * 60,
            "LOG_LEVEL": "WARNING",
            "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _pmf(points: int, centre: float, spread: float, rng: random.Random) -> list[float]:
    """An SSR-like distribution over the points: peaked near ``centre`` (0…1 of the scale), never one-hot."""
    mu = centre * (points - 1)
    weights = [math.exp(-((k - mu) ** 2) / (2 * spread**2)) + 0.05 * rng.random() for k in range(points)]
    low = min(weights)
    weights = [w - low + 0.02 for w in weights]
    total = sum(weights)
    return [w / total for w in weights]


def _profile(index: int, rng: random.Random) -> dict:
    """A persona's whole profile, as a run freezes it (every field of personas.models.PROFILE_FIELDS: ~2 KB)."""
    from llm.schema_faker import fake_person
    from personas.models import BIG_FIVE

    person = fake_person(seed=index, gender=rng.choice(GENDERS), age=rng.randint(18, 80))
    phrases = ("cooking from scratch", "saving money", "family time", "eating less meat", "trying new food",
               "a tidy kitchen", "supporting local shops", "fitness", "travel", "gardening")  # fmt: skip
    sentences = (
        *OPEN_TEXTS,
        "Grew up in a big family where dinner was the one time everyone sat down together.",
        "Works long hours and plans the week's meals on Sunday evening.",
        "Shops around for deals and keeps a close eye on the household budget.",
    )
    return {
        "name": f"{person['name']} {index:04d}",
        "age": person["age"],
        "gender": person["gender"],
        "location": f"{rng.choice(CITIES)}, UK",
        "occupation": person["occupation"],
        "income_bracket": rng.choice(("Under £20k", "£20k–£40k", "£40k–£70k", "Over £70k")),
        "education": person["education"],
        "household": person["household"],
        **{trait: rng.randint(1, 100) for trait in BIG_FIVE},
        **{field: rng.sample(phrases, 4) for field in ("values", "interests", "goals", "frustrations")},
        "brand_affinities": rng.sample(("Tesco", "Aldi", "Waitrose", "Gousto", "Lidl", "M&S"), 3),
        "buying_behaviour": " ".join(rng.sample(sentences, 2)),
        "media_habits": " ".join(rng.sample(sentences, 2)),
        "tech_savviness": rng.choice(("low", "medium", "high")),
        "backstory": " ".join(rng.sample(sentences, 5)),
        "speaking_style": "Plain and direct, with the odd joke.",
        "quote": rng.choice(OPEN_TEXTS),
    }


def make_run(respondents: int, seed: int = 7):
    """A finished run of ``respondents`` with every answer stored as the runner stores it."""
    from django.utils import timezone

    from cohorta.accounts.models import User
    from cohorta.jobs.models import Job, JobState
    from surveys.models import Answer, AnswerStatus, Respondent, RespondentState, Run
    from surveys.questionnaire import scale_values
    from surveys.services import frozen_questions, survey_create

    rng = random.Random(seed)
    user = User.objects.create_user("bench@example.com", "Correct-Horse-Battery-9")
    intro = "A meal-kit service, £8 a portion."
    survey = survey_create(owner=user, title="Meal kits", intro=intro, questions=QUESTIONS)
    now = timezone.now()
    job = Job.objects.create(
        owner=user,
        kind="survey_run",
        state=JobState.DONE,
        progress_done=respondents,
        progress_total=respondents,
        progress_message=f"{respondents} of {respondents} respondents answered",
        started_at=now,
        finished_at=now,
    )
    questions = frozen_questions(survey)
    run = Run.objects.create(
        survey=survey,
        owner=user,
        job=job,
        panel_label=f"{respondents} selected personas",
        questions=questions,
        title=survey.title,
        intro=survey.intro,
        seed=12345,
        unit_cost=1,
    )
    people = []
    for i in range(respondents):
        people.append(
            Respondent(
                run=run,
                position=i,
                state=RespondentState.DONE,
                profile=_profile(i, rng),
                question_order=[q["id"] for q in questions],
                started_at=now,
                finished_at=now,
            )
        )
    people = Respondent.objects.bulk_create(people, batch_size=500)
    answers = []
    for person in people:
        profile = person.profile
        older = (profile["age"] - 18) / 62  # 0 young … 1 old
        london = profile["location"].startswith("London")
        for position, q in enumerate(questions, start=1):
            roll = rng.random()
            status = AnswerStatus.EMPTY if roll < 0.01 else AnswerStatus.REFUSED if roll < 0.02 else AnswerStatus.OK
            answer = Answer(
                respondent=person,
                question_id=q["id"],
                shown_position=position,
                option_order=q["options"],
                status=status,
                text="I'd rather not say." if status == AnswerStatus.REFUSED else "",
            )
            if status == AnswerStatus.OK:
                if q["kind"] in ("likert5", "likert7", "nps"):
                    values = scale_values(q["kind"])
                    centre = 0.6 - 0.35 * older * (q["number"] == 2) + 0.15 * london * (q["kind"] == "nps")
                    centre = min(1.0, max(0.0, centre + rng.gauss(0, 0.2)))
                    pmf = _pmf(len(values), centre, spread=0.8 + rng.random(), rng=rng)
                    answer.pmf = pmf
                    answer.expected = sum(p * v for p, v in zip(pmf, values, strict=True))
                    answer.direct = values[round(centre * (len(values) - 1))]
                    answer.text = rng.choice(OPEN_TEXTS)
                elif q["kind"] == "single":
                    weights = [3 - 2 * older, 3, 1 + older, 1 + 2 * older]
                    answer.choices = rng.choices(q["options"], weights=weights)
                    answer.text = f"I'd go for {answer.choices[0]}."
                elif q["kind"] == "multiple":
                    answer.choices = [o for o in q["options"] if rng.random() < (0.6 if o == "Price" else 0.25)]
                    answer.text = "The price, mostly." if "Price" in answer.choices else "Not much, to be honest."
                else:
                    answer.text = rng.choice(OPEN_TEXTS)
            answers.append(answer)
    Answer.objects.bulk_create(answers, batch_size=2000)
    return user, run


def measure(user, run, runs: int) -> dict:
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    client = Client()
    client.force_login(user)
    url = reverse("surveys:run", kwargs={"run_id": run.pk})
    # What a web process holds from start-up stays out of the collector's full passes, as config/asgi.py
    # does; without it a full pass over this process's heap lands in about one GET in seven (160-190 ms).
    gc.collect()
    gc.freeze()

    def get() -> tuple[float, int]:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.status_code
        assert b'id="survey-results"' in response.content  # the results, not the progress card
        return elapsed, len(response.content)

    cold = []
    for index in range(runs + 1):
        cache.clear()
        client.force_login(user)  # the session lives in the cache too, in service mode
        elapsed, _ = get()
        if index:
            cold.append(elapsed)
    get()
    warm, size = [], 0
    for _ in range(runs):
        elapsed, size = get()
        warm.append(elapsed)
    with CaptureQueriesContext(connection) as queries:
        get()
    return {"cold": cold, "warm": warm, "queries": len(queries), "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--respondents", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database", default="cohorta_bench_survey_results")
    args = parser.parse_args()
    setup(args.database)
    started = time.perf_counter()
    user, run = make_run(args.respondents)
    made = time.perf_counter() - started
    print(f"made a run of {args.respondents} respondents × {len(QUESTIONS)} questions in {made:.1f} s")
    result = measure(user, run, args.runs)
    report(
        f"survey results page: {args.respondents} respondents × {len(QUESTIONS)} questions (Django test client)",
        [
            (
                "cold (results computed)",
                f"median {statistics.median(result['cold']):.0f} ms, worst {max(result['cold']):.0f} ms",
            ),
            (
                "warm (results cached)",
                f"median {statistics.median(result['warm']):.0f} ms, worst {max(result['warm']):.0f} ms"
                "   target < 300 ms",
            ),
            ("queries (one warm GET)", str(result["queries"])),
            ("page size", f"{result['bytes'] / 1024:.0f} KB"),
        ],
    )


if __name__ == "__main__":
    main()
