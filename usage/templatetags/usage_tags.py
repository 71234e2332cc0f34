from django import template

from usage.features import feature_label as label_of
from usage.providers import provider_label as provider_label_of

register = template.Library()


@register.filter
def feature_label(name: str) -> str:
    """``{{ event.feature|feature_label }}``: "Persona answer", never ``persona_response``."""
    return label_of(name)


@register.filter
def provider_label(name: str) -> str:
    """``{{ event.provider|provider_label }}``: "Google Gemini", never ``gemini``."""
    return provider_label_of(name)
