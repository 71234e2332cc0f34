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


@job_kind("llm_check", label="AI connection check")
def llm_check(job, ctx):
    """One small call through the gateway: proves the configured model answers,
    and shows its latency and cost like any other metered call."""
    from llm.gateway import complete
    from llm.prompts import render_prompt

    ctx.progress(0, 1, "Asking the model to say hello")
    result = complete(
        feature="healthcheck",
        messages=[{"role": "user", "content": render_prompt("core:healthcheck", {"name": job.owner.display_name})}],
        user=job.owner,
        job=job,
        max_tokens=120,
    )
    ctx.progress(1, 1, "The model answered")
    return {
        "reply": result.text,
        "model": result.model,
        "simulated": result.simulated,
        "latency_ms": result.latency_ms,
        "ttft_ms": result.ttft_ms,
        "input_tokens": result.tokens.input_tokens,
        "output_tokens": result.tokens.output_tokens,
        "cost_usd": str(result.cost_usd) if result.cost_usd is not None else None,
    }
