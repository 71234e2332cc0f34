"""The Celery application.

Service mode: ``celery -A cohorta worker`` and ``celery -A cohorta beat`` run as
their own processes against Redis. Embedded mode: the broker is the in-process
``memory://`` transport and ``cohorta.embedded`` starts a threads-pool worker
inside the web process, so a request still never waits for a job.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cohorta.settings")

app = Celery("cohorta")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
