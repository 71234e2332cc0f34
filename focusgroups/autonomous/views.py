"""Autonomous mode from the session page: start, stop after the current turn, resume."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from cohorta.errors import ApplicationError
from focusgroups.access import get_focus_group_for_user
from focusgroups.autonomous import runs as autopilot
from focusgroups.responses import error_response, wants_json


@login_required
@require_POST
def autonomous(request: HttpRequest, fg_id: int, action: str) -> HttpResponse:
    """Start, stop (after the current turn) or resume autonomous mode."""
    if action not in autopilot.RUN_ACTIONS:
        raise Http404("No such action")
    focus_group = get_focus_group_for_user(request.user, fg_id)
    try:
        autopilot.run_action(focus_group=focus_group, action=action)
    except ApplicationError as exc:
        return error_response(request, focus_group, exc)
    if wants_json(request):
        run = focus_group.runs.first()
        return JsonResponse({"run": autopilot.run_payload(run) if run is not None else None}, status=202)
    return redirect("focusgroups:detail", fg_id=focus_group.pk)
