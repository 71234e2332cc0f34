"""A migrated template database, so a fresh test database costs a file copy instead of a full migrate.

dj-stripe's migrations alone take 25–30 s on every fresh database (ARCHITECTURE, "Stack facts"),
and CI creates one per xdist worker (``--create-db -n auto``). Instead the first worker migrates one
template database, named after a hash of every migration file, under a Postgres advisory lock; every
test database is then ``CREATE DATABASE … TEMPLATE`` of it (Django's ``TEST["TEMPLATE"]``), and its
own ``migrate`` finds nothing to apply. A changed migration means a new hash, a new template, and
the old templates are dropped. That template build is the one real ``migrate`` of every test run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import psycopg
from django.apps import apps
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
LOCK_KEY = 0x636F686F7274  # "cohort": one template build at a time on this Postgres


def _migrations_hash() -> str:
    digest = hashlib.sha256()
    for app in sorted(apps.get_app_configs(), key=lambda a: a.label):
        folder = Path(app.path) / "migrations"
        for path in sorted(folder.glob("*.py")) if folder.is_dir() else []:
            digest.update(f"{app.label}/{path.name}".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _connect(db: dict) -> psycopg.Connection:
    return psycopg.connect(
        dbname="postgres",
        user=db["USER"] or "postgres",
        password=db["PASSWORD"] or None,
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        autocommit=True,
    )


def _url(db: dict, name: str) -> str:
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER'] or 'postgres'}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


def migrated_template() -> str | None:
    """The name of an up-to-date migrated template database (building it if needed); None off Postgres."""
    db = settings.DATABASES["default"]
    if "postgresql" not in db["ENGINE"]:
        return None
    prefix = f"{db['NAME'][:40]}_tpl_"
    name = prefix + _migrations_hash()
    with _connect(db) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        try:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                building = name + "_new"
                conn.execute(f'DROP DATABASE IF EXISTS "{building}"')
                conn.execute(f'CREATE DATABASE "{building}"')
                env = {**os.environ, "DATABASE_URL": _url(db, building), "DJANGO_SETTINGS_MODULE": "config.settings"}
                result = subprocess.run(
                    [sys.executable, "manage.py", "migrate", "--noinput"],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                )
                if result.returncode != 0:
                    raise RuntimeError(f"migrating the template database failed:\n{result.stderr[-4000:]}")
                conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
                stale = conn.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE %s AND datname <> %s",
                    [prefix.replace("_", r"\_") + "%", name],
                ).fetchall()
                for (old,) in stale:
                    conn.execute(f'DROP DATABASE IF EXISTS "{old}"')
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
    return name
