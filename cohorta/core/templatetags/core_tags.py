from django import template

from cohorta.core.models import get_app_settings

register = template.Library()


@register.simple_tag
def app_setting(name: str):
    """A value from App settings, for pages that state a rule an operator can change in the admin."""
    return getattr(get_app_settings(), name)
