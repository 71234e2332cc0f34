from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from cohorta.jobs import selectors, services
from cohorta.jobs.errors import IllegalJobTransition


def _job_for_user(request: HttpRequest, job_id):
    job = selectors.job_get_for_user(user=request.user, job_id=job_id)
    if job is None:
        raise Http404("No such job")
    return job


@login_required
@require_GET
def jobs_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.jobs_for_user(user=request.user), 25).get_page(request.GET.get("page"))
    return render(request, "jobs/list.html", {"page_obj": page})


@login_required
@require_GET
def jobs_panel(request: HttpRequest) -> HttpResponse:
    jobs = selectors.jobs_recent_for_panel(user=request.user, limit=5)
    context = {
        "jobs": jobs,
        "any_active": any(job.is_active for job in jobs),
        "any_failed": any(job.state in ("failed", "interrupted") for job in jobs),
    }
    html = render_to_string("jobs/_panel.html", context, request=request)
    # Stripped so the panel's :empty rule hides it when there is nothing to show.
    return HttpResponse(html.strip())


def _after_action(request: HttpRequest, job) -> HttpResponse:
    if request.htmx:
        return render(request, "jobs/_job_row.html", {"job": job})
    return redirect(request.headers.get("Referer") or "jobs_list")


@login_required
@require_POST
def jobs_cancel(request: HttpRequest, job_id) -> HttpResponse:
    job = _job_for_user(request, job_id)
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
def jobs_retry(request: HttpRequest, job_id) -> HttpResponse:
    job = _job_for_user(request, job_id)
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
