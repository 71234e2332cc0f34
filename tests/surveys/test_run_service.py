"""A survey run on a real Celery worker with a single thread: the run's job hands its respondents out
and returns, so they get the thread. (A run job that waited for its respondents would hold the only
thread while they queued behind it, forever; with N threads, N such runs would do the same.)"""

import re
import subprocess
import sys
import uuid

import pytest
import redis
from django.core.management import call_command

from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.core.models import get_app_settings
from cohorta.jobs.models import TERMINAL_STATES, Job, JobState
from surveys import services
from surveys.models import Respondent, Run
from tests.fakes.openai_server import FakeOpenAIServer
from tests.integration.helpers import ROOT, base_env, celery_worker_args, processes, service_database_url, wait_until
from tests.personas.factories import FolderFactory, PersonaFactory

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _isolated_redis_url() -> str:
    import os

    worker = int(re.sub(r"\D", "", os.environ.get("PYTEST_XDIST_WORKER", "")) or 0)
    index = 10 + (worker + 3) % 5
    return re.sub(r"(/\d+)?$", f"/{index}", os.environ["REDIS_URL"].rstrip("/"), count=1)


def test_a_survey_run_finishes_on_a_worker_with_one_thread(tmp_path, owner):
    call_command("seed_model_pricing", verbosity=0)
    credits_grant(user=owner, amount=50, idempotency_key="test:fund")
    app = get_app_settings()
    app.survey_parallelism = 2
    app.save()
    folder = FolderFactory(owner=owner, name="Panel")
    for _ in range(5):
        PersonaFactory(owner=owner, folder=folder)
    survey = services.survey_create(
        owner=owner,
        title="Oat milk",
        questions=[
            {"kind": "likert5", "text": "I would try it.", "labels": ["SD", "D", "N", "A", "SA"]},
            {"kind": "open", "text": "Why?"},
        ],
    )
    before = credits_balance(user=owner)
    redis_url = _isolated_redis_url()
    redis.Redis.from_url(redis_url).flushdb()
    llm = FakeOpenAIServer(api_key="test-key").start()
    env = base_env(
        DATABASE_URL=service_database_url(),
        REDIS_URL=redis_url,
        DB_CONN_MAX_AGE="0",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=llm.base_url,
    )
    try:
        with processes(tmp_path) as group:
            group.start("worker", celery_worker_args(f"surveys-{uuid.uuid4().hex[:8]}@%h", concurrency=1), env)
            # Started the way the web process starts it: the job goes to the broker once committed.
            started = subprocess.run(
                [
                    sys.executable,
                    "manage.py",
                    "shell",
                    "-c",
                    "from personas.models import Folder; from surveys import services;"
                    " from surveys.models import Survey;"
                    f"print(services.run_start(survey=Survey.objects.get(pk={survey.pk}),"
                    f" folder=Folder.objects.get(pk={folder.pk})).pk)",
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert started.returncode == 0, started.stderr[-3000:]
            run = Run.objects.get(pk=int(started.stdout.strip().splitlines()[-1]))
            wait_until(
                lambda: Job.objects.get(pk=run.job_id).state in TERMINAL_STATES,
                120,
                "the survey run to finish on a one-thread worker",
                group.logs,
            )
            logs = group.logs()
    finally:
        llm.stop()
        redis.Redis.from_url(redis_url).flushdb()
    job = Job.objects.get(pk=run.job_id)
    assert job.state == JobState.DONE, (job.error, logs)
    assert job.progress_done == job.progress_total == 5
    assert set(Respondent.objects.filter(run=run).values_list("state", flat=True)) == {"done"}
    assert credits_balance(user=owner) == before - 5
