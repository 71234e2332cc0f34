from django.conf import settings
from django.urls import reverse

_NAV = [
    ("dashboard", "Dashboard", "bi-speedometer2", "dashboard"),
    ("personas", "Personas", "bi-people", "personas:index"),
    ("focusgroups", "Focus groups", "bi-chat-square-text", "focusgroups:index"),
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
        "usage": "usage",
        "billing": "billing",
    }.get(first, "")


def _quota_banner(request) -> dict | None:
    """The budget warning shown on every page at 80% and 100%; cached a minute per user."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    from django.core.cache import cache

    from usage.quotas import quota_status

    key = f"quota:banner:{user.pk}"
    banner = cache.get(key)
    if banner is None:
        status = quota_status(user=user)
        banner = {
            "percent": status.percent,
            "exceeded": status.exceeded,
            "warning": status.warning,
            "limit_usd": status.limit_usd,
            "spent_usd": status.spent_usd,
        }
        cache.set(key, banner, 60)
    return banner if banner["warning"] else None
