"""WSGI entry point: Django for HTTP, as gunicorn serves it in service mode (the Procfile's ``web``).

Sync views run on the worker thread that received the request: no event loop, no thread hop per
middleware (the ASGI path costs about 10x on them, issue #22). Websockets are not served here:
the ``ws`` process (daphne, config.asgi) takes ``/ws/`` behind the same proxy (deploy/).
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django_application = get_wsgi_application()

from django.conf import settings  # noqa: E402 - after set-up, as in config.asgi

from config.forwarded import ForwardedForMiddleware  # noqa: E402

# Behind the proxy, the client's address (audit log, per-IP log-in limits) from X-Forwarded-For.
application = ForwardedForMiddleware(django_application, trusted=settings.TRUSTED_PROXIES)

if settings.EMBEDDED_WORKER and not settings.TESTING:
    # No broker configured: jobs run in this process, whatever serves it (config/gunicorn.conf.py refuses
    # this mode, where each forked worker would need its own queue; `make run` is the one-process way).
    from cohorta.jobs.embedded import start_embedded_worker
    from config.celery import app as celery_app

    start_embedded_worker(celery_app)

# Everything loaded so far lives as long as the process: keep it out of the collector's full passes
# (see config.asgi). Under gunicorn's preload_app this runs in the master before the fork, which also
# keeps the collector from touching (and so copying) the pages the workers share.
gc.collect()
gc.freeze()
