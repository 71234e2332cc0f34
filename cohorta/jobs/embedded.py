"""Embedded mode: a Celery worker (threads pool) and beat inside the web process.

With the ``memory://`` broker the queue lives in this process, so the worker
must too. Tasks still run off the request thread: a page never waits for a
job. Only for a laptop; service mode runs workers as separate processes.
"""

import logging
import threading

from cohorta.jobs.services import jobs_reap_orphans_at_startup

logger = logging.getLogger(__name__)

_started = threading.Event()


def start_embedded_worker(app, concurrency: int = 8) -> None:
    """Start ``app``'s worker (and beat) on a thread of this process, once: the web process in embedded mode,
    or a management command that waits for jobs (``validate_panel``)."""
    if _started.is_set():
        return
    _started.set()
    thread = threading.Thread(target=_run_worker, args=(app, concurrency), name="cohorta-embedded-worker", daemon=True)
    thread.start()


def _run_worker(app, concurrency: int) -> None:

    # Jobs left "running" by a previous run of this process can never finish.
    try:
        jobs_reap_orphans_at_startup()
    except Exception:  # the database may not be migrated yet; the worker still starts
        logger.exception("Could not reap orphaned jobs at startup")

    # Beat as a daemon thread: WorkController(beat=True) would fork a beat
    # *process* that outlives the web server when it is stopped.
    from celery.beat import EmbeddedService

    EmbeddedService(app, thread=True).start()
    # WorkController, unlike app.Worker, installs no signal handlers: those
    # only work in the main thread, which belongs to the web server here.
    worker = app.WorkController(
        pool_cls="threads",
        concurrency=concurrency,
        queues=["default", "llm"],
        beat=False,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        hostname="embedded@localhost",
        loglevel="WARNING",
    )
    logger.info("Embedded Celery worker starting (threads pool, concurrency %s)", concurrency)
    worker.start()
