"""Panel pages: the list (with the user's uploaded populations), the builder, a panel with its live
progress and its composition against the target, exports, and any folder's composition."""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from billing.selectors import credits_balance
from billing.ux import error_html
from cohorta.accounts.http import AuthenticatedHttpRequest
from cohorta.admin_tools.csv_export import csv_response
from cohorta.errors import ApplicationError
from panels import exports, selectors, services
from panels.access import get_microdata_file_for_user, get_panel_for_user, get_population_file_for_user
from panels.composition import composition_csv_rows
from panels.forms import DEFAULT_TARGET, MAX_QUOTAS, QUOTA_KINDS, BuilderInput
from panels.models import MemberState, Panel, ProfileDepth
from panels.quality import quality_check_start
from panels.quality_report import quality_page
from panels.runner import member_counts, progress_message
from personas.access import get_folder_for_user

EXPORT_FORMATS = ("csv", "json")
FAILURES_SHOWN = 50


def _error_fields(exc: ApplicationError) -> dict:
    fields = (exc.extra or {}).get("fields") or {}
    return fields if isinstance(fields, dict) else {}


def _depth_short(depth: str) -> str:
    """“Light” for “Light (one quick call per person, for surveys)”."""
    return str(dict(ProfileDepth.choices).get(depth, depth)).split(" (", 1)[0]


# --- the list --------------------------------------------------------------------------------------


@login_required
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    panels = list(selectors.panel_list(owner=request.user))
    for panel in panels:
        setattr(panel, "depth_short", _depth_short(panel.depth))  # noqa: B010  (shown by the list)
    context = {
        "panels": panels,
        "populations": selectors.population_files(owner=request.user),
        "microdata": selectors.microdata_files(owner=request.user),
        "any_active": any(panel.job and panel.job.is_active for panel in panels),
    }
    return render(request, "panels/index.html", context)


# --- the builder -----------------------------------------------------------------------------------


def _quota_rows(values: BuilderInput, target: dict) -> list[dict]:
    """Every quota row as the form draws it, with the categories of the dimensions it names (from the
    chosen target); the filled rows are shown, the blank ones wait behind “Add a quota”."""
    categories = {dimension["key"]: dimension["categories"] for dimension in target["dimensions"]}
    rows = []
    for index, row in enumerate(values.rows()):
        conditions = [
            {
                "n": n,
                "dim": dim,
                "options": [
                    {"name": category["name"], "checked": category["name"] in cats}
                    for category in categories.get(dim, [])
                ],
            }
            for n, (dim, cats) in enumerate(row.conditions, start=1)
        ]
        rows.append(
            {"index": index, "conditions": conditions, "kind": row.kind, "value": row.value, "shown": not row.is_blank}
        )
    return rows


def _builder_context(request: AuthenticatedHttpRequest, values: BuilderInput, **extra) -> dict:
    owner = request.user
    low, high = services.panel_limits()
    targets = exports.target_options(owner=owner)
    if values.target not in {target["value"] for target in targets}:
        values.target = DEFAULT_TARGET
    current = next(target for target in targets if target["value"] == values.target)
    balance = credits_balance(user=owner)
    unit = services.unit_cost(values.depth if values.depth in ProfileDepth.values else ProfileDepth.LIGHT)
    people = int(values.size) if values.size.isdigit() else 0
    return {
        "values": values,
        "quota_rows": _quota_rows(values, current),
        "targets": targets,
        "target": current,
        "target_data": {target["value"]: target for target in targets},
        "depths": ProfileDepth.choices,
        "unit_costs": {depth: services.unit_cost(depth) for depth in ProfileDepth.values},
        "balance": balance,
        "cost_unit": unit,
        "cost_people": people,
        "cost_total": unit * people,
        "cost_short": unit * people > balance,
        "size_min": low,
        "size_max": high,
        "max_quotas": MAX_QUOTAS,
        "quota_kinds": QUOTA_KINDS,
        "error": None,
        "error_fields": {},
        **extra,
    }


@login_required
def new(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method != "POST":
        values = BuilderInput(target=request.GET.get("target") or DEFAULT_TARGET)
        return render(request, "panels/new.html", _builder_context(request, values))
    values = BuilderInput.from_post(request.POST)
    try:
        values.check()
        panel = services.panel_build_start(owner=request.user, **values.service_kwargs())
    except ApplicationError as exc:
        # A 402 comes with its way out (buy credits, or ask an admin about the AI budget).
        context = _builder_context(request, values, error=error_html(exc), error_fields=_error_fields(exc))
        return render(request, "panels/new.html", context, status=exc.status_code)
    return redirect("panels:detail", panel_id=panel.pk)


@login_required
@require_POST
def population_upload(request: AuthenticatedHttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    name, country = request.POST.get("name", ""), request.POST.get("country", "")
    try:
        population_file = services.population_upload(owner=request.user, upload=upload, name=name, country=country)
    except ApplicationError as exc:
        context = _builder_context(
            request,
            BuilderInput(),
            upload_error=exc.message,
            upload_name=getattr(upload, "name", ""),
            upload_values={"name": name, "country": country},
        )
        return render(request, "panels/new.html", context, status=exc.status_code)
    flash.success(request, f"Uploaded “{population_file.name}”: it is chosen below as the population to draw from.")
    return redirect(f"{reverse('panels:new')}?target=marginals:{population_file.pk}#builder")


@login_required
@require_POST
def microdata_upload(request: AuthenticatedHttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    name, weight = request.POST.get("name", ""), request.POST.get("weight_column", "")
    try:
        microdata_file = services.microdata_upload(
            owner=request.user, upload=upload, name=name, weight_column=weight.strip() or None
        )
    except ApplicationError as exc:
        context = _builder_context(
            request,
            BuilderInput(),
            microdata_error=exc.message,
            microdata_name=getattr(upload, "name", ""),
            microdata_values={"name": name, "weight_column": weight},
        )
        return render(request, "panels/new.html", context, status=exc.status_code)
    flash.success(
        request,
        f"Uploaded “{microdata_file.name}” ({microdata_file.row_count:,} respondents): it is chosen below as "
        "the population to draw from.",
    )
    return redirect(f"{reverse('panels:new')}?target=microdata:{microdata_file.pk}#builder")


@login_required
def population_example(request: AuthenticatedHttpRequest) -> HttpResponse:
    return csv_response(
        filename="population-example.csv", header=exports.MARGINALS_HEADER, rows=exports.example_marginals_rows()
    )


@login_required
@require_POST
def population_delete(request: AuthenticatedHttpRequest, population_id: int) -> HttpResponse:
    population_file = get_population_file_for_user(request.user, population_id, for_write=True)
    name = population_file.name
    services.population_file_delete(population_file=population_file)
    flash.success(request, f"Deleted the population “{name}”. Panels drawn from it keep their own copy of it.")
    return redirect("panels:index")


@login_required
@require_POST
def microdata_delete(request: AuthenticatedHttpRequest, microdata_id: int) -> HttpResponse:
    microdata_file = get_microdata_file_for_user(request.user, microdata_id, for_write=True)
    name = microdata_file.name
    services.microdata_file_delete(microdata_file=microdata_file)
    flash.success(request, f"Deleted the microdata “{name}”. Panels drawn from it keep their own copy of it.")
    return redirect("panels:index")


# --- a panel ---------------------------------------------------------------------------------------


def _progress_context(panel: Panel) -> dict:
    counts = member_counts(panel)
    job = panel.job
    started = job.started_at if job else None
    elapsed = (timezone.now() - started).total_seconds() if started else None
    finished = counts["done"] + counts["failed"] + counts["cancelled"]
    failures = list(panel.members.filter(state=MemberState.FAILED).order_by("position")[:FAILURES_SHOWN])
    return {
        "panel": panel,
        "job": job,
        "counts": counts,
        "active": bool(job and job.is_active),
        "headline": progress_message(counts, elapsed),
        "percent": round(100 * finished / counts["total"]) if counts["total"] else 0,
        "waiting": counts["pending"] + counts["queued"],
        "credits_spent": panel.unit_cost * counts["done"],
        "failures": failures,
        "failures_more": max(0, counts["failed"] - len(failures)),
    }


def _composition_context(request, panel: Panel, counts: dict) -> dict:
    """The written personas against the target; before any is written, the sampled people (what the
    written panel will be). ``?of=sampled`` shows the sampled people at any time."""
    sampled = request.GET.get("of") == "sampled" or not counts["done"]
    comp = selectors.panel_composition(panel, written_only=not sampled)
    writing = bool(counts["pending"] + counts["queued"] + counts["running"])
    page = exports.composition_page(comp, partial=writing and not sampled)
    return {"comp": page, "of_sampled": sampled, "written": counts["done"]}


@login_required
def detail(request: AuthenticatedHttpRequest, panel_id: int) -> HttpResponse:
    panel = get_panel_for_user(request.user, panel_id)
    context = _progress_context(panel)
    context.update(_composition_context(request, panel, context["counts"]))
    context["population"] = exports.population_data(selectors.panel_population(panel))
    context["depth_short"] = _depth_short(panel.depth)
    context.update(quality_page(panel))
    return render(request, "panels/detail.html", context)


@login_required
@require_POST
def quality_start(request: AuthenticatedHttpRequest, panel_id: int) -> HttpResponse:
    panel = get_panel_for_user(request.user, panel_id, for_write=True)
    try:
        check = quality_check_start(panel=panel)
    except ApplicationError as exc:
        flash.error(request, exc.message)
        return redirect(f"{reverse('panels:detail', args=[panel.pk])}#quality")
    people = f"{check.size:,} persona{'s' if check.size != 1 else ''}"
    flash.success(request, f"Checking the quality of {people}: the results appear below as they come in.")
    return redirect(f"{reverse('panels:detail', args=[panel.pk])}#quality")


@login_required
def quality_section(request: AuthenticatedHttpRequest, panel_id: int) -> HttpResponse:
    """The Quality section alone, polled while a check runs."""
    panel = get_panel_for_user(request.user, panel_id)
    return render(request, "panels/_quality.html", {"panel": panel, **quality_page(panel)})


@login_required
def progress(request: AuthenticatedHttpRequest, panel_id: int) -> HttpResponse:
    panel = get_panel_for_user(request.user, panel_id)
    context = _progress_context(panel)
    response = render(request, "panels/_progress.html", context)
    if not context["active"] and request.GET.get("was") == "active":
        response["HX-Refresh"] = "true"  # the panel just finished: show it whole
    return response


@login_required
def composition(request: AuthenticatedHttpRequest, panel_id: int) -> HttpResponse:
    """The composition card alone, refreshed while the panel is being written."""
    panel = get_panel_for_user(request.user, panel_id)
    context = {"panel": panel, "active": bool(panel.job and panel.job.is_active)}
    context.update(_composition_context(request, panel, member_counts(panel)))
    return render(request, "panels/_panel_composition.html", context)


def _download(body: bytes | str, *, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _composition_download(comp: dict, *, fmt: str, stem: str) -> HttpResponse:
    if fmt not in EXPORT_FORMATS:
        raise Http404("Unknown export format: use csv or json.")
    if fmt == "json":
        return _download(exports.json_bytes(comp), content_type="application/json", filename=f"{stem}.json")
    rows = composition_csv_rows(comp)
    return csv_response(filename=f"{stem}.csv", header=rows[0], rows=rows[1:])


@login_required
def composition_export(request: AuthenticatedHttpRequest, panel_id: int, fmt: str) -> HttpResponse:
    panel = get_panel_for_user(request.user, panel_id)
    comp = selectors.panel_composition(panel, written_only=request.GET.get("of") != "sampled")
    return _composition_download(comp, fmt=fmt, stem=f"panel-{panel.pk}-composition")


@login_required
def panel_export(request: AuthenticatedHttpRequest, panel_id: int) -> HttpResponse:
    panel = get_panel_for_user(request.user, panel_id)
    body = exports.json_bytes(exports.panel_document(panel))
    return _download(body, content_type="application/json", filename=f"panel-{panel.pk}.json")


@login_required
@require_POST
def delete(request: AuthenticatedHttpRequest, panel_id: int) -> HttpResponse:
    panel = get_panel_for_user(request.user, panel_id, for_write=True)
    name, with_personas = panel.name, request.POST.get("with_personas") == "on"
    services.panel_delete(panel=panel, with_personas=with_personas)
    flash.success(request, f"Deleted the panel “{name}”{' and its personas' if with_personas else ''}.")
    return redirect("panels:index")


# --- any folder's composition ----------------------------------------------------------------------


def _population_for(request: AuthenticatedHttpRequest, value: str):
    """The population a folder is read against: a built-in one or one of the user's uploads (another
    user's is a 404, as everywhere)."""
    kind, _, key = value.partition(":")
    if kind == "marginals":
        return exports.population_of_file(get_population_file_for_user(request.user, key))
    if kind == "microdata":
        return exports.population_of_microdata(get_microdata_file_for_user(request.user, key))
    return exports.bundled(key)


def _folder_comp(request: AuthenticatedHttpRequest, folder_id: int) -> tuple:
    folder = get_folder_for_user(request.user, folder_id)
    value = request.GET.get("population") or DEFAULT_TARGET
    population = _population_for(request, value)
    error = ""
    if population is None:
        error = "That population is not one of the built-in ones or your uploads: the US adults are shown instead."
        value = DEFAULT_TARGET
        population = exports.bundled(DEFAULT_TARGET.partition(":")[2])
    return folder, value, population, error


@login_required
def folder_composition(request: AuthenticatedHttpRequest, folder_id: int) -> HttpResponse:
    folder, value, population, error = _folder_comp(request, folder_id)
    comp = selectors.folder_composition(folder, population)
    context = {
        "folder": folder,
        "population_value": value,
        "targets": services.target_choices(owner=request.user),
        "comp": exports.composition_page(comp),
        "error": error,
    }
    return render(request, "panels/folder_composition.html", context)


@login_required
def folder_composition_export(request: AuthenticatedHttpRequest, folder_id: int, fmt: str) -> HttpResponse:
    folder, _value, population, _error = _folder_comp(request, folder_id)
    comp = selectors.folder_composition(folder, population)
    return _composition_download(comp, fmt=fmt, stem=f"folder-{folder.pk}-composition")
