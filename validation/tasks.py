"""Validation work that runs on a worker."""

from celery import shared_task

from validation import services


@shared_task(name="validation.tasks.score")
def score(validation_id: int) -> str:
    return services.validation_rescore_run(validation_id=validation_id)


@shared_task(name="validation.tasks.reap")
def reap() -> int:
    return services.validations_reap()
