"""The live brief page while stage 1 works: what it is doing and for how long, not a bar stuck at 0."""

import re
import threading
import time

import pytest

from billing.services import credits_grant
from cohorta.jobs.models import Job, JobState
from cohorta.jobs.services import job_run
from personas import generation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def deferred_jobs(monkeypatch):
    queued = []
    monkeypatch.setattr("cohorta.jobs.tasks.run_job.apply_async", lambda args, **kw: queued.append(args[0]))
    return queued


def test_stage_one_shows_what_it_sketches_with_a_moving_bar_and_the_time_so_far(client, owner, fake_llm, deferred_jobs):
    credits_grant(user=owner, amount=100, idempotency_key="test:fund")
    fake_llm.ttft = 1.5  # keeps the stage-1 call in flight while the page is read
    brief = generation.brief_start(owner=owner, description="Commuters who cycle to work in Leeds.", count=6)
    [job_id] = deferred_jobs
    worker = threading.Thread(target=job_run, kwargs={"job_id": job_id, "worker": "test"})
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not fake_llm.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(fake_llm.requests) == 1  # the stage-1 call, not answered yet
        job = Job.objects.get(pk=job_id)
        assert (job.state, job.progress_done, job.progress_message) == (JobState.RUNNING, 0, "Sketching 6 people…")

        client.force_login(owner)
        part = client.get(f"/personas/briefs/{brief.pk}/personas/").content.decode()
        assert "progress-waiting" in part and "progress-bar-animated" in part
        assert 'style="width: 0%"' not in part
        assert re.search(r"Sketching 6 people….*data-elapsed=\"\d+\"[^>]*>\d+:\d\d<", part, re.S)
        assert "Writing the next profile" not in part  # nothing is being written while the people are sketched
    finally:
        worker.join(timeout=60)
    job.refresh_from_db()
    assert job.state == JobState.DONE
    part = client.get(f"/personas/briefs/{brief.pk}/personas/").content.decode()
    assert "progress-waiting" not in part and "data-elapsed" not in part and 'style="width: 100%"' in part
