from django.apps import AppConfig


class LlmConfig(AppConfig):
    """The one LLM gateway: every model call goes through it and is metered into usage."""

    name = "llm"
    label = "llm"
    verbose_name = "AI models"
