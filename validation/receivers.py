"""A validation moves on when the job of its current step ends (``cohorta.jobs.signals.job_ended``)."""

from django.dispatch import receiver

from cohorta.jobs.signals import job_ended
from validation import services
from validation.models import Validation, ValidationState


@receiver(job_ended, dispatch_uid="validation.on_job_ended")
def on_job_ended(sender, *, job_id, kind: str, state: str, **kwargs) -> None:
    if kind == "panel_build":
        validation = Validation.objects.filter(panel__job_id=job_id, state=ValidationState.PANEL).first()
        if validation is not None:
            services.validation_panel_ended(validation, state=state)
    elif kind == "survey_run":
        validation = Validation.objects.filter(run__job_id=job_id, state=ValidationState.SURVEY).first()
        if validation is not None:
            services.validation_run_ended(validation, state=state)
