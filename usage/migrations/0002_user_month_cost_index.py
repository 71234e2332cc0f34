"""A covering index for each user's month spend (Postgres only).

The quota check before every LLM call and the admin's users list (sorted or
filtered by this month's spend, one correlated SUM per user) read a user's
events of the month and sum their cost. With cost_usd INCLUDEd, Postgres
answers from the index alone instead of visiting a table page per event:
3× faster for the users list sorted by spend on 1M events / 10k users
(bench/analytics.py; see bench/README.md).

SQLite has no INCLUDE, and embedded mode's data is small: nothing to do there.
Built CONCURRENTLY, so applying it to a large live table does not block the
inserts of running LLM calls (hence atomic = False). Not declared in
UsageEvent.Meta: Django would warn on SQLite (models.W040) and create a
redundant plain index there.
"""

from django.db import migrations

NAME = "usage_user_created_cost_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {NAME} ON usage_usageevent (user_id, created_at) INCLUDE (cost_usd)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("usage", "0001_initial")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
