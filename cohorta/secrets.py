"""Knows which configured values are secret and blanks them out of text."""

import re

from django.conf import settings

_SECRET_SETTING_NAMES = ("SECRET_KEY", "OPENAI_API_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET")
# Shapes of well-known keys, caught even when they did not come from settings.
_KEY_PATTERNS = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|sk_(?:live|test)_[A-Za-z0-9]{8,}|whsec_[A-Za-z0-9]{8,})")
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^:/@\s]+:)([^@\s]+)(@)")


def _configured_secrets() -> list[str]:
    values = [getattr(settings, name, "") or "" for name in _SECRET_SETTING_NAMES]
    return [value for value in values if len(value) >= 8]


def scrub(text: str) -> str:
    if not text:
        return text
    for secret in _configured_secrets():
        text = text.replace(secret, "[redacted]")
    text = _KEY_PATTERNS.sub("[redacted]", text)
    return _URL_PASSWORD.sub(r"\1[redacted]\3", text)
