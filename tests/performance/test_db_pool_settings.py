"""DB_POOL=1 (psycopg's pool instead of persistent connections), prepared statements and the session engine, from the
environment.

Each case imports the real settings in a subprocess with a controlled environment (as tests/test_settings_env.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from focusgroups.models import FocusGroup

ROOT = Path(__file__).resolve().parent.parent.parent
PG = "postgres://postgres@127.0.0.1:5432/cohorta_settings_probe"
SHOW = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "d = s.DATABASES['default']; "
    "o = d.get('OPTIONS', {}); "
    "print(json.dumps({'max_age': d.get('CONN_MAX_AGE'), 'pool': o.get('pool'), 'session': s.SESSION_ENGINE, "
    "'prepared': [o.get('server_side_binding'), o.get('prepare_threshold')]}))"
)


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    dropped = {
        "DJANGO_SETTINGS_MODULE",
        "DATABASE_URL",
        "REDIS_URL",
        "DB_POOL",
        "DB_CONN_MAX_AGE",
        "CELERY_BROKER_URL",
        "DB_PREPARED_STATEMENTS",
        "DB_PREPARE_THRESHOLD",
    }
    base = {key: value for key, value in os.environ.items() if key not in dropped}
    base.update({"DJANGO_SETTINGS_MODULE": "config.settings", "SQLITE_PATH": "/tmp/cohorta-settings-test.sqlite3"})
    base.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120)


def _settings(env: dict[str, str]) -> dict:
    result = _run(SHOW, env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_without_db_pool_connections_persist_for_a_minute():
    assert _settings({"DATABASE_URL": PG}) == {
        "max_age": 60,
        "pool": None,
        "session": "django.contrib.sessions.backends.db",
        "prepared": [True, 2],
    }


@pytest.mark.slow
def test_prepared_statements_can_be_turned_off_for_a_pooler_that_cannot_keep_them():
    assert _settings({"DATABASE_URL": PG, "DB_PREPARED_STATEMENTS": "0"})["prepared"] == [None, None]
    assert _settings({"DATABASE_URL": PG, "DB_PREPARE_THRESHOLD": "5"})["prepared"] == [True, 5]
    assert _settings({})["prepared"] == [None, None]  # SQLite: nothing to prepare


@pytest.mark.slow
def test_db_pool_replaces_persistent_connections():
    found = _settings({"DATABASE_URL": PG, "DB_POOL": "1", "DB_POOL_MAX_SIZE": "24", "DB_CONN_MAX_AGE": "0"})
    assert found["max_age"] == 0  # Django refuses a pool with persistent connections
    assert found["pool"] == {"min_size": 2, "max_size": 24, "timeout": 10.0}


@pytest.mark.slow
def test_a_pooled_process_ignores_persistent_connections_set_for_the_others():
    # The Procfile's worker sets DB_POOL=1 beside a .env that gives the web process DB_CONN_MAX_AGE=60.
    found = _settings({"DATABASE_URL": PG, "DB_POOL": "1", "DB_CONN_MAX_AGE": "60"})
    assert found["max_age"] == 0 and found["pool"] == {"min_size": 2, "max_size": 16, "timeout": 10.0}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DB_POOL": "1"}, "needs Postgres"),
    ],
)
def test_db_pool_refuses_what_cannot_work(env, message):
    result = _run(SHOW, env)
    assert result.returncode != 0 and message in result.stderr


@pytest.mark.slow
def test_sessions_are_read_from_redis_when_there_is_one():
    found = _settings({"DATABASE_URL": PG, "REDIS_URL": "redis://127.0.0.1:6379/3"})
    assert found["session"] == "django.contrib.sessions.backends.cached_db"


@pytest.mark.service
@pytest.mark.slow
def test_a_pooled_connection_queries_and_goes_back_to_the_pool():
    """Against the real Postgres: the connection comes from the pool and returns to it when closed."""
    code = (
        "import django; django.setup(); from django.db import connection; "
        "connection.cursor().execute('SELECT 1'); pool = connection.pool; "
        "used = pool.get_stats()['requests_num']; connection.close(); "
        "print(type(pool).__name__, used, pool.get_stats().get('pool_available', 0) >= 1)"
    )
    result = _run(code, {"DATABASE_URL": os.environ["DATABASE_URL"], "DB_POOL": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["ConnectionPool", "1", "True"]


@pytest.mark.django_db
def test_a_statement_run_again_on_a_connection_is_planned_once():
    """Against the real Postgres: the session's hot reads are prepared on the connection after their second run,
    so the server no longer plans them on every call."""
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are Postgres's")
    for pk in (1, 2, 3):
        list(FocusGroup.objects.filter(pk=pk))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('FROM "focusgroups_focusgroup"' in statement and "$1" in statement for statement in prepared)
