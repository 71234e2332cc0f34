"""Settings come from the environment; production refuses unsafe values.

Each case runs Django in a subprocess with a controlled environment, so the
real settings module is what is tested, not the test settings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STRONG_KEY = "k" * 10 + "Zq8#vL2@pX9!mR4$tW7^yB1&nC6*eF3(hJ5)uA0-sD" + "g" * 10

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": STRONG_KEY,
    "ALLOWED_HOSTS": "cohorta.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://cohorta.example.com",
}


def _django(args: list[str], extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    dropped = {"DJANGO_SETTINGS_MODULE", "DEBUG", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "OPENAI_API_KEY"}
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "SQLITE_PATH": "/tmp/cohorta-settings-test.sqlite3"})
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_check_deploy_is_clean_with_the_documented_production_env():
    result = _django(["check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("secret_key", "message"),
    [("", "SECRET_KEY is required"), ("short-key", "too weak"), ("django-insecure-" + "x" * 60, "too weak")],
)
def test_production_refuses_a_missing_or_weak_secret_key(secret_key, message):
    result = _django(["check"], {**PRODUCTION_ENV, "SECRET_KEY": secret_key})
    assert result.returncode != 0
    assert message in result.stderr
    if secret_key:
        assert secret_key not in result.stderr  # the rejected key is not echoed


@pytest.mark.slow
def test_production_requires_allowed_hosts():
    result = _django(["check"], {**PRODUCTION_ENV, "ALLOWED_HOSTS": ""})
    assert result.returncode != 0 and "ALLOWED_HOSTS is required" in result.stderr


@pytest.mark.slow
def test_a_malformed_boolean_is_an_error_not_a_silent_default():
    result = _django(["check"], {"DEBUG": "flase"})
    assert result.returncode != 0 and "DEBUG must be a boolean" in result.stderr


@pytest.mark.slow
def test_secret_key_can_come_from_a_file(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(STRONG_KEY + "\n")
    env = {**PRODUCTION_ENV, "SECRET_KEY": "", "SECRET_KEY_FILE": str(key_file)}
    result = _django(["check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_nothing_set_means_embedded_defaults():
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE']);print(s.CHANNEL_LAYERS['default']['BACKEND']);"
        "print(s.CELERY_BROKER_URL);print(s.EMBEDDED_WORKER);print(s.LLM_SIMULATED);print(s.DEBUG);"
        "print(s.EMAIL_BACKEND)"
    )
    result = _django(["shell", "-v", "0", "-c", code], {})
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "cohorta.channel_layers.ThreadSafeInMemoryChannelLayer",
        "memory://localhost/",
        "True",
        "True",
        "True",
        "django.core.mail.backends.console.EmailBackend",
    ], result.stderr


@pytest.mark.slow
def test_service_urls_switch_every_backend():
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE']);print(s.CHANNEL_LAYERS['default']['BACKEND']);"
        "print(s.CELERY_BROKER_URL);print(s.CACHES['default']['BACKEND']);print(s.EMBEDDED_WORKER)"
    )
    env = {"DATABASE_URL": "postgres://u:p@db.internal:5432/cohorta", "REDIS_URL": "redis://cache.internal:6379/0"}
    result = _django(["shell", "-v", "0", "-c", code], env)
    lines = result.stdout.split()
    assert lines == [
        "django.db.backends.postgresql",
        "channels_redis.pubsub.RedisPubSubChannelLayer",
        "redis://cache.internal:6379/0",
        "cohorta.redis_pool.RedisCache",
        "False",
    ], result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("flavour", ["core", "pubsub"])
def test_channel_layer_reads_outlast_its_blocking_receive(flavour):
    # redis-py 8 reads with a 5 s socket timeout by default; the core layer blocks on BZPOPMIN for its
    # brpop_timeout (5 s), and the two raced: idle consumers died with "Timeout reading from Redis".
    code = (
        "from django.conf import settings as s; from channels_redis.core import RedisChannelLayer;"
        "from channels_redis.utils import create_pool, decode_hosts;"
        "hosts = decode_hosts(s.CHANNEL_LAYERS['default']['CONFIG']['hosts']);"
        "from redis._defaults import DEFAULT_SOCKET_TIMEOUT as default;"
        "print(create_pool(hosts[0]).connection_kwargs.get('socket_timeout', default));"
        "print(RedisChannelLayer.brpop_timeout)"
    )
    env = {"REDIS_URL": "redis://cache.internal:6379/0", "CHANNEL_LAYER_FLAVOUR": flavour}
    result = _django(["shell", "-v", "0", "-c", code], env)
    socket_timeout, blocking = (float(x) for x in result.stdout.split())
    assert socket_timeout > blocking + 5, result.stderr
