"""Pages for the persona library: browse, profiles, manual create/edit, versions, folders, import/export.

AI generation and modification live in ``views_generation.py``.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError
from cohorta.read_cache import cached_page
from personas import io, quality, selectors, services
from personas.access import get_folder_for_user, get_persona_for_user, get_persona_version_for_user
from personas.forms import ImportForm, LibraryFilterForm, PersonaForm
from personas.models import Folder, PersonaSource

PAGE_SIZE = 24


# --- ids from the request: objects come from ``personas.access`` ---------------------------------


def _folder_or_none(request: HttpRequest, value: str | None) -> Folder | None:
    """``"none"`` or empty means no folder; anything else must be one of the user's folders."""
    if value in (None, "", "none"):
        return None
    return get_folder_for_user(request.user, value)


def _ids_from(data) -> list[int]:
    """Persona ids from ``ids=1,2,3`` and/or repeated ``ids`` parameters."""
    ids = []
    for chunk in data.getlist("ids"):
        for part in chunk.split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit():
                raise Http404("No such persona")
            ids.append(int(part))
    return list(dict.fromkeys(ids))


def _personas_by_ids(request: HttpRequest, ids: list[int]):
    """The user's personas with these ids; any id that is not theirs makes the whole request a 404."""
    personas = selectors.personas_for_user(user=request.user).filter(pk__in=ids)
    if personas.count() != len(ids):
        raise Http404("No such persona")
    return personas


def _back_to_library(request: HttpRequest, folder: Folder | None = None, *, no_folder: bool = False) -> HttpResponse:
    url = reverse("personas:index")
    if folder is not None:
        url += f"?folder={folder.pk}"
    elif no_folder:
        url += "?folder=none"
    return redirect(url)


# --- library ------------------------------------------------------------------------------------


@login_required
@require_GET
@cached_page
def index(request: HttpRequest) -> HttpResponse:
    filters = LibraryFilterForm(request.GET)
    kwargs = filters.selector_kwargs()
    current_folder = None
    folder_value = kwargs["folder"]
    if folder_value and folder_value != "none":
        current_folder = get_folder_for_user(request.user, folder_value)
    personas = selectors.personas_for_user(user=request.user, **kwargs)
    page = Paginator(personas, PAGE_SIZE).get_page(request.GET.get("page"))
    folders = list(selectors.folders_for_user(user=request.user))
    counts = selectors.library_counts_for_user(user=request.user)
    context = {
        "page_obj": page,
        "filters": filters,
        "has_filters": filters.has_filters(),
        "folders": folders,
        "current_folder": current_folder,
        "folder_value": folder_value or "",
        "total_count": counts["total"],
        "unfiled_count": counts["unfiled"],
        "sources": PersonaSource.choices,
    }
    return render(request, "personas/index.html", context)


# --- profile ------------------------------------------------------------------------------------


@login_required
@require_GET
def detail(request: HttpRequest, persona_id: int) -> HttpResponse:
    persona = get_persona_for_user(request.user, persona_id)
    big_five = [(trait, score) for trait, score in persona.big_five.items()]
    context = {
        "persona": persona,
        "big_five": big_five,
        "has_big_five": any(score is not None for _, score in big_five),
        "chip_sections": [
            ("Values", persona.values),
            ("Interests", persona.interests),
            ("Goals", persona.goals),
            ("Frustrations", persona.frustrations),
            ("Brand affinities", persona.brand_affinities),
        ],
        "text_sections": [
            ("Buying behaviour", "bi-bag", persona.buying_behaviour),
            ("Media and channel habits", "bi-phone", persona.media_habits),
            ("Backstory", "bi-book", persona.backstory),
            ("Speaking style", "bi-chat-quote", persona.speaking_style),
        ],
        "facts": [
            ("Age", persona.age),
            ("Gender", persona.gender),
            ("Location", persona.location),
            ("Occupation", persona.occupation),
            ("Income", persona.income_bracket),
            ("Education", persona.education),
            ("Household", persona.household),
            ("Tech savviness", persona.get_tech_savviness_display() if persona.tech_savviness else ""),
        ],
        "versions": selectors.persona_versions(persona=persona),
        "folders": selectors.folders_for_user(user=request.user),
        "modify_cost": get_app_settings().persona_modify_credit_cost,
        "modifying": selectors.persona_modify_in_progress(persona=persona),
        **quality_context(persona),
    }
    return render(request, "personas/detail.html", context)


def quality_context(persona) -> dict:
    """The Quality block: the newest scored check, the few before it (failed ones too), the bar."""
    history = quality.persona_checks(persona=persona, limit=6)
    latest = quality.latest_check(persona=persona)
    return {
        "quality_latest": latest,
        "quality_history": [check for check in history if check != latest][:5],
        "quality_bar": get_app_settings().quality_judge_bar,
    }


def _apply_service_errors(form: PersonaForm, exc: ApplicationError) -> None:
    fields = exc.extra.get("fields") or {}
    for field, errors in fields.items():
        target = field if field in form.fields else None
        for error in errors:
            form.add_error(target, error)
    if not fields:
        form.add_error(None, exc.message)


@login_required
@require_http_methods(["GET", "POST"])
def create(request: HttpRequest) -> HttpResponse:
    initial: dict[str, int | None] = {}
    if request.method == "GET" and request.GET.get("folder"):
        try:
            initial["folder"] = get_folder_for_user(request.user, request.GET["folder"]).pk
        except Http404:
            initial["folder"] = None  # only a preselection: a folder that is not theirs just is not preselected
    form = PersonaForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            persona = services.persona_create(
                owner=request.user,
                data=form.profile_data(),
                folder=form.cleaned_data["folder"],
                tags=form.cleaned_data["tags"],
            )
        except ApplicationError as exc:
            _apply_service_errors(form, exc)
        else:
            messages.success(request, f"{persona.name} created.")
            return redirect("personas:detail", persona_id=persona.pk)
    return render(request, "personas/form.html", {"form": form, "persona": None})


@login_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, persona_id: int) -> HttpResponse:
    persona = get_persona_for_user(request.user, persona_id)
    form = PersonaForm(request.POST or None, user=request.user, persona=persona)
    if request.method == "POST" and form.is_valid():
        before = persona.version
        try:
            with transaction.atomic():
                persona = services.persona_update(persona=persona, data=form.profile_data())
                services.persona_set_meta(
                    persona=persona, folder=form.cleaned_data["folder"], tags=form.cleaned_data["tags"]
                )
        except ApplicationError as exc:
            _apply_service_errors(form, exc)
        else:
            if persona.version != before:
                messages.success(request, f"Saved as version {persona.version}.")
            else:
                messages.info(request, "Saved. The profile did not change, so no new version was made.")
            return redirect("personas:detail", persona_id=persona.pk)
    return render(request, "personas/form.html", {"form": form, "persona": persona})


@login_required
@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, persona_id: int) -> HttpResponse:
    persona = get_persona_for_user(request.user, persona_id)
    if request.method == "POST":
        name = persona.name
        services.persona_delete(persona=persona)
        messages.success(request, f"{name} deleted.")
        return redirect("personas:index")
    return render(request, "personas/delete.html", {"persona": persona, "version_count": persona.versions.count()})


@login_required
@require_POST
def restore_version(request: HttpRequest, persona_id: int, number: int) -> HttpResponse:
    version = get_persona_version_for_user(request.user, number, persona_id=persona_id)
    persona = version.persona
    if version.number == persona.version:
        messages.info(request, f"Version {number} is already the current one.")
    else:
        try:
            persona = services.persona_restore_version(persona=persona, version=version)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Restored version {number}: it is now version {persona.version}.")
    return redirect("personas:detail", persona_id=persona.pk)


# --- filing -------------------------------------------------------------------------------------


@login_required
@require_POST
def move(request: HttpRequest) -> HttpResponse:
    ids = _ids_from(request.POST)
    folder = _folder_or_none(request, request.POST.get("folder"))
    if not ids:
        messages.warning(request, "Select at least one persona to move.")
        return redirect(request.POST.get("next") or "personas:index")
    _personas_by_ids(request, ids)
    moved = services.personas_move(owner=request.user, persona_ids=ids, folder=folder)
    where = f"“{folder.name}”" if folder else "No folder"
    messages.success(request, f"Moved {moved} persona{'s' if moved != 1 else ''} to {where}.")
    next_url = request.POST.get("next", "")
    if next_url.startswith("/") and not next_url.startswith("//"):
        return redirect(next_url)
    return _back_to_library(request, folder, no_folder=folder is None)


@login_required
@require_POST
def folder_create_view(request: HttpRequest) -> HttpResponse:
    try:
        folder = services.folder_create(owner=request.user, name=request.POST.get("name", ""))
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("personas:index")
    messages.success(request, f"Folder “{folder.name}” created.")
    return _back_to_library(request, folder)


@login_required
@require_POST
def folder_rename_view(request: HttpRequest, folder_id: int) -> HttpResponse:
    folder = get_folder_for_user(request.user, folder_id)
    try:
        folder = services.folder_rename(folder=folder, name=request.POST.get("name", ""))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Folder renamed to “{folder.name}”.")
    return _back_to_library(request, folder)


@login_required
@require_POST
def folder_delete_view(request: HttpRequest, folder_id: int) -> HttpResponse:
    folder = get_folder_for_user(request.user, folder_id)
    name, count = folder.name, folder.personas.count()
    services.folder_delete(folder=folder)
    kept = f" Its {count} persona{'s' if count != 1 else ''} moved to No folder." if count else ""
    messages.success(request, f"Folder “{name}” deleted.{kept}")
    return redirect("personas:index")


# --- import / export ----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def export(request: HttpRequest) -> HttpResponse:
    """``?format=csv|json`` of a selection (``ids``), a folder (``folder=<id>|none``) or everything.

    The library's bulk form POSTs a selection here; a POST must name its personas.
    """
    data = request.POST if request.method == "POST" else request.GET
    fmt = data.get("format", "csv")
    if fmt not in ("csv", "json"):
        messages.error(request, "Export format must be CSV or JSON.")
        return redirect("personas:index")
    ids = _ids_from(data)
    if not ids and request.method == "POST":
        messages.warning(request, "Select at least one persona to export.")
        return redirect("personas:index")
    personas, label = io.export_selection(user=request.user, ids=ids, folder=data.get("folder"))
    response = io.export_response(personas, label=label, fmt=fmt)
    return response


@login_required
@require_http_methods(["GET", "POST"])
def import_personas(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None, user=request.user)
    error, row_errors = None, []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        folder = form.cleaned_data["folder"]
        try:
            content = io.upload_content(upload)
            created = io.personas_import(owner=request.user, filename=upload.name, content=content, folder=folder)
        except ApplicationError as exc:
            error, row_errors = exc.message, exc.extra.get("rows", [])
        else:
            messages.success(request, f"Imported {len(created)} persona{'s' if len(created) != 1 else ''}.")
            return _back_to_library(request, folder)
    context = {
        "form": form,
        "error": error,
        "row_errors": [{**row, "text": io.format_row_error(row)} for row in row_errors],
        "columns": io.EXPORT_COLUMNS,
        "max_rows": io.MAX_IMPORT_ROWS,
    }
    return render(request, "personas/import.html", context, status=400 if error else 200)
