from celery import shared_task

from cohorta.privacy import services


@shared_task(name="cohorta.privacy.tasks.purge_exports")
def purge_exports() -> int:
    return services.data_exports_purge()
