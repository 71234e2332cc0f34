from django import template
from django.utils.safestring import mark_safe

from personas.avatars import avatar_svg

register = template.Library()

_SOURCE_BADGES = {
    "ai": "badge-source-ai",
    "ai_modified": "badge-source-modified",
    "manual": "badge-source-manual",
    "imported": "badge-source-imported",
}
_SOURCE_ICONS = {
    "ai": "bi-stars",
    "ai_modified": "bi-magic",
    "manual": "bi-pencil",
    "imported": "bi-box-arrow-in-down",
}
_LABELS = {
    "income_bracket": "Income",
    "brand_affinities": "Brand affinities",
    "buying_behaviour": "Buying behaviour",
    "media_habits": "Media & channel habits",
    "tech_savviness": "Tech savviness",
    "speaking_style": "Speaking style",
}


@register.simple_tag
def persona_avatar(persona, size: int = 56) -> str:
    """The persona's initials on their colour, inline SVG. ``avatar_svg`` escapes the name itself."""
    key = persona.pk if persona.pk is not None else persona.name
    return mark_safe(avatar_svg(persona.name, key=key, size=int(size), title=persona.name))  # noqa: S308


@register.filter
def source_badge(source: str) -> str:
    return _SOURCE_BADGES.get(source, "badge-source-manual")


@register.filter
def source_icon(source: str) -> str:
    return _SOURCE_ICONS.get(source, "bi-person")


@register.filter
def field_label(field: str) -> str:
    return _LABELS.get(field, field.replace("_", " ").capitalize())


@register.filter
def as_text(value) -> str:
    """A profile value for display: lists comma-joined, empty as an em dash."""
    if isinstance(value, list):
        value = ", ".join(str(item) for item in value)
    if value is None or value == "":
        return "—"
    return str(value)
