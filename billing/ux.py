"""What to do about a 402, for pages: buy credits, or ask an admin about the AI budget.

Services raise ``InsufficientCredits`` / ``QuotaExceeded`` with a message that says what
happened. Pages add the way out: a link to Billing for credits, the usage page and "contact
your admin" for the budget (only an admin can raise it). The API needs none of this: its
error body carries the ``code`` and the numbers (``required``/``balance``, ``spent_usd``/``limit_usd``).
"""

from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from cohorta.errors import ApplicationError, InsufficientCredits, QuotaExceeded


def limit_help(exc: ApplicationError) -> dict | None:
    """A label and URL for the next step after a 402, or None for other errors."""
    if isinstance(exc, InsufficientCredits):
        return {"label": "Buy credits", "url": reverse("billing:index"), "hint": ""}
    if isinstance(exc, QuotaExceeded):
        if exc.code == "session_cap_reached":
            return {"label": "", "url": "", "hint": "Raise the session's spending cap in its settings to continue."}
        return {"label": "See your usage", "url": reverse("usage:index"), "hint": "Contact your admin to raise it."}
    return None


def error_html(exc: ApplicationError) -> SafeString:
    """The error's message (escaped) plus, for a 402, the way out as a link or a hint."""
    help_ = limit_help(exc)
    if help_ is None:
        return format_html("{}", exc.message)
    html = format_html("{}", exc.message)
    if help_["hint"]:
        html = format_html("{} {}", html, help_["hint"])
    if help_["url"]:
        link = '{} <a class="alert-link fw-semibold" href="{}">{} →</a>'
        html = format_html(link, html, help_["url"], help_["label"])
    return html
