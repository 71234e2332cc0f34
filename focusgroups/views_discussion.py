"""The live discussion page: transcript, composer with @mentions, streaming answers."""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from billing.ux import error_html, limit_help
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError
from focusgroups import autonomous as autopilot
from focusgroups import discussion as engine
from focusgroups import live_themes
from focusgroups.access import get_focus_group_for_user
from focusgroups.models import Message


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _error(request: HttpRequest, focus_group, exc: ApplicationError) -> HttpResponse:
    if _wants_json(request):
        # A 402 says which limit was hit (code, numbers) and where to go about it (help).
        error = {"code": exc.code, "message": exc.message, "extra": exc.extra, "help": limit_help(exc)}
        return JsonResponse({"error": {k: v for k, v in error.items() if v}}, status=exc.status_code)
    flash.error(request, error_html(exc))
    return redirect("focusgroups:detail", fg_id=focus_group.pk)


@login_required
def discussion(request: HttpRequest, fg_id: int) -> HttpResponse:
    focus_group = get_focus_group_for_user(request, fg_id)
    participants = list(focus_group.participants.select_related("persona"))
    for participant in participants:
        participant.handle = engine.mention_handle(participant.persona, participants)
    transcript = list(focus_group.messages.select_related("persona").order_by("sequence"))
    run = focus_group.runs.select_related("next_speaker").first()
    context = {
        "focus_group": focus_group,
        "tab": "discussion",
        "run": autopilot.run_payload(run) if run is not None else None,
        "run_cost": get_app_settings().session_run_credit_cost,
        "has_guide": bool(autopilot._guide_sections(focus_group)),
        "participants": participants,
        "transcript": transcript,
        "last_seq": transcript[-1].sequence if transcript else 0,
        "max_chars": engine.MAX_MESSAGE_CHARS,
        "live": live_themes.live_themes_panel(focus_group=focus_group),
    }
    return render(request, "focusgroups/discussion.html", context)


@login_required
@require_POST
def post_message(request: HttpRequest, fg_id: int) -> HttpResponse:
    focus_group = get_focus_group_for_user(request, fg_id)
    try:
        message, answers = engine.message_post(focus_group=focus_group, text=request.POST.get("content", ""))
    except ApplicationError as exc:
        return _error(request, focus_group, exc)
    if _wants_json(request):
        return JsonResponse(
            {"message_id": message.pk, "sequence": message.sequence, "answer_ids": [str(a.pk) for a in answers]},
            status=202,
        )
    return redirect("focusgroups:detail", fg_id=focus_group.pk)


@login_required
@require_GET
def transcript(request: HttpRequest, fg_id: int) -> HttpResponse:
    """Saved messages after ``?after=N``, as HTML: the page's fallback when websockets are down."""
    focus_group = get_focus_group_for_user(request, fg_id)
    try:
        after = max(0, int(request.GET.get("after", 0)))
    except ValueError:
        after = 0
    items = list(focus_group.messages.select_related("persona").filter(sequence__gt=after).order_by("sequence"))
    response = render(request, "focusgroups/_messages.html", {"transcript": items, "focus_group": focus_group})
    response["X-Last-Seq"] = str(items[-1].sequence if items else after)
    response["X-Session-Status"] = focus_group.status
    return response


@login_required
@require_POST
def retry_answer(request: HttpRequest, fg_id: int, message_id: int) -> HttpResponse:
    focus_group = get_focus_group_for_user(request, fg_id)
    message = Message.objects.filter(focus_group=focus_group, pk=message_id).first()
    if message is None:
        raise Http404("No such message")
    try:
        answer = engine.answer_retry(focus_group=focus_group, message=message)
    except ApplicationError as exc:
        return _error(request, focus_group, exc)
    if _wants_json(request):
        return JsonResponse({"answer_id": str(answer.pk)}, status=202)
    return redirect("focusgroups:detail", fg_id=focus_group.pk)


@login_required
@require_POST
def set_status(request: HttpRequest, fg_id: int) -> HttpResponse:
    focus_group = get_focus_group_for_user(request, fg_id)
    try:
        engine.focus_group_set_status(focus_group=focus_group, status=request.POST.get("status", ""))
    except ApplicationError as exc:
        return _error(request, focus_group, exc)
    return redirect("focusgroups:detail", fg_id=focus_group.pk)


@login_required
@require_POST
def autonomous(request: HttpRequest, fg_id: int, action: str) -> HttpResponse:
    """Start, stop (after the current turn) or resume autonomous mode."""
    focus_group = get_focus_group_for_user(request, fg_id)
    try:
        _autonomous_action(focus_group, action)
    except ApplicationError as exc:
        return _error(request, focus_group, exc)
    if _wants_json(request):
        run = focus_group.runs.first()
        return JsonResponse({"run": autopilot.run_payload(run)}, status=202)
    return redirect("focusgroups:detail", fg_id=focus_group.pk)


def _autonomous_action(focus_group, action: str):
    if action == "start":
        return autopilot.run_start(focus_group=focus_group)
    run = autopilot.run_active(focus_group)
    if run is None:
        raise ApplicationError("Autonomous mode is not running in this session.", code="no_run", status_code=409)
    if action == "stop":
        return autopilot.run_stop(run=run)
    if action == "resume":
        return autopilot.run_resume(run=run)
    raise Http404("No such action")


@login_required
def compare(request: HttpRequest, fg_id: int) -> HttpResponse:
    """GET: the original session and its re-runs side by side. POST: re-run on another model alias."""
    from django.conf import settings

    from focusgroups.comparison import comparison_columns, comparison_start

    focus_group = get_focus_group_for_user(request, fg_id)
    if request.method == "POST":
        try:
            copy = comparison_start(focus_group=focus_group, alias=request.POST.get("alias", ""))
        except ApplicationError as exc:
            return _error(request, focus_group, exc)
        flash.info(request, f"Re-running the guide on “{copy.model_alias}”: it runs like any autonomous session.")
        return redirect("focusgroups:detail", fg_id=copy.pk)
    original = focus_group.compare_of or focus_group
    default_alias = settings.LLM_FEATURES["persona_response"]
    context = {
        "focus_group": focus_group,
        "tab": "compare",
        "columns": comparison_columns(focus_group=focus_group),
        "aliases": [alias for alias in settings.LLM_MODELS if alias != (original.model_alias or default_alias)],
        "models": settings.LLM_MODELS,
        "original": original,
        "run_cost": get_app_settings().session_run_credit_cost,
    }
    return render(request, "focusgroups/compare.html", context)
