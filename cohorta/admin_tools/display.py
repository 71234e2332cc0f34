"""Pieces any app's ModelAdmin can use: owner links, text filters, compact list cells, human titles."""

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator


def user_admin_link(user_id, label) -> str:
    """A link to a user's admin page, or the label alone when the account is gone."""
    if user_id is None:
        return label or "—"
    return format_html('<a href="{}">{}</a>', reverse("admin:accounts_user_change", args=[user_id]), label)


class TextInputFilter(admin.SimpleListFilter):
    """A free-text filter box in the changelist sidebar, for fields with too many values to list
    (a user among thousands). Subclasses set ``parameter_name`` and implement ``queryset``."""

    template = "admin/backoffice/input_filter.html"

    def lookups(self, request, model_admin):
        # One dummy choice so Django renders the filter; the template shows a text box instead.
        return [("", "")]

    def choices(self, changelist):
        # Every other parameter of the current list (filters, search, ordering) goes along as a
        # hidden field, so the box narrows the list the operator is looking at.
        yield {
            "value": self.value() or "",
            "other_params": [
                (key, value)
                for key, values in changelist.filter_params.items()
                if key != self.parameter_name
                for value in values
            ],
            "clear_url": changelist.get_query_string(remove=[self.parameter_name]),
        }


class OwnerLinkMixin:
    """An "Owner" column linking to the owner's admin page (the list must select_related the owner)."""

    @admin.display(description="Owner", ordering="owner__email")
    def owner_link(self, obj) -> str:
        return user_admin_link(obj.owner_id, obj.owner.email)


# --- list cells that keep changelists within a 1366 px screen ------------------------------------


def short_datetime(value) -> str:
    """ "06 Dec 10:36" (the year only when it is not this one): Django's default
    "Dec. 6, 2026, 10:36 a.m." takes a third more width in every row."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    return local.strftime("%d %b %H:%M" if local.year == timezone.localdate().year else "%d %b %Y %H:%M")


def truncated(text: str, length: int) -> str:
    """The text cut to ``length`` characters, whole in the tooltip."""
    if not text:
        return ""
    if len(text) <= length:
        return text
    return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(length))


def usd_cell(value) -> str:
    """An LLM cost as "$0.0148": four decimals under a dollar, where the cents alone would read $0.01."""
    if value is None:
        return "—"
    return f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}"


def price_cell(value) -> str:
    """A per-million price as "$2.50" or "$0.075": no trailing zeros beyond the cents."""
    if value is None:
        return "—"
    text = f"{value:,.6f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"${whole}.{decimals.ljust(2, '0')}"


class HumanTitleMixin(admin.ModelAdmin):
    """A change page titled by ``object_title(obj)`` in its heading, breadcrumbs and window
    title, for models whose ``__str__`` starts with an internal name (a feature or job kind)."""

    change_form_template = "admin/backoffice/change_form_titled.html"

    def object_title(self, obj) -> str:
        return str(obj)

    def action_checkbox(self, obj):
        # Django labels each row's checkbox with str(obj) for screen readers: the same title instead.
        attrs = {"class": "action-select", "aria-label": f"Select {self.object_title(obj)} for an action"}
        return forms.CheckboxInput(attrs, lambda value: False).render(helpers.ACTION_CHECKBOX_NAME, str(obj.pk))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is not None:
            extra_context = {"subtitle": self.object_title(obj), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context)
