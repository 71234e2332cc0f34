"""The panel job kinds: ``panel_build``, one job per panel, and ``panel_quality``, one per quality check of a
panel. Their handlers only hand out the first members; the members' tasks carry the job on and the last one
finishes it (panels/runner.py, panels/quality.py)."""

from cohorta.jobs.registry import job_kind
from panels import quality, runner
from panels.models import Panel, QualityCheck
from panels.tasks import dispatch_check_member, dispatch_member

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


def quality_abandoned(job) -> None:
    """The check stopped (cancelled, or its worker died): close its open members and refund them."""
    check = QualityCheck.objects.filter(pk=job.params.get("quality_check_id")).first()
    if check is not None:
        quality.quality_settle(check)


def quality_watch(job) -> bool:
    check = QualityCheck.objects.filter(pk=job.params.get("quality_check_id")).first()
    if check is None:
        return False  # its panel was deleted: nothing is left to wait for
    return quality.quality_watch(check, dispatch=dispatch_check_member)


@job_kind(quality.JOB_KIND, label="Panel quality check", on_abandon=quality_abandoned, watch=quality_watch)
def panel_quality(job, ctx):
    return quality.quality_execute(job, ctx, dispatch=dispatch_check_member)
