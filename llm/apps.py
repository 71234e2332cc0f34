from django.apps import AppConfig
from django.conf import settings
from django.core import checks


def llm_provider_warnings(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Development only (production refuses to start instead): aliases whose provider is missing or has no key,
    so they answer from the offline simulator. Shown by ``manage.py check`` and ``runserver``."""
    return [checks.Warning(message, id="llm.W001") for message in getattr(settings, "LLM_CONFIG_WARNINGS", [])]


class LlmConfig(AppConfig):
    """The one LLM gateway: every model call goes through it and is metered into usage."""

    name = "llm"
    label = "llm"
    verbose_name = "AI models"

    def ready(self) -> None:
        checks.register(llm_provider_warnings)
