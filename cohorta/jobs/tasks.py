from celery import shared_task

from cohorta.jobs import services


@shared_task(name="cohorta.jobs.tasks.run_job", bind=True)
def run_job(self, job_id: str) -> None:
    services.job_run(job_id=job_id, worker=self.request.hostname or "")


@shared_task(name="cohorta.jobs.tasks.reap_jobs")
def reap_jobs() -> int:
    return services.jobs_reap()
