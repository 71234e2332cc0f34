"""Validation pages: the list (references and validations), uploading a real survey, mapping its columns,
a reference with the form that starts a validation, a validation's progress and its scorecard, exports."""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from billing.selectors import credits_balance
from billing.ux import error_html
from cohorta.accounts.http import AuthenticatedHttpRequest
from cohorta.admin_tools.csv_export import csv_response
from cohorta.errors import ApplicationError
from panels import services as panel_services
from panels.models import ProfileDepth
from validation import exports, selectors, services
from validation.access import get_reference_for_user, get_validation_for_user
from validation.forms import DIMENSIONS, OTHER_DIMENSION, ROLES, MappingInput, StartInput, fields_of
from validation.models import Reference, Validation, ValidationState
from validation.reference import REFERENCE_MAX_BYTES

EXPORT_FORMATS = ("csv", "json")


def _error_fields(exc: ApplicationError) -> dict:
    fields = (exc.extra or {}).get("fields") or {}
    return fields if isinstance(fields, dict) else {}


def _depth_short(depth: str) -> str:
    """“Light” for “Light (one quick call per person, for surveys)”."""
    return str(dict(ProfileDepth.choices).get(depth, depth)).split(" (", 1)[0]


def _with_status(validations) -> tuple[list[Validation], bool]:
    """The validations with their steps and verdict for the lists, and whether any is still going."""
    items, active = list(validations), False
    for validation in items:
        status = exports.validation_status(validation)
        active = active or status["active"]
        setattr(validation, "status", status)  # noqa: B010  (shown by the lists)
        setattr(validation, "passed", exports.verdict_passed(validation))  # noqa: B010
    return items, active


# --- the list --------------------------------------------------------------------------------------


@login_required
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    validations, active = _with_status(selectors.validation_list(owner=request.user))
    context = {
        "references": list(selectors.reference_list(owner=request.user)),
        "validations": validations,
        "any_active": active,
    }
    return render(request, "validation/index.html", context)


# --- uploading and mapping a reference -----------------------------------------------------------------


def _upload_context(**extra) -> dict:
    return {"max_mb": REFERENCE_MAX_BYTES // (1024 * 1024), "error": None, "values": {"name": ""}, **extra}


@login_required
def upload(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "validation/upload.html", _upload_context())
    file = request.FILES.get("file")
    name = request.POST.get("name", "")
    try:
        reference = services.reference_upload(owner=request.user, upload=file, name=name)
    except ApplicationError as exc:
        context = _upload_context(error=exc.message, filename=getattr(file, "name", ""), values={"name": name})
        return render(request, "validation/upload.html", context, status=exc.status_code)
    flash.success(
        request,
        f"Uploaded “{reference.name}”: {reference.row_count:,} respondents. Check what each column is, then save.",
    )
    return redirect("validation:mapping", reference_id=reference.pk)


def _mapping_rows(reference: Reference, values: MappingInput, error: ApplicationError | None) -> list[dict]:
    """Each column's preview beside its fields; the error beside the column it is about."""
    extra = error.extra if error is not None else {}
    message = error.message if error is not None else ""
    about = extra.get("column")
    dimension = extra.get("dimension")
    rows = []
    for preview, column in zip(selectors.column_previews(reference), values.columns, strict=True):
        flagged = bool(message) and (
            (about is not None and about == column.column)
            or (dimension is not None and column.role == "demographic" and column.dimension_value == dimension)
        )
        rows.append({"preview": preview, "input": column, "error": message if flagged else ""})
    return rows


def _mapping_context(reference: Reference, values: MappingInput, error: ApplicationError | None = None) -> dict:
    rows = _mapping_rows(reference, values, error)
    placed = any(row["error"] for row in rows)
    return {
        "reference": reference,
        "rows": rows,
        "roles": ROLES,
        "dimensions": DIMENSIONS,
        "other_dimension": OTHER_DIMENSION,
        "error": error.message if error is not None else "",
        "error_placed": placed,
        "error_row": next((row for row in rows if row["error"]), None),
        "from_suggestion": not reference.is_mapped,
    }


@login_required
def mapping(request: AuthenticatedHttpRequest, reference_id: int) -> HttpResponse:
    reference = get_reference_for_user(request.user, reference_id, for_write=request.method == "POST")
    columns = [str(c) for c in (reference.table or {}).get("columns") or []]
    if request.method != "POST":
        values = MappingInput.from_mapping(columns, reference.mapping if reference.is_mapped else reference.suggested)
        return render(request, "validation/mapping.html", _mapping_context(reference, values))
    values = MappingInput.from_post(fields_of(request.POST), columns)
    try:
        values.check()
        services.reference_map(reference=reference, mapping=values.mapping())
    except ApplicationError as exc:
        return render(
            request, "validation/mapping.html", _mapping_context(reference, values, exc), status=exc.status_code
        )
    questions = len(reference.mapping.get("questions") or [])
    demographics = len(reference.mapping.get("demographics") or [])
    flash.success(
        request,
        f"Saved: {questions} question{'s' if questions != 1 else ''} and {demographics} "
        f"demographic{'s' if demographics != 1 else ''}. You can start a validation now.",
    )
    return redirect("validation:reference", reference_id=reference.pk)


# --- a reference and starting a validation -------------------------------------------------------------


def _reference_context(request: AuthenticatedHttpRequest, reference: Reference, values: StartInput, **extra) -> dict:
    mapping_ = reference.mapping if reference.is_mapped else {}
    asked = services.survey_questions(mapping_)
    balance = credits_balance(user=request.user)
    unit_costs = {
        depth: services.validation_cost(size=1, question_count=len(asked), depth=depth) for depth in ProfileDepth.values
    }
    persona_costs = {depth: panel_services.unit_cost(depth) for depth in ProfileDepth.values}
    depth = values.depth if values.depth in unit_costs else ProfileDepth.LIGHT
    people = int(values.size) if values.size.isdigit() else 0
    total = unit_costs[depth] * people
    return {
        "reference": reference,
        "mapping": mapping_,
        "questions": mapping_.get("questions") or [],
        "demographics": mapping_.get("demographics") or [],
        "values": values,
        "depths": [(value, label, _depth_short(value)) for value, label in ProfileDepth.choices],
        "unit_costs": unit_costs,
        "persona_costs": persona_costs,
        "cost_persona": persona_costs[depth],
        "cost_answers": unit_costs[depth] - persona_costs[depth],
        "asked": len(asked),
        "cost_unit": unit_costs[depth],
        "cost_people": people,
        "cost_total": total,
        "cost_short": total > balance,
        "balance": balance,
        "size_max": max(1, min(reference.row_count, panel_services.panel_limits()[1])),
        "validations": _with_status(selectors.validations_of(reference=reference))[0],
        "error": None,
        "error_fields": {},
        **extra,
    }


@login_required
def reference(request: AuthenticatedHttpRequest, reference_id: int) -> HttpResponse:
    item = get_reference_for_user(request.user, reference_id)
    return render(
        request, "validation/reference.html", _reference_context(request, item, StartInput.initial(item.row_count))
    )


@login_required
@require_POST
def start(request: AuthenticatedHttpRequest, reference_id: int) -> HttpResponse:
    item = get_reference_for_user(request.user, reference_id, for_write=True)
    values = StartInput.from_post(request.POST)
    try:
        values.check()
        validation = services.validation_start(owner=request.user, reference=item, **values.service_kwargs())
    except ApplicationError as exc:
        # A 402 comes with its way out (buy credits).
        context = _reference_context(request, item, values, error=error_html(exc), error_fields=_error_fields(exc))
        return render(request, "validation/reference.html", context, status=exc.status_code)
    return redirect("validation:detail", validation_id=validation.pk)


@login_required
@require_POST
def reference_delete(request: AuthenticatedHttpRequest, reference_id: int) -> HttpResponse:
    item = get_reference_for_user(request.user, reference_id, for_write=True)
    name, kept = item.name, item.validations.count()
    services.reference_delete(reference=item)
    tail = (
        f" Its {kept} validation{'s' if kept != 1 else ''} keep{'s' if kept == 1 else ''} "
        f"{'their scorecards' if kept != 1 else 'its scorecard'}."
        if kept
        else ""
    )
    flash.success(request, f"Deleted the reference survey “{name}” and its respondents' answers.{tail}")
    return redirect("validation:index")


# --- a validation --------------------------------------------------------------------------------------


def _detail_context(validation: Validation) -> dict:
    status = exports.validation_status(validation)
    done = validation.state == ValidationState.DONE
    return {
        "validation": validation,
        "status": status,
        "scorecard": exports.scorecard_page(validation) if done else None,
        "depth_short": _depth_short(validation.panel.depth) if validation.panel else "",
        "methods_groups": exports.methods_groups(validation),
        "replay_of": services.replay_source(validation),
        "replay_plan": services.replay_check(validation) if done else None,
    }


@login_required
def detail(request: AuthenticatedHttpRequest, validation_id: int) -> HttpResponse:
    validation = get_validation_for_user(request.user, validation_id)
    return render(request, "validation/detail.html", _detail_context(validation))


@login_required
def progress(request: AuthenticatedHttpRequest, validation_id: int) -> HttpResponse:
    """The steps alone, polled while the validation runs; the page reloads whole when it ends."""
    validation = get_validation_for_user(request.user, validation_id)
    status = exports.validation_status(validation)
    response = render(request, "validation/_status.html", {"validation": validation, "status": status})
    if not status["active"] and request.GET.get("was") == "active":
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_POST
def rescore(request: AuthenticatedHttpRequest, validation_id: int) -> HttpResponse:
    validation = get_validation_for_user(request.user, validation_id, for_write=True)
    scoring = "This validation is being scored already: the scorecard updates here when it is done."
    if validation.state == ValidationState.SCORING:
        flash.info(request, scoring)
        return redirect("validation:detail", validation_id=validation.pk)
    if not exports.can_rescore(validation, failed_at=exports.validation_status(validation)["failed_at"]):
        flash.error(request, "This validation cannot be scored yet: its questions have not all been answered.")
        return redirect("validation:detail", validation_id=validation.pk)
    if services.validation_rescore(validation):
        flash.info(request, "Scoring again from the stored answers: the scorecard updates here when it is done.")
    else:
        flash.info(request, scoring)
    return redirect("validation:detail", validation_id=validation.pk)


@login_required
@require_POST
def replay(request: AuthenticatedHttpRequest, validation_id: int) -> HttpResponse:
    """The validation again with every AI answer from the cache (``allow_live``: the missing ones asked for)."""
    validation = get_validation_for_user(request.user, validation_id, for_write=True)
    try:
        copy = services.validation_replay(validation=validation, allow_live=request.POST.get("allow_live") == "1")
    except ApplicationError as exc:
        flash.error(request, exc.message)
        return redirect("validation:detail", validation_id=validation.pk)
    flash.info(request, "Replaying this validation from the cache: the AI provider is not asked anything.")
    return redirect("validation:detail", validation_id=copy.pk)


@login_required
def export(request: AuthenticatedHttpRequest, validation_id: int, fmt: str) -> HttpResponse:
    validation = get_validation_for_user(request.user, validation_id)
    if fmt not in EXPORT_FORMATS:
        raise Http404("Unknown export format: use csv or json.")
    if validation.state != ValidationState.DONE:
        return HttpResponse(
            f"This validation has no scorecard yet ({validation.get_state_display().lower()}).",
            status=409,
            content_type="text/plain; charset=utf-8",
        )
    stem = f"validation-{validation.pk}-scorecard"
    if fmt == "json":
        response = HttpResponse(
            exports.json_bytes(exports.validation_document(validation)), content_type="application/json"
        )
        response["Content-Disposition"] = f'attachment; filename="{stem}.json"'
        return response
    return csv_response(
        filename=f"{stem}.csv", header=exports.scorecard_csv_header(), rows=exports.scorecard_csv_rows(validation)
    )


@login_required
@require_POST
def delete(request: AuthenticatedHttpRequest, validation_id: int) -> HttpResponse:
    validation = get_validation_for_user(request.user, validation_id, for_write=True)
    name = validation.reference_name
    services.validation_delete(validation=validation)
    flash.success(
        request,
        f"Deleted the validation of “{name}”. Its matched panel and survey stay under Panels and Surveys.",
    )
    return redirect("validation:index")
