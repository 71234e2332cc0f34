"""The ``account_export`` job kind: a ZIP of everything the user has (see ``privacy.exports``)."""

from cohorta.jobs.registry import job_kind
from privacy import services
from privacy.selectors import EXPORT_KIND


# Disk- and CPU-bound, no model calls: the default queue, not the LLM one.
@job_kind(EXPORT_KIND, label="Data export", queue="default")
def account_export(job, ctx):
    return services.data_export_build(job=job, progress=ctx.progress)
