from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from cohorta.http import HtmxHttpRequest
from cohorta.jobs import selectors, services
from cohorta.jobs.access import get_job_for_user
from cohorta.jobs.errors import IllegalJobTransition


@login_required
@require_GET
def jobs_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.jobs_for_user(user=request.user), 25).get_page(request.GET.get("page"))
    return render(request, "jobs/list.html", {"page_obj": page})


# The jobs the user closed the panel on, newest last; kept in the session so it holds across pages.
PANEL_DISMISSED_KEY = "jobs_panel_dismissed"
PANEL_DISMISSED_MAX = 100


def _panel(request: HttpRequest) -> HttpResponse:
    jobs = selectors.jobs_for_panel(user=request.user, hidden_ids=request.session.get(PANEL_DISMISSED_KEY, []))
    context = {
        "jobs": jobs,
        "job_ids": ",".join(str(job.pk) for job in jobs),
        "any_active": any(job.is_active for job in jobs),
        "any_failed": any(job.state in ("failed", "interrupted") for job in jobs),
        # With nothing running, the summary line goes when the last job's time on screen is up.
        "hide_in": max((getattr(job, "hide_in", 0) for job in jobs), default=0),
    }
    html = render_to_string("jobs/_panel.html", context, request=request)
    # Stripped so the panel's :empty rule hides it when there is nothing to show.
    return HttpResponse(html.strip())


@login_required
@require_GET
def jobs_panel(request: HttpRequest) -> HttpResponse:
    return _panel(request)


@login_required
@require_POST
def jobs_panel_dismiss(request: HttpRequest) -> HttpResponse:
    """Close the panel on the jobs it showed (``jobs``: their ids, comma-separated): they stay off it, on
    every page, while a job started later still shows."""
    wanted = [part.strip() for part in request.POST.get("jobs", "").split(",") if part.strip()]
    closed = selectors.job_ids_for_user(user=request.user, job_ids=wanted[:PANEL_DISMISSED_MAX])
    kept = [pk for pk in request.session.get(PANEL_DISMISSED_KEY, []) if pk not in closed]
    request.session[PANEL_DISMISSED_KEY] = (kept + closed)[-PANEL_DISMISSED_MAX:]
    return _panel(request)


def _after_action(request: HtmxHttpRequest, job) -> HttpResponse:
    if request.htmx:
        return render(request, "jobs/_job_row.html", {"job": job})
    return redirect(request.headers.get("Referer") or "jobs_list")


@login_required
@require_POST
def jobs_cancel(request: HtmxHttpRequest, job_id) -> HttpResponse:
    job = get_job_for_user(request.user, job_id)
    try:
        job = services.job_cancel(job=job)
    except IllegalJobTransition:
        messages.warning(request, "That job has already finished, so there was nothing to cancel.")
        job.refresh_from_db()
    else:
        if not request.htmx:
            messages.success(
                request, "Job cancelled." if job.is_terminal else "Cancelling: it stops after its current step."
            )
    return _after_action(request, job)


@login_required
@require_POST
def jobs_retry(request: HtmxHttpRequest, job_id) -> HttpResponse:
    job = get_job_for_user(request.user, job_id)
    try:
        job = services.job_retry(job=job)
    except IllegalJobTransition:
        messages.warning(request, "Only failed or interrupted jobs can be retried.")
        job.refresh_from_db()
    else:
        if not request.htmx:
            messages.success(request, "Job queued again.")
    return _after_action(request, job)


@login_required
@require_POST
def jobs_worker_check(request: HttpRequest) -> HttpResponse:
    services.job_create(owner=request.user, kind="worker_check", params={"steps": 5, "step_seconds": 0.6}, total=5)
    messages.info(request, "Worker check started: watch its progress in the jobs panel.")
    return redirect(request.headers.get("Referer") or "jobs_list")


@login_required
@require_POST
def jobs_llm_check(request: HttpRequest) -> HttpResponse:
    services.job_create(owner=request.user, kind="llm_check", total=1)
    messages.info(request, "AI connection check started: one small call to the model, metered on your Usage page.")
    return redirect(request.headers.get("Referer") or "jobs_list")
