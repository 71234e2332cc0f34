import pytest

pytestmark = pytest.mark.django_db


def test_healthz_ok_in_embedded_mode(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["checks"]["database"]["ok"]


def test_healthz_is_503_when_a_configured_redis_is_down(client, settings):
    settings.REDIS_URL = "redis://:s3cret-pass@127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["redis"]["ok"] is False
    assert "s3cret-pass" not in response.content.decode()


def test_healthz_is_503_when_a_configured_broker_is_down(client, settings):
    from config.celery import app

    settings.EMBEDDED_WORKER = False
    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503 and response.json()["checks"]["broker"]["ok"] is False
