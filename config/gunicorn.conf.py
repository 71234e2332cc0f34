# ruff: noqa: N999 - gunicorn.conf.py is the name gunicorn itself looks for
"""gunicorn settings for the Procfile's ``web`` process: Cohorta's HTTP in service mode.

Django's views are sync, so they are served over WSGI by gthread workers: each request runs on a
thread of a worker process, with no event loop between the server and the view (daphne, ASGI, costs
about 10x on the same views: issue #22, bench/README.md "Serving"). Websockets stay on daphne (the
Procfile's ``ws``); a proxy in front sends ``/ws/`` there and everything else here (deploy/).

Tuned by the environment (documented in .env.example); anything else by GUNICORN_CMD_ARGS or flags.
"""

import os
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.urls import get_resolver

from config.celery import app as celery_app

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Reading a setting loads config.settings, which also reads a local .env into the environment.
if settings.EMBEDDED_WORKER:
    # Without a broker, jobs would be queued in each worker process's memory, and websockets (on
    # daphne) could not hear anything these processes publish.
    raise RuntimeError(
        "gunicorn serves Cohorta's HTTP in service mode only: set REDIS_URL (and DATABASE_URL). "
        "On a laptop, `make run` serves pages, websockets and jobs from one process."
    )


def _usable_cores() -> int:
    # The CPUs this process may run on (a container's cpuset), not the host's count.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


bind = [f"0.0.0.0:{os.environ.get('PORT', '8000')}"]

# On a machine the web process shares with the ws process and the worker, pages and API reads yield the CPU to
# streaming: with 16 connections reading the API, answer tokens reached browsers with a p99 of 48-57 ms at
# niceness 0, 25 ms at 10 and 20 ms at 19 (the target is 25 ms; bench/README.md "Websockets under HTTP load").
# The master is niced before it forks, so every worker is. Nothing yields when nothing else wants the CPU; the
# worker is one process (one core at most, its interpreter lock), so pages keep the other. WEB_NICE=0: off.
web_nice = int(os.environ.get("WEB_NICE") or 19)
if web_nice:
    os.nice(web_nice)

# One process per core: each has its own interpreter lock. A few threads per process keep a core busy
# while a request waits on Postgres or Redis. Every thread keeps its own database connection
# (CONN_MAX_AGE), so one web machine holds workers x threads connections: 8 on a 2-core box.
worker_class = "gthread"
# Two processes of two threads per core, not one of four: a keep-alive connection stays with the process that
# accepted it, and which one accepts is chance. With one process per core, a run of connections landing on the
# same process left the other core idle and halved throughput in one load test out of two; with twice the
# processes the chance evens out (bench/README.md, "Cached reads"). The same threads in all: 4 per core.
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * _usable_cores(), 8))
threads = int(os.environ.get("GUNICORN_THREADS") or 2)

# Load Django once in the master and fork: workers share its memory and (re)start in milliseconds.
preload_app = True

# A worker that has not reported in this long is killed and replaced. Under gthread a slow request
# does not stop the worker reporting, so this catches a stuck process, not a long download.
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 30)
graceful_timeout = 30
# Idle keep-alive connections wait in the worker's poller, not on a thread; the proxy reuses them.
keepalive = 5

# The heartbeat file is touched on every loop: on a RAM-backed directory when there is one (a
# container's /tmp may be a slow overlay disk).
if Path("/dev/shm").is_dir():  # noqa: S108 - gunicorn's documented choice; only a heartbeat file lives there
    worker_tmp_dir = "/dev/shm"  # noqa: S108

# Errors to stderr; the access log is the proxy's job, on stdout here only when asked for.
errorlog = "-"
accesslog = "-" if os.environ.get("GUNICORN_ACCESS_LOG", "").strip().lower() in {"1", "true", "yes", "on"} else None
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
proc_name = "cohorta-web"


def when_ready(server) -> None:
    # In the master, before the fork: the URLconf imports every view module (DRF, the admin, the serializers),
    # which each worker's first request did otherwise (~0.4 s, waited for by whoever sent it; 0.6 s for the
    # first question of a session in bench/moderated_round.py).
    get_resolver().reverse_dict  # noqa: B018 - the property builds the resolver's tables
    # Likewise Celery's side of the first job a worker queues: registering the tasks and importing the broker's
    # transport took ~90 ms of a process's first question to a session (bench/moderated_round.py). Nothing
    # connects here: each worker opens its own broker connection when it first sends.
    celery_app.loader.import_default_modules()
    celery_app.finalize(auto=True)
    celery_app.connection_for_write().transport  # noqa: B018 - the property imports and loads the transport


def post_fork(server, worker) -> None:
    # Nothing should have connected in the master, but a connection that did must not be shared by
    # forked workers (two processes on one Postgres socket corrupt each other's results).
    connections.close_all()
