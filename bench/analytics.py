"""Back-office analytics at scale: 1,000,000 usage events and 10,000 users on Postgres.

Targets (issue #8): every analytics page, the dashboard and the users list answer
in < 500 ms through the Django test client (logged in as staff), with a query
count that does not grow with the data. Run:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/analytics.py

It creates (and afterwards keeps, for EXPLAIN) the database ``cohorta_bench_analytics``;
``--reuse`` skips the load when that database already has the events.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

from _common import ROOT, report

DATABASE = "cohorta_bench_analytics"


def setup(database: str, reuse: bool) -> bool:
    """A migrated database; returns whether it still needs loading."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a Postgres server: this benchmark loads with generate_series.")
    base = url.rsplit("/", 1)[0]
    if not reuse:
        for statement in (f"DROP DATABASE IF EXISTS {database}", f"CREATE DATABASE {database}"):
            subprocess.run(["psql", f"{base}/postgres", "-qc", statement], check=True, capture_output=True)
    os.environ.update(
        {
            "DATABASE_URL": f"{base}/{database}",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "1",
            "LOG_LEVEL": "WARNING",
            "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
        }
    )
    os.environ.pop("REDIS_URL", None)  # a local-memory cache: the bench measures the database
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from usage.models import UsageEvent

    return not (reuse and UsageEvent.objects.exists())


def load(*, users: int, events: int, days: int) -> None:
    """Users, focus groups, ledger rows and paid checkouts through the ORM (bulk); events with
    one INSERT … SELECT FROM generate_series, spread over ``days`` days in time order, as an
    append-only log is written."""
    from datetime import timedelta
    from decimal import Decimal

    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.utils import timezone

    from billing.models import CheckoutSession, CheckoutStatus, CreditTransaction, CreditTransactionKind
    from cohorta.accounts.models import User
    from focusgroups.models import FocusGroup

    started = time.perf_counter()
    now = timezone.now()
    password = make_password("Correct-Horse-Battery-9")
    User.objects.bulk_create(
        User(email=f"user{n:05d}@bench.example", name=f"User {n}", password=password, date_joined=now)
        for n in range(users)
    )
    User.objects.create_superuser("staff@bench.example", "Correct-Horse-Battery-9")
    user_ids = list(User.objects.filter(is_staff=False).values_list("pk", flat=True))
    FocusGroup.objects.bulk_create(
        (
            FocusGroup(owner_id=user_ids[n % len(user_ids)], title=f"Session {n}", objective="Bench")
            for n in range(users * 2)
        ),
        batch_size=5000,
    )
    fg_ids = list(FocusGroup.objects.values_list("pk", flat=True))
    ledger, checkouts = [], []
    for n in range(users * 8):
        user_id = user_ids[n % len(user_ids)]
        at = now - timedelta(minutes=(n * 37) % (days * 24 * 60))
        if n % 4 == 0:
            ledger.append(
                CreditTransaction(
                    user_id=user_id,
                    kind=CreditTransactionKind.PURCHASE,
                    delta=220,
                    balance_after=220,
                    idempotency_key=f"bench:p:{n}",
                    reference=f"checkout:cs_{n}",
                    created_at=at,
                )
            )
            if n % 8 == 0:
                checkouts.append(
                    CheckoutSession(
                        stripe_id=f"cs_{n}",
                        user_id=user_id,
                        credits=220,
                        amount=19900,
                        currency="usd",
                        status=CheckoutStatus.PAID,
                        paid_at=at,
                        created_at=at,
                    )
                )
        else:
            ledger.append(
                CreditTransaction(
                    user_id=user_id,
                    kind=CreditTransactionKind.SPEND,
                    delta=-40,
                    balance_after=0,
                    idempotency_key=f"bench:s:{n}",
                    reference=f"focusgroup:{fg_ids[n % len(fg_ids)]}",
                    created_at=at,
                )
            )
    CreditTransaction.objects.bulk_create(ledger, batch_size=5000)
    CheckoutSession.objects.bulk_create(checkouts, batch_size=5000)
    User.objects.filter(pk__in=user_ids[::3]).update(monthly_quota_usd=Decimal("40.00"))
    print(f"  users, focus groups, ledger: {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO usage_usageevent (created_at, user_id, job_id, focus_group_id, persona_id, feature, provider,
                model, model_alias, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_usd,
                price_missing, usage_source, status, error_class, latency_ms, ttft_ms, streamed, simulated, attempt,
                request_id)
            SELECT now() - make_interval(days => %(days)s) * (%(events)s - n + random()) / %(events)s,
                   %(first_user)s + (random() * (%(users)s - 1))::int,
                   NULL,
                   CASE WHEN random() < 0.7 THEN %(first_fg)s + (random() * (%(fgs)s - 1))::int END,
                   NULL,
                   (ARRAY['persona_basic','persona_detail','persona_response','moderator','conversation_decision',
                          'discussion_guide','key_themes','report'])[1 + n %% 8],
                   'openai',
                   (ARRAY['gpt-5.4','gpt-5.4-mini','gpt-5.4','claude-x'])[1 + n %% 4],
                   'main',
                   500 + (random() * 8000)::int, 0, 100 + (random() * 900)::int, 0,
                   CASE WHEN n %% 500 = 0 THEN NULL ELSE round((random() * 0.02)::numeric, 8) END,
                   n %% 500 = 0,
                   CASE WHEN n %% 50 = 0 THEN 'estimated' ELSE 'reported' END,
                   CASE WHEN n %% 40 = 0 THEN 'error' ELSE 'ok' END,
                   '', 800 + (random() * 4000)::int, 200 + (random() * 800)::int, true, false, 1, ''
            FROM generate_series(1, %(events)s) AS n
            """,
            {
                "days": days,
                "first_user": min(user_ids),
                "users": len(user_ids),
                "first_fg": min(fg_ids),
                "fgs": len(fg_ids),
                "events": events,
            },
        )
    print(f"  {events:,} usage events: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"  VACUUM ANALYZE: {time.perf_counter() - started:.1f} s")


def measure(runs: int) -> list[tuple[str, str]]:
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from backoffice.views import PAGES
    from cohorta.accounts.models import User

    client = Client()
    client.force_login(User.objects.get(email="staff@bench.example"))
    some_user = User.objects.filter(is_staff=False).order_by("pk").values_list("pk", flat=True).first()
    targets = [("dashboard /admin/", reverse("admin:index"))]
    for page in PAGES:
        url = reverse(f"admin:{page.url_name}")
        targets.append((f"{page.tab} (30 days)", url))
        targets.append((f"{page.tab} (90 days)", url + "?preset=90d"))
    targets += [
        ("margin per week, 90 days", reverse("admin:analytics_margin") + "?preset=90d&granularity=week"),
        ("users list", reverse("admin:accounts_user_changelist")),
        ("users list sorted by month spend", reverse("admin:accounts_user_changelist") + "?o=-5"),
        ("users list, over-quota filter", reverse("admin:accounts_user_changelist") + "?quota=warning"),
        ("usage events list", reverse("admin:usage_usageevent_changelist")),
        ("usage events, one user", reverse("admin:usage_usageevent_changelist") + f"?user={some_user}"),
        ("staff API group_by=user", "/api/v1/staff/usage/summary/?group_by=user"),
        ("staff API group_by=day", "/api/v1/staff/usage/summary/?group_by=day"),
    ]
    rows = []
    for label, url in targets:
        response = client.get(url)  # warm: caches, connection
        assert response.status_code == 200, (url, response.status_code)
        reset_queries()  # DEBUG keeps a query log that each request clears: start from empty
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        verdict = "ok" if max(timings) < 500 else "SLOW"
        rows.append(
            (
                label,
                f"median {statistics.median(timings):6.0f} ms  max {max(timings):6.0f} ms  "
                f"{len(queries):2d} queries  {verdict}",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=180, help="events are spread over this many past days")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded database")
    parser.add_argument("--database", default=DATABASE)
    args = parser.parse_args()

    if setup(args.database, args.reuse):
        print(f"Loading {args.events:,} events, {args.users:,} users over {args.days} days…")
        load(users=args.users, events=args.events, days=args.days)
    report(f"Back-office pages ({args.runs} runs each, after one warm-up)", measure(args.runs))


if __name__ == "__main__":
    main()
