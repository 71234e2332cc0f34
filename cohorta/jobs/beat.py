"""A heartbeat from a side thread, for work that waits on a provider for longer than the reaper's patience.

The reaper takes work whose beat went stale for dead (its worker stopped); a slow LLM call is not a dead
worker, so the thread doing the call beats from beside it."""

import logging
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)


class SideBeat:
    """Calls ``beat()`` every ``JOBS_HEARTBEAT_SECONDS`` (or ``interval``) from a daemon thread while the
    ``with`` block runs. A failed beat is logged, never raised: a missed beat is not worth failing the work."""

    def __init__(self, beat: Callable[[], None], *, name: str, interval: float | None = None) -> None:
        self.beat = beat
        self.interval = settings.JOBS_HEARTBEAT_SECONDS if interval is None else interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self):
        if self.interval > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.beat()
                except Exception:
                    logger.exception("Heartbeat %s failed", self._thread.name)
        finally:
            connection.close()
