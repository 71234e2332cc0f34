"""Job kinds of the gateway itself."""

from cohorta.jobs.registry import job_kind
from llm.gateway import complete
from llm.prompts import render_prompt


@job_kind("llm_check", label="AI connection check")
def llm_check(job, ctx):
    """One small call through the gateway: proves the configured model answers,
    and shows its latency and cost like any other metered call."""
    ctx.progress(0, 1, "Asking the model to say hello")
    result = complete(
        feature="healthcheck",
        messages=[{"role": "user", "content": render_prompt("llm:healthcheck", {"name": job.owner.display_name})}],
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
