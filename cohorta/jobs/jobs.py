"""Built-in job kinds."""

import platform
import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from cohorta.jobs.registry import job_kind


@job_kind("worker_check", label="Worker check")
def worker_check(job, ctx):
    """Walks a few steps on a worker, timing the database and cache from there.

    Operators use it to prove that workers run and that progress reaches the
    browser; it costs nothing and calls no model.
    """
    steps = int(job.params.get("steps", 5))
    pause = float(job.params.get("step_seconds", 0.5))
    timings: list[dict] = []
    ctx.progress(0, steps, f"Starting {steps} steps")
    for step in range(1, steps + 1):
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        db_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        cache.set(f"worker-check:{job.pk}", step, 30)
        cache.get(f"worker-check:{job.pk}")
        cache_ms = (time.perf_counter() - started) * 1000
        timings.append({"step": step, "db_ms": round(db_ms, 2), "cache_ms": round(cache_ms, 2)})
        if pause:
            time.sleep(pause)
        ctx.progress(step, steps, f"Step {step} of {steps} done")
    return {
        "worker": ctx.worker,
        "mode": "service" if settings.SERVICE_MODE else "embedded",
        "database": connection.vendor,
        "python": platform.python_version(),
        "steps": timings,
    }
