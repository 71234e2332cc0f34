from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from billing.selectors import credits_balance
from cohorta.jobs.selectors import jobs_for_user
from cohorta.read_cache import answers_through_cached_page, cached_page
from focusgroups.selectors import focus_group_counts
from personas.selectors import persona_count_for_user
from web.health import run_health_checks


@answers_through_cached_page
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return dashboard(request)
    return render(request, "web/landing.html")


@login_required
@cached_page
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {
        "recent_jobs": jobs_for_user(user=request.user)[:5],
        "database_vendor": connection.display_name,
        "embedded_worker": settings.EMBEDDED_WORKER,
        "credit_balance": credits_balance(user=request.user),
        "persona_count": persona_count_for_user(user=request.user),
        "focus_group_count": focus_group_counts(user=request.user)["active"],
        "model_main": settings.LLM_MODELS["main"],
    }
    return render(request, "web/dashboard.html", context)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every configured backing service answers, else 503 with which one failed."""
    checks = run_health_checks()
    healthy = all(check["ok"] for check in checks.values())
    body = {
        "status": "ok" if healthy else "unavailable",
        "mode": "service" if settings.SERVICE_MODE else "embedded",
        "checks": checks,
    }
    return JsonResponse(body, status=200 if healthy else 503)
