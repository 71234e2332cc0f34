"""A survey run's quality check moves on when a job ends (``cohorta.jobs.signals.job_ended``): it begins when its
run ends (or is refunded when the run never ran), and finishes when its retest run ends."""

from django.dispatch import receiver

from cohorta.jobs.signals import job_ended
from surveys.quality import runner, services


@receiver(job_ended, dispatch_uid="surveys.quality.on_job_ended")
def on_job_ended(sender, *, job_id, kind: str, state: str, **kwargs) -> None:
    if kind == "survey_run":
        services.quality_on_run_ended(job_id=job_id, state=state)
        runner.quality_on_retest_ended(job_id=job_id)
    elif kind == "survey_panel":
        services.quality_on_panel_ended(job_id=job_id)
