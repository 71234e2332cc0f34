"""The discussion guide page: generate it with AI, edit it by hand, export it as Markdown.

Every edit is a small POST to the ``guide`` URL with an ``action`` field. With htmx it answers with
the editor partial (errors included, with their status); without JavaScript it redirects back to
the page (or re-renders it with the error)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cohorta.accounts.http import AuthenticatedHttpRequest
from cohorta.errors import ApplicationError
from focusgroups.access import get_focus_group_for_user
from focusgroups.guide import services as guides
from focusgroups.models import FocusGroup

LIMITS = {
    "min_sections": guides.MIN_SECTIONS,
    "max_sections": guides.MAX_SECTIONS,
    "min_questions": guides.MIN_QUESTIONS,
    "max_questions": guides.MAX_QUESTIONS,
    "min_turns": guides.MIN_TURNS,
    "max_turns": guides.MAX_TURNS,
    "max_probes": guides.MAX_PROBES,
    "default_turns": guides.DEFAULT_TURN_BUDGET,
}


def _context(focus_group: FocusGroup, *, error: str = "") -> dict:
    guide = guides.guide_get(focus_group=focus_group)
    job = guides.guide_job_latest(focus_group=focus_group)
    data = guide.data if guide is not None else {}
    return {
        "focus_group": focus_group,
        "tab": "guide",
        "guide": guide,
        "data": data,
        "counts": guides.guide_counts(data),
        "job": job,
        # A failure is worth showing only if no guide was saved since.
        "job_failed": job is not None
        and job.state in ("failed", "interrupted", "cancelled")
        and (guide is None or guide.updated_at < (job.finished_at or job.created_at)),
        "guide_url": reverse("focusgroups:guide", args=[focus_group.pk]),
        "read_only": focus_group.archived,
        "limits": LIMITS,
        "error": error,
    }


def _page(
    request: AuthenticatedHttpRequest, focus_group: FocusGroup, *, error: str = "", status: int = 200
) -> HttpResponse:
    return render(request, "focusgroups/guide.html", _context(focus_group, error=error), status=status)


def _editor(
    request: AuthenticatedHttpRequest, focus_group: FocusGroup, *, error: str = "", status: int = 200
) -> HttpResponse:
    context = _context(focus_group, error=error)
    if context["guide"] is None:  # deleted or never written: the whole page has to change
        return HttpResponse(headers={"HX-Refresh": "true"})
    return render(request, "focusgroups/_guide_editor.html", context, status=status)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def guide(request: AuthenticatedHttpRequest, fg_id: int) -> HttpResponse:
    if request.method == "POST":
        return _edit(request, fg_id)
    focus_group = get_focus_group_for_user(request.user, fg_id)
    poll = request.GET.get("poll")
    if request.htmx and poll:
        # The progress card polls here; once its job is over the page reloads to show the result.
        job = guides.guide_job_latest(focus_group=focus_group)
        if job is None or str(job.pk) != poll or not job.is_active:
            return HttpResponse(headers={"HX-Refresh": "true"})
    return _page(request, focus_group)


def _text(request: AuthenticatedHttpRequest, name: str) -> str | None:
    value = request.POST.get(name)
    return None if value is None else value.replace("\r\n", "\n")


def _step(request: AuthenticatedHttpRequest, index: str | None) -> int:
    """The position to move to: one up or one down."""
    try:
        current = int(index) if index is not None else -1
    except ValueError:
        current = -1
    return current - 1 if request.POST.get("direction") == "up" else current + 1


def _apply(request: AuthenticatedHttpRequest, focus_group: FocusGroup, action: str) -> str:
    """Run one edit; returns the anchor to come back to."""
    post = request.POST
    section, question = post.get("section"), post.get("question")
    anchor = f"section-{section}" if section is not None else "guide-editor"
    match action:
        case "title":
            guides.guide_title_set(focus_group=focus_group, title=_text(request, "title") or "")
            anchor = "guide-editor"
        case "add_question":
            guides.guide_question_add(
                focus_group=focus_group,
                section=section,
                text=_text(request, "text") or "",
                probes=_text(request, "probes"),
            )
        case "update_question":
            guides.guide_question_update(
                focus_group=focus_group,
                section=section,
                question=question,
                text=_text(request, "text"),
                probes=_text(request, "probes"),
            )
        case "delete_question":
            guides.guide_question_remove(focus_group=focus_group, section=section, question=question)
        case "move_question":
            guides.guide_question_reorder(
                focus_group=focus_group, section=section, question=question, to=_step(request, question)
            )
        case "add_section":
            guide = guides.guide_section_add(
                focus_group=focus_group,
                title=_text(request, "title") or "",
                goal=_text(request, "goal") or "",
                turn_budget=post.get("turn_budget") or guides.DEFAULT_TURN_BUDGET,
                questions=[_text(request, "question") or ""],
            )
            anchor = f"section-{len(guide.data['sections']) - 1}"
        case "update_section":
            guides.guide_section_update(
                focus_group=focus_group,
                section=section,
                title=_text(request, "title"),
                goal=_text(request, "goal"),
                turn_budget=post.get("turn_budget"),
            )
        case "delete_section":
            guides.guide_section_remove(focus_group=focus_group, section=section)
            anchor = "guide-editor"
        case "move_section":
            to = _step(request, section)
            guides.guide_section_reorder(focus_group=focus_group, section=section, to=to)
            anchor = f"section-{max(0, to)}"
        case _:
            raise ApplicationError("Unknown change. Reload the page and try again.", code="validation_error")
    return anchor


def _edit(request: AuthenticatedHttpRequest, fg_id: int) -> HttpResponse:
    focus_group = get_focus_group_for_user(request.user, fg_id)  # not theirs: 404 before anything else
    try:
        get_focus_group_for_user(request.user, fg_id, for_write=True)  # archived: 409
        anchor = _apply(request, focus_group, request.POST.get("action", ""))
    except ApplicationError as exc:
        if request.htmx:
            return _editor(request, focus_group, error=exc.message, status=exc.status_code)
        return _page(request, focus_group, error=exc.message, status=exc.status_code)
    if request.htmx:
        return _editor(request, focus_group)
    return redirect(f"{reverse('focusgroups:guide', args=[focus_group.pk])}#{anchor}")


@login_required
@require_POST
def guide_generate(request: AuthenticatedHttpRequest, fg_id: int) -> HttpResponse:
    focus_group = get_focus_group_for_user(request.user, fg_id)
    try:
        get_focus_group_for_user(request.user, fg_id, for_write=True)
        guides.guide_generate_start(focus_group=focus_group)
    except ApplicationError as exc:
        return _page(request, focus_group, error=exc.message, status=exc.status_code)
    return redirect("focusgroups:guide", fg_id=focus_group.pk)


@login_required
@require_GET
def guide_export(request: AuthenticatedHttpRequest, fg_id: int) -> HttpResponse:
    focus_group = get_focus_group_for_user(request.user, fg_id)
    guide = guides.guide_get(focus_group=focus_group)
    if guide is None:
        raise Http404("This session has no discussion guide yet.")
    filename = f"{slugify(focus_group.title)[:80] or f'focus-group-{focus_group.pk}'}-guide.md"
    response = HttpResponse(guides.guide_to_markdown(guide), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
