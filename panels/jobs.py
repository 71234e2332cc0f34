"""The panel job kind: ``panel_build``, one job per panel. Its handler only hands out the first members;
their tasks carry the panel on and the last one finishes the job (panels/runner.py)."""

from cohorta.jobs.registry import job_kind
from panels import runner
from panels.models import Panel
from panels.tasks import dispatch_member

JOB_KIND = "panel_build"


def panel_abandoned(job) -> None:
    """The panel stopped (cancelled, or its worker died): close its open members and refund them."""
    panel = Panel.objects.filter(pk=job.params.get("panel_id")).first()
    if panel is not None:
        runner.panel_settle(panel)


def panel_watch(job) -> bool:
    panel = Panel.objects.filter(pk=job.params.get("panel_id")).first()
    if panel is None:
        return False  # deleted: nothing is left to wait for
    return runner.panel_watch(panel, dispatch=dispatch_member)


@job_kind(JOB_KIND, label="Panel", on_abandon=panel_abandoned, watch=panel_watch)
def panel_build(job, ctx):
    return runner.panel_execute(job, ctx, dispatch=dispatch_member)
