import logging

from cohorta.logging import SecretScrubFilter
from cohorta.secrets import scrub


def test_configured_secrets_are_scrubbed(settings):
    settings.OPENAI_API_KEY = "canary-openai-key-123456"
    assert scrub("failed with key canary-openai-key-123456 !") == "failed with key [redacted] !"


def test_key_shapes_and_url_passwords_are_scrubbed():
    text = "sk-abcdefghijklmnop sk_live_ABCDEFGHIJ whsec_abcdefghijk redis://user:hunter2@host:6379/0"
    cleaned = scrub(text)
    for secret in ("sk-abcdefghijklmnop", "sk_live_ABCDEFGHIJ", "whsec_abcdefghijk", "hunter2"):
        assert secret not in cleaned
    assert "redis://user:[redacted]@host:6379/0" in cleaned


def test_log_records_and_tracebacks_are_scrubbed(settings):
    settings.OPENAI_API_KEY = "canary-openai-key-654321"
    try:
        raise RuntimeError("boom canary-openai-key-654321")
    except RuntimeError:
        record = logging.LogRecord(
            "x",
            logging.ERROR,
            __file__,
            1,
            "calling with %s",
            ("canary-openai-key-654321",),
            exc_info=__import__("sys").exc_info(),
        )
    SecretScrubFilter().filter(record)
    assert "canary" not in record.getMessage()
    assert "canary" not in (record.exc_text or "")
