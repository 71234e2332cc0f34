from django.conf import settings
from django.urls import reverse

from usage.quotas import quota_banner

_NAV = [
    ("dashboard", "Dashboard", "bi-speedometer2", "dashboard"),
    ("personas", "Personas", "bi-people", "personas:index"),
    ("focusgroups", "Focus groups", "bi-chat-square-text", "focusgroups:index"),
    ("surveys", "Surveys", "bi-ui-checks", "surveys:index"),
    ("panels", "Panels", "bi-diagram-3", "panels:index"),
    ("validation", "Validation", "bi-clipboard-check", "validation:index"),
    ("usage", "Usage", "bi-graph-up", "usage:index"),
    ("billing", "Billing", "bi-credit-card", "billing:index"),
]


def cohorta(request) -> dict:
    section = getattr(request, "section", None) or _section_from_path(request.path)
    return {
        "quota_banner": _quota_banner(request),
        "llm_simulated": settings.LLM_SIMULATED,
        "service_mode": settings.SERVICE_MODE,
        "nav_items": [
            {"key": key, "label": label, "icon": icon, "url": reverse(name), "active": key == section}
            for key, label, icon, name in _NAV
        ],
    }


def _section_from_path(path: str) -> str:
    first = path.strip("/").split("/", 1)[0]
    return {
        "": "dashboard",
        "personas": "personas",
        "focus-groups": "focusgroups",
        "surveys": "surveys",
        "panels": "panels",
        "validation": "validation",
        "usage": "usage",
        "billing": "billing",
    }.get(first, "")


def _quota_banner(request) -> dict | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return quota_banner(user=user)
