"""The Celery application.

Service mode: ``celery -A config worker`` and ``celery -A config beat`` run as
their own processes against Redis. Embedded mode: the broker is the in-process
``memory://`` transport and ``cohorta.jobs.embedded`` starts a threads-pool worker
inside the web process, so a request still never waits for a job.
"""

import gc
import os
import sys

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("cohorta")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def warm_up(**kwargs) -> None:
    """Load what the first LLM task would otherwise pay for: the tokenizer tables,
    the provider client and the event publisher."""
    # Imported here because this module loads with the settings, before Django's apps are ready.
    from cohorta.publisher import publisher_start
    from llm.gateway import get_provider
    from llm.tokens import count_tokens

    # Many threads stream tokens while one publishes them; a shorter GIL switch
    # interval (default 5 ms) lets the publisher run promptly between chunks.
    sys.setswitchinterval(0.001)
    count_tokens("warm up")
    provider = get_provider()
    if hasattr(provider, "client"):
        provider.client()
    publisher_start()
    # Everything loaded so far (Django, the apps, the SDKs) lives as long as the worker: keep it out of
    # the collector's full passes, which otherwise walk it all while every thread waits.
    gc.collect()
    gc.freeze()
