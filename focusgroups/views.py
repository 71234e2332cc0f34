"""Pages for focus-group sessions: the list, create, settings (edit), archive/restore, reopen, delete, and
the participant picker partial. The discussion, guide and assets pages live in their own modules.

Every session comes from ``get_focus_group_for_user`` (another user's → 404); writes go through
``focusgroups.services``.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError
from focusgroups import selectors, services
from focusgroups.access import get_focus_group_for_user
from focusgroups.forms import FocusGroupForm, chosen_persona_ids, is_refresh
from focusgroups.models import MAX_PARTICIPANTS, MIN_PARTICIPANTS, FocusGroup
from focusgroups.quality import conformity
from personas.models import Persona
from personas.selectors import persona_count_for_user

PAGE_SIZE = 20
FORM_FIELDS = ("title", "objective", "concept", "cost_cap_usd", *FocusGroupForm.CONFORMITY_FIELDS)


def _truthy(value) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def _search_text(data) -> str:
    return (data.get("q") or "").strip()[:200]


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return default


# --- list ----------------------------------------------------------------------------------------


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    archived = _truthy(request.GET.get("archived"))
    q = _search_text(request.GET)
    sessions = selectors.focus_groups_for_user(user=request.user, archived=archived, q=q)
    page = Paginator(sessions, PAGE_SIZE).get_page(request.GET.get("page"))
    counts = selectors.focus_group_counts(user=request.user)
    context = {
        "page_obj": page,
        "q": q,
        "archived": archived,
        "counts": counts,
        "has_any": bool(counts["active"] or counts["archived"]),
        "persona_count": persona_count_for_user(user=request.user),
        "min_participants": MIN_PARTICIPANTS,
        "max_participants": MAX_PARTICIPANTS,
    }
    return render(request, "focusgroups/index.html", context)


# --- the participant picker ------------------------------------------------------------------------


def _picker_context(request: HttpRequest, *, q: str, chosen: list[Persona], locked: set[int]) -> dict:
    results, total = selectors.picker_personas(user=request.user, q=q)
    chosen_ids = {persona.pk for persona in chosen}
    return {
        "picker_q": q,
        "picker_results": results,
        "picker_total": total,
        "picker_more": max(total - len(results), 0),
        "chosen_ids": chosen_ids,
        "locked_ids": locked,
        "min_participants": MIN_PARTICIPANTS,
        "max_participants": MAX_PARTICIPANTS,
    }


@login_required
@require_GET
def persona_picker(request: HttpRequest) -> HttpResponse:
    """The picker's list for ``?q=``, ticking the ids in ``persona_ids`` (htmx swaps it into the form).

    ``fg=<id>`` (on a session's settings page) marks the participants who have spoken as fixed.
    """
    locked: set[int] = set()
    chosen = selectors.personas_in_order(user=request.user, persona_ids=chosen_persona_ids(request.GET))
    if request.GET.get("fg"):
        focus_group = get_focus_group_for_user(request.user, request.GET["fg"])
        locked = selectors.persona_ids_who_spoke(focus_group=focus_group, persona_ids=[p.pk for p in chosen])
    context = _picker_context(request, q=_search_text(request.GET), chosen=chosen, locked=locked)
    return render(request, "focusgroups/_persona_picker.html", context)


# --- create and edit ------------------------------------------------------------------------------


def _form_for(request: HttpRequest, *, focus_group: FocusGroup | None = None) -> tuple[FocusGroupForm, bool]:
    """The bound form for a save, or, for a no-JavaScript search/chip removal, an unbound one refilled from
    the POST (so nothing is validated or saved). Returns ``(form, refreshing)``."""
    if request.method != "POST":
        return FocusGroupForm(user=request.user, focus_group=focus_group), False
    if is_refresh(request.POST):
        initial = {name: request.POST.get(name, "") for name in FORM_FIELDS}
        form = FocusGroupForm(
            user=request.user, focus_group=focus_group, initial=initial, chosen=chosen_persona_ids(request.POST)
        )
        return form, True
    return FocusGroupForm(request.POST, user=request.user, focus_group=focus_group), False


def _render_form(
    request: HttpRequest, form: FocusGroupForm, *, focus_group: FocusGroup | None = None, status: int = 200, **extra
) -> HttpResponse:
    data = request.POST if request.method == "POST" else request.GET
    chosen = selectors.personas_in_order(user=request.user, persona_ids=form.chosen_ids)
    locked: set[int] = set()
    if focus_group is not None:
        locked = selectors.persona_ids_who_spoke(focus_group=focus_group, persona_ids=[p.pk for p in chosen])
    context = {
        "form": form,
        "focus_group": focus_group,
        "chosen": chosen,
        "persona_count": persona_count_for_user(user=request.user),
        **_picker_context(request, q=_search_text(data), chosen=chosen, locked=locked),
        **extra,
    }
    if focus_group is not None:
        context["tab"] = "edit"
        context["details"] = selectors.focus_group_with_details(focus_group=focus_group)
    check = conformity.conformity_get(focus_group) if focus_group is not None else None
    context["conformity"] = {
        "per_persona": get_app_settings().quality_credits_per_persona,
        "price": conformity.conformity_price(len(chosen)),
        # Asked already: the question stays as it was. Too late: the discussion started without it.
        "locked": check is not None and check.started,
        "too_late": focus_group is not None and check is None and conformity.discussion_started(focus_group),
    }
    if form.persona_not_found:
        status = 404
    return render(request, "focusgroups/form.html", context, status=status)


def _save_conformity(focus_group: FocusGroup, data: dict) -> None:
    conformity.conformity_set(
        focus_group=focus_group,
        enabled=bool(data.get("measure_conformity")),
        question=data.get("conformity_question", ""),
        options=data.get("conformity_options") or [],
    )


@login_required
@require_http_methods(["GET", "POST"])
def create(request: HttpRequest) -> HttpResponse:
    form, refreshing = _form_for(request)
    if request.method == "POST" and not refreshing and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                focus_group = services.focus_group_create(
                    owner=request.user,
                    title=data["title"],
                    objective=data["objective"],
                    concept=data["concept"],
                    persona_ids=form.chosen_ids,
                    cost_cap_usd=data["cost_cap_usd"],
                )
                _save_conformity(focus_group, data)
        except ApplicationError as exc:
            form.apply_service_errors(exc)
        else:
            messages.success(request, f"“{focus_group.title}” is ready with {len(form.chosen_ids)} participants.")
            return redirect(reverse("focusgroups:detail", args=[focus_group.pk]))
    return _render_form(request, form)


@login_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, fg_id: int) -> HttpResponse:
    focus_group = get_focus_group_for_user(request.user, fg_id)
    if request.method == "POST" and focus_group.archived:
        try:
            get_focus_group_for_user(request.user, fg_id, for_write=True)
        except ApplicationError as exc:
            form = FocusGroupForm(user=request.user, focus_group=focus_group)
            return _render_form(request, form, focus_group=focus_group, status=exc.status_code, refused=exc.message)
    form, refreshing = _form_for(request, focus_group=focus_group)
    if request.method == "POST" and not refreshing and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                services.focus_group_update(
                    focus_group=focus_group,
                    title=data["title"],
                    objective=data["objective"],
                    concept=data["concept"],
                    cost_cap_usd=data["cost_cap_usd"],
                )
                services.participants_set(focus_group=focus_group, persona_ids=form.chosen_ids)
                _save_conformity(focus_group, data)
        except ApplicationError as exc:
            focus_group.refresh_from_db()  # the transaction rolled back; show what is saved
            form.apply_service_errors(exc)
            status = 409 if exc.status_code == 409 else 200
            return _render_form(request, form, focus_group=focus_group, status=status)
        messages.success(request, "Session settings saved.")
        return redirect("focusgroups:edit", fg_id=focus_group.pk)
    return _render_form(request, form, focus_group=focus_group)


# --- archive and delete ---------------------------------------------------------------------------


@login_required
@require_POST
def archive(request: HttpRequest, fg_id: int) -> HttpResponse:
    """``archived=1`` archives (read-only, out of the main list), ``archived=0`` restores."""
    focus_group = get_focus_group_for_user(request.user, fg_id)
    archived = _truthy(request.POST.get("archived", "1"))
    services.focus_group_archive(focus_group=focus_group, archived=archived)
    if archived:
        messages.success(request, f"“{focus_group.title}” archived. It is read-only until you restore it.")
    else:
        messages.success(request, f"“{focus_group.title}” restored.")
    return redirect(_safe_next(request, reverse("focusgroups:edit", args=[focus_group.pk])))


@login_required
@require_POST
def reopen(request: HttpRequest, fg_id: int) -> HttpResponse:
    """An ended session becomes live again for follow-up questions, moderated by hand; nothing is charged."""
    focus_group = get_focus_group_for_user(request.user, fg_id)
    try:
        services.focus_group_reopen(focus_group=focus_group)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            "Reopened for follow-up questions: ask the group below. Autonomous mode stays ended, and nothing was "
            "charged.",
        )
    return redirect("focusgroups:detail", fg_id=focus_group.pk)


@login_required
@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, fg_id: int) -> HttpResponse:
    focus_group = get_focus_group_for_user(request.user, fg_id)
    if request.method == "POST":
        title = focus_group.title
        services.focus_group_delete(focus_group=focus_group)
        messages.success(request, f"“{title}” deleted.")
        return redirect("focusgroups:index")
    context = {
        "focus_group": selectors.focus_group_with_details(focus_group=focus_group),
        "asset_count": focus_group.assets.count(),
        "has_guide": hasattr(focus_group, "guide"),
    }
    return render(request, "focusgroups/delete.html", context)
