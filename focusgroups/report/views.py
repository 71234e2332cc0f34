"""The Report tab: analyse a session (key themes, then the report), read it, print it, download it.

The page has three states: not analysed yet (a button), analysing (a progress card that htmx polls and
that reloads the page when the job is over), and analysed (themes, report, stances, downloads). A
re-run keeps showing the current analysis under its progress card until the new one replaces it."""

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cohorta.accounts.http import AuthenticatedHttpRequest
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError
from cohorta.jobs.models import JobState
from focusgroups.access import get_focus_group_for_user
from focusgroups.models import FocusGroup
from focusgroups.quality.results import quality_context
from focusgroups.replay import replay_check, session_replay
from focusgroups.report import analysis as analyses
from focusgroups.report import charts as report_charts
from focusgroups.report import exports
from focusgroups.report.comparison import comparison_columns, comparison_start
from focusgroups.responses import error_response
from llm.methods import method_rows, replay_original_scope, run_methods
from llm.replay import focus_group_scope
from usage.providers import provider_label

SENTIMENT_BADGES = {"positive": "text-bg-success", "mixed": "text-bg-warning", "negative": "text-bg-danger"}
STANCE_BADGES = {
    "enthusiastic": "text-bg-success",
    "positive": "bg-success-subtle text-success-emphasis border border-success-subtle",
    "neutral": "bg-secondary-subtle text-secondary-emphasis border",
    "sceptical": "bg-warning-subtle text-warning-emphasis border border-warning-subtle",
    "negative": "text-bg-danger",
    analyses.NO_STANCE: "bg-light text-body-secondary border",
}


def _context(focus_group: FocusGroup, *, error: str = "") -> dict:
    job = analyses.analysis_job_latest(focus_group=focus_group)
    found = analyses.analysis_get(focus_group=focus_group)
    finished = found["finished_at"] if found else None
    if found:
        for theme in found.get("themes") or []:
            theme["badge"] = SENTIMENT_BADGES.get(theme.get("sentiment"), "text-bg-secondary")
        for row in (found.get("report") or {}).get("stances") or []:
            row["badge"] = STANCE_BADGES.get(row.get("stance"), "text-bg-secondary")
    charts = report_charts.report_charts(focus_group=focus_group, found=found) if found else None
    persona_messages = analyses.persona_message_count(focus_group=focus_group)
    last_sequence = focus_group.messages.order_by("-sequence").values_list("sequence", flat=True).first() or 0
    return {
        "focus_group": focus_group,
        "tab": "report",
        "job": job,
        "analysis": found,
        "report": (found or {}).get("report") or {},
        "charts": charts,
        "charts_json": report_charts.charts_json(charts) if charts else None,
        # Room per bar (theme or participant), so long lists are not squeezed.
        "chart_heights": {
            "themes": 64 + 34 * len(charts["sentiment"]["rows"]),
            "voice": 64 + 40 * len(charts["voice"]["rows"]),
        }
        if charts
        else None,
        # A failure is worth showing only if no analysis finished since.
        "job_failed": job is not None
        and job.state in (JobState.FAILED, JobState.INTERRUPTED, JobState.CANCELLED)
        and (finished is None or finished < (job.finished_at or job.created_at)),
        "persona_messages": persona_messages,
        "can_analyse": persona_messages >= analyses.MIN_PERSONA_MESSAGES and not focus_group.archived,
        "min_persona_messages": analyses.MIN_PERSONA_MESSAGES,
        "new_messages": max(0, last_sequence - (found or {}).get("through_sequence", last_sequence)),
        "read_only": focus_group.archived,
        "report_url": reverse("focusgroups:report", args=[focus_group.pk]),
        "discussion_url": reverse("focusgroups:detail", args=[focus_group.pk]),
        "downloads": [
            {"kind": kind, "label": export.label, "available": found is not None or not export.needs_analysis}
            for kind, export in exports.EXPORTS.items()
        ],
        "error": error,
        **quality_context(focus_group),
        "methods": method_rows(run_methods(focus_group_scope(focus_group.pk))),
        "replay_of": replay_original_scope(focus_group_scope(focus_group.pk)),
    }


def _page(
    request: AuthenticatedHttpRequest, focus_group: FocusGroup, *, error: str = "", status: int = 200
) -> HttpResponse:
    return render(request, "focusgroups/report.html", _context(focus_group, error=error), status=status)


@login_required
@require_http_methods(["GET", "HEAD"])
def report(request: AuthenticatedHttpRequest, fg_id: int) -> HttpResponse:
    focus_group = get_focus_group_for_user(request.user, fg_id)
    poll = request.GET.get("poll")
    if request.htmx and poll:
        # The progress card polls here; once its job is over the page reloads to show the result.
        job = analyses.analysis_job_latest(focus_group=focus_group)
        if job is None or str(job.pk) != poll or not job.is_active:
            return HttpResponse(headers={"HX-Refresh": "true"})
        return render(request, "focusgroups/_report_progress.html", _context(focus_group))
    return _page(request, focus_group)


@login_required
@require_POST
def analyse(request: AuthenticatedHttpRequest, fg_id: int) -> HttpResponse:
    focus_group = get_focus_group_for_user(request.user, fg_id)
    try:
        get_focus_group_for_user(request.user, fg_id, for_write=True)  # archived: 409
        analyses.analysis_start(focus_group=focus_group)
    except ApplicationError as exc:
        return _page(request, focus_group, error=exc.message, status=exc.status_code)
    return redirect("focusgroups:report", fg_id=focus_group.pk)


@login_required
@require_GET
def export(request: AuthenticatedHttpRequest, fg_id: int, kind: str) -> HttpResponse:
    focus_group = get_focus_group_for_user(request.user, fg_id)
    try:
        return exports.export_response(focus_group=focus_group, kind=kind)
    except ApplicationError as exc:
        raise Http404(exc.message) from None


@login_required
@require_POST
def replay(request: AuthenticatedHttpRequest, fg_id: int) -> HttpResponse:
    """Run the session again with every AI answer from the cache (``allow_live``: the missing ones live)."""
    focus_group = get_focus_group_for_user(request.user, fg_id)
    try:
        copy = session_replay(focus_group=focus_group, allow_live=request.POST.get("allow_live") == "1")
    except ApplicationError as exc:
        return error_response(request, focus_group, exc)
    flash.info(request, "Replaying this session from the cache: the AI provider is not asked anything.")
    return redirect("focusgroups:detail", fg_id=copy.pk)


@login_required
def compare(request: AuthenticatedHttpRequest, fg_id: int) -> HttpResponse:
    """GET: the original session and its re-runs side by side. POST: re-run on another model alias."""
    focus_group = get_focus_group_for_user(request.user, fg_id)
    if request.method == "POST":
        try:
            copy = comparison_start(focus_group=focus_group, alias=request.POST.get("alias", ""))
        except ApplicationError as exc:
            return error_response(request, focus_group, exc)
        flash.info(request, f"Re-running the guide on “{copy.model_alias}”: it runs like any autonomous session.")
        return redirect("focusgroups:detail", fg_id=copy.pk)
    original = focus_group.compare_of or focus_group
    default_alias = settings.LLM_FEATURES["persona_response"]
    context = {
        "focus_group": focus_group,
        "tab": "compare",
        "columns": comparison_columns(focus_group=focus_group),
        "aliases": [alias for alias in settings.LLM_MODELS if alias != (original.model_alias or default_alias)],
        # "gemini-2.5-flash on Google Gemini": the alias's model and the provider it runs on.
        "models": {
            alias: f"{model} on {provider_label(settings.LLM_ALIAS_PROVIDERS.get(alias, settings.LLM_PROVIDER_NAME))}"
            for alias, model in settings.LLM_MODELS.items()
        },
        "original": original,
        "run_cost": get_app_settings().session_run_credit_cost,
        "replay_plan": replay_check(focus_group),
    }
    return render(request, "focusgroups/compare.html", context)
