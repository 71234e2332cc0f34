"""How the session pages answer a refused action: JSON for the page's own scripts, else a flash message."""

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

from billing.ux import error_html, limit_help
from cohorta.errors import ApplicationError


def wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def error_response(request: HttpRequest, focus_group, exc: ApplicationError) -> HttpResponse:
    if wants_json(request):
        # A 402 says which limit was hit (code, numbers) and where to go about it (help).
        error = {"code": exc.code, "message": exc.message, "extra": exc.extra, "help": limit_help(exc)}
        return JsonResponse({"error": {k: v for k, v in error.items() if v}}, status=exc.status_code)
    flash.error(request, error_html(exc))
    return redirect("focusgroups:detail", fg_id=focus_group.pk)
