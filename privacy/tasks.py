from celery import shared_task

from privacy import services


@shared_task(name="privacy.tasks.purge_exports")
def purge_exports() -> int:
    return services.data_exports_purge()
