from django import template

from usage.features import feature_label as label_of

register = template.Library()


@register.filter
def feature_label(name: str) -> str:
    """``{{ event.feature|feature_label }}``: "Persona answer", never ``persona_response``."""
    return label_of(name)
