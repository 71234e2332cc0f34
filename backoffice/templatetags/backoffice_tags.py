from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def usd(value) -> str:
    """ "$1,234.50", and "-$0.06" for a loss (not "$-0.06")."""
    if value is None or value == "":
        return "—"
    value = Decimal(value)
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"
