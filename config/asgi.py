"""ASGI entry point: Django for HTTP, Channels consumers for websockets."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Under ASGI every request's sync code runs on a thread of its own, so a persistent connection
# per thread is never reused and each one stays open: 16 concurrent API clients exhausted
# Postgres' 100 connections (bench/api_read.py). Django's advice for ASGI: close after each
# request. Celery workers (wsgi-free, long-lived threads) keep DB_CONN_MAX_AGE.
os.environ.setdefault("DB_CONN_MAX_AGE", "0")

# Django must be set up before anything imports models (consumers do).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from cohorta.accounts.ws_auth import websocket_application  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_application(URLRouter(websocket_urlpatterns)),
    }
)

if settings.EMBEDDED_WORKER and not settings.TESTING:
    from cohorta.jobs.embedded import start_embedded_worker
    from config.celery import app as celery_app

    start_embedded_worker(celery_app)

# Everything loaded so far (Django, the apps, their libraries) lives as long as the process, as in the
# Celery workers (config/celery.py): keep it out of the collector's full passes, which otherwise walk it
# all in the middle of a request (bench/survey_results.py: 160-190 ms pauses on a 1,000-respondent page).
gc.collect()
gc.freeze()
