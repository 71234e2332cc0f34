"""The report's Quality section: its partial (polled while a quality check runs) and the "Check quality" button."""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from billing.ux import error_html
from cohorta.accounts.http import AuthenticatedHttpRequest
from cohorta.errors import ApplicationError
from focusgroups.access import get_focus_group_for_user
from focusgroups.quality import judge
from focusgroups.quality.results import quality_context
from focusgroups.responses import error_response, wants_json


@login_required
@require_GET
def quality(request: AuthenticatedHttpRequest, fg_id: int) -> HttpResponse:
    """The Quality section alone; while a check runs the page polls it, and reloads once it is over."""
    focus_group = get_focus_group_for_user(request.user, fg_id)
    context = {"focus_group": focus_group, **quality_context(focus_group)}
    job = context["quality"]["judge"]["job"]
    if request.htmx and request.GET.get("poll") and (job is None or not job["active"]):
        return HttpResponse(headers={"HX-Refresh": "true"})
    return render(request, "focusgroups/_report_quality.html", context)


@login_required
@require_POST
def quality_check(request: AuthenticatedHttpRequest, fg_id: int) -> HttpResponse:
    """Start the judge on every participant who spoke (charged now; failed checks refunded)."""
    focus_group = get_focus_group_for_user(request.user, fg_id)
    back = reverse("focusgroups:report", args=[focus_group.pk]) + "#report-quality"
    try:
        judge.session_check_start(focus_group=focus_group)
    except ApplicationError as exc:
        if wants_json(request):
            return error_response(request, focus_group, exc)
        flash.error(request, error_html(exc))  # says what happened, and where to go (credits, budget)
    return redirect(back)
