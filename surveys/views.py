"""Survey pages: the list, the builder (questions added, edited, reordered, previewed), import,
runs on a panel with live progress, results with charts, the respondent drill-down, exports."""

import json

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from billing.selectors import credits_balance
from billing.ux import error_html
from cohorta.accounts.http import AuthenticatedHttpRequest
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError
from cohorta.jobs.models import JobState
from llm.methods import method_rows, rows_against, run_methods
from panels.access import get_panel_for_user
from panels.selectors import panel_list
from personas.access import get_folder_for_user
from surveys import exports, pages, replay, selectors, services, themes
from surveys.access import get_question_for_user, get_respondent_for_user, get_run_for_user, get_survey_for_user
from surveys.io import EXAMPLE_CSV, questionnaire_read
from surveys.models import SCALE_POINTS, QuestionKind
from surveys.panel import panel_status
from surveys.quality import services as quality_services
from surveys.quality.pages import quality_context
from surveys.questionnaire import DEFAULT_LABELS, DEFAULT_PRESET, PRESET_LABELS, presets_for, scale_values
from surveys.results import run_results
from surveys.runner import progress_message, run_counts
from surveys.scopes import run_scope

# What the size field of “Generate a panel” starts at.
GENERATED_PANEL_DEFAULT = 30
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def _form_values(data: dict) -> dict:
    """What the question fields show: lists as lines, anchor sets as blocks of lines."""

    def lines(value):
        return "\n".join(value) if isinstance(value, list) else (value or "")

    sets = data.get("anchor_sets") or []
    return {
        "kind": data.get("kind", QuestionKind.LIKERT5),
        "text": data.get("text", ""),
        "labels_text": lines(data.get("labels")),
        "options_text": lines(data.get("options")),
        "anchor_text": "\n\n".join(lines(s) for s in sets) if isinstance(sets, list) else sets,
        "anchor_preset": data.get("anchor_preset", ""),
        "randomize_options": data.get("randomize_options", False),
        "direct_elicitation": data.get("direct_elicitation", True),
    }


def _question_data(post) -> dict:
    return {
        "kind": post.get("kind", ""),
        "text": post.get("text", ""),
        "labels": post.get("labels", ""),
        "options": post.get("options", ""),
        "randomize_options": post.get("randomize_options") == "on",
        "anchor_preset": post.get("anchor_preset", ""),
        "anchor_sets": post.get("anchor_sets", ""),
        "direct_elicitation": post.get("direct_elicitation") == "on",
    }


def _question_form_context() -> dict:
    """What the question fields need: the types, label defaults and anchor presets per scale."""
    defaults = {kind: f"{PRESET_LABELS[preset]} (default)" for kind, preset in DEFAULT_PRESET.items()}
    return {
        "kinds": QuestionKind.choices,
        "default_labels": {kind: "\n".join(labels) for kind, labels in DEFAULT_LABELS.items()},
        "presets": {kind: presets_for(kind) for kind in SCALE_POINTS},
        "default_presets_json": json.dumps(defaults),
    }


def _error_field(exc: ApplicationError) -> str:
    fields = (exc.extra or {}).get("fields") or {}
    return next(iter(fields), "")


def _builder_context(survey, *, question_form=None, error=None, error_place="", error_field="", panel=None) -> dict:
    """The builder page. ``error_place`` says where the error shows (``survey``, ``question`` or ``run``:
    beside what it is about, not at the top of a long page); ``panel`` keeps the panel the user picked."""
    questions = list(survey.questions.all())
    for question in questions:
        if question.is_scale:
            question.preset_label = (
                "your own anchors"
                if question.anchor_sets
                else PRESET_LABELS.get(question.anchor_preset or DEFAULT_PRESET[question.kind])
            )
    unit = services.run_unit_cost(question_count=len(questions)) if questions else 0
    runs = list(selectors.runs_for_survey(survey=survey))
    folders = list(selectors.folders_with_counts(user=survey.owner))
    panel = panel or {}
    personas = selectors.personas_for_panel(user=survey.owner)
    has_personas = bool(personas)
    generated_min, generated_max = services.generated_panel_limits()
    # The folder this survey last ran on, else the newest folder (likely made for it).
    by_name = {f.name: f.pk for f in folders}
    default_folder = next((by_name[r.panel_label] for r in runs if r.panel_label in by_name), None) or (
        max(folders, key=lambda f: f.created_at).pk if folders else None
    )
    sampled_panels = list(panel_list(owner=survey.owner))
    # The panel picked (from a panel's page), else the newest with personas written: a panel is made to be asked.
    sampled = int(panel["sampled"]) if str(panel.get("sampled") or "").isdigit() else None
    if sampled is None:
        sampled = next((item.pk for item in sampled_panels if getattr(item, "written", 0)), None)
    return {
        **_question_form_context(),
        "sampled_panels": sampled_panels,
        "panel_sampled": sampled,
        "survey": survey,
        "questions": questions,
        "question_form": _form_values(question_form or {"labels": DEFAULT_LABELS[QuestionKind.LIKERT5]}),
        "error": error,
        "error_place": error_place if error else "",
        "error_field": error_field,
        "runs": runs,
        "folders": folders,
        "personas": personas,
        "panel": panel.get("panel")
        or (
            "sampled"
            if sampled_panels and sampled
            else "folder"
            if folders
            else "selection"
            if has_personas
            else "generate"
        ),
        "panel_description": panel.get("description", ""),
        "panel_size": panel.get("size") or GENERATED_PANEL_DEFAULT,
        "generated_min": generated_min,
        "generated_max": generated_max,
        "persona_cost": get_app_settings().persona_credit_cost,
        "panel_folder": int(panel["folder"]) if str(panel.get("folder") or "").isdigit() else default_folder,
        "panel_personas": {int(p) for p in panel.get("personas", []) if str(p).isdigit()},
        "unit_cost": unit,
        "balance": credits_balance(user=survey.owner),
        "max_panel": get_app_settings().survey_max_panel,
        "block_size": get_app_settings().survey_questions_per_block,
        # "Check quality" on the run form: its extra credits per respondent (the retest and the two passes).
        "quality_per_respondent": quality_services.check_cost(
            questions=[{"kind": q.kind} for q in questions], respondents=1
        )["per_respondent"]
        if questions
        else 0,
    }


def _default_panel_kind(sampled: bool, folders, has_personas: bool) -> str:
    if sampled:
        return "sampled"
    return "folder" if folders else "selection" if has_personas else "generate"


def _index(request: AuthenticatedHttpRequest, status: int = 200, **extra) -> HttpResponse:
    picked = request.GET.get("panel", "")
    context = {
        "picked_panel": get_panel_for_user(request.user, picked) if picked.isdigit() else None,
        "surveys": selectors.surveys_for_user(user=request.user),
        "has_personas": selectors.has_personas(user=request.user),
        **extra,
    }
    return render(request, "surveys/index.html", context, status=status)


@login_required
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            survey = services.survey_create(owner=request.user, title=request.POST.get("title", ""))
        except ApplicationError as exc:
            return _index(request, status=400, error=exc.message)
        picked = request.POST.get("panel", "")
        if picked.isdigit():  # came from a panel's "Run a survey on this panel"
            return redirect(f"{reverse('surveys:detail', args=[survey.pk])}?panel={picked}")
        return redirect("surveys:detail", survey_id=survey.pk)
    return _index(request)


@login_required
@require_POST
def import_file(request: AuthenticatedHttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    try:
        data = questionnaire_read(upload)
        survey = services.survey_create(owner=request.user, **data)
    except ApplicationError as exc:
        return _index(request, status=400, import_error=exc.message, import_name=getattr(upload, "name", ""))
    flash.success(request, f"Imported “{survey.title}” with {survey.questions.count()} questions.")
    return redirect("surveys:detail", survey_id=survey.pk)


@login_required
def import_example(request: AuthenticatedHttpRequest) -> HttpResponse:
    response = HttpResponse(EXAMPLE_CSV, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="survey-example.csv"'
    return response


@login_required
def detail(request: AuthenticatedHttpRequest, survey_id: int) -> HttpResponse:
    survey = get_survey_for_user(request.user, survey_id)
    if request.method == "POST":
        try:
            services.survey_update(
                survey=survey,
                title=request.POST.get("title", ""),
                intro=request.POST.get("intro", ""),
                randomize_questions=request.POST.get("randomize_questions") == "on",
            )
        except ApplicationError as exc:
            context = _builder_context(survey, error=exc.message, error_place="survey", error_field=_error_field(exc))
            return render(request, "surveys/detail.html", context, status=400)
        flash.success(request, "Survey saved.")
        return redirect("surveys:detail", survey_id=survey.pk)
    # From a panel's page ("Run a survey on this panel"): that panel is picked.
    picked = request.GET.get("panel", "")
    panel = {"panel": "sampled", "sampled": picked} if picked.isdigit() else None
    return render(request, "surveys/detail.html", _builder_context(survey, panel=panel))


@login_required
@require_POST
def question_add(request: AuthenticatedHttpRequest, survey_id: int) -> HttpResponse:
    survey = get_survey_for_user(request.user, survey_id)
    data = _question_data(request.POST)
    try:
        services.question_create(survey=survey, data=data)
    except ApplicationError as exc:
        context = _builder_context(
            survey, question_form=data, error=exc.message, error_place="question", error_field=_error_field(exc)
        )
        return render(request, "surveys/detail.html", context, status=400)
    return redirect(f"{request.path.rsplit('questions/', 1)[0]}#add-question")


def _question_dict(question) -> dict:
    fields = ("kind", "text", "labels", "options", "randomize_options", "anchor_preset", "anchor_sets")
    return {**{f: getattr(question, f) for f in fields}, "direct_elicitation": question.direct_elicitation}


@login_required
def question_edit(request: AuthenticatedHttpRequest, survey_id: int, question_id: int) -> HttpResponse:
    question = get_question_for_user(request.user, question_id, survey_id=survey_id)
    error, error_field = None, ""
    if request.method == "POST":
        try:
            services.question_update(question=question, data=_question_data(request.POST))
        except ApplicationError as exc:
            error, error_field = exc.message, _error_field(exc)
        else:
            return redirect("surveys:detail", survey_id=question.survey_id)
    context = {
        **_question_form_context(),
        "survey": question.survey,
        "question": question,
        "error_field": error_field,
        "form": _form_values(_question_data(request.POST) if error else _question_dict(question)),
        "error": error,
    }
    return render(request, "surveys/question_edit.html", context, status=400 if error else 200)


@login_required
@require_POST
def question_delete(request: AuthenticatedHttpRequest, survey_id: int, question_id: int) -> HttpResponse:
    question = get_question_for_user(request.user, question_id, survey_id=survey_id)
    services.question_delete(question=question)
    return redirect("surveys:detail", survey_id=survey_id)


@login_required
@require_POST
def question_move(request: AuthenticatedHttpRequest, survey_id: int, question_id: int) -> HttpResponse:
    question = get_question_for_user(request.user, question_id, survey_id=survey_id)
    services.question_move(question=question, direction=request.POST.get("direction", "up"))
    return redirect("surveys:detail", survey_id=survey_id)


@login_required
def preview(request: AuthenticatedHttpRequest, survey_id: int) -> HttpResponse:
    survey = get_survey_for_user(request.user, survey_id)
    questions = list(survey.questions.all())
    for question in questions:
        if question.is_scale:
            question.points = _scale_points(question.kind, question.labels)
    return render(request, "surveys/preview.html", {"survey": survey, "questions": questions})


def _scale_points(kind: str, labels: list[str]) -> list[dict]:
    """Each point of a scale with its label; a 0–10 scale labelled at its ends only shows those."""
    values = scale_values(kind)
    if len(labels) == len(values):
        return [{"value": v, "label": label} for v, label in zip(values, labels, strict=True)]
    ends = {values[0]: labels[0], values[-1]: labels[-1]} if len(labels) == 2 else {}
    return [{"value": v, "label": ends.get(v, "")} for v in values]


@login_required
@require_POST
def delete(request: AuthenticatedHttpRequest, survey_id: int) -> HttpResponse:
    survey = get_survey_for_user(request.user, survey_id)
    title = survey.title
    services.survey_delete(survey=survey)
    flash.success(request, f"Deleted “{title}”.")
    return redirect("surveys:index")


@login_required
@require_POST
def run_start(request: AuthenticatedHttpRequest, survey_id: int) -> HttpResponse:
    survey = get_survey_for_user(request.user, survey_id)
    panel = {
        "panel": request.POST.get("panel", ""),
        "folder": request.POST.get("folder", ""),
        "personas": request.POST.getlist("personas"),
        "description": request.POST.get("panel_description", ""),
        "size": request.POST.get("panel_size", ""),
        "sampled": request.POST.get("sampled_panel", ""),
    }
    generate = None
    if panel["panel"] == "generate":
        generate = {"description": panel["description"], "size": panel["size"]}
    sampled = None
    if panel["panel"] == "sampled":
        try:
            sampled = get_panel_for_user(request.user, panel["sampled"])
        except Http404:
            message = "Pick one of your panels to ask, or choose another kind of panel."
            context = _builder_context(survey, error=message, error_place="run", panel=panel)
            return render(request, "surveys/detail.html", context, status=400)
    folder = None
    if panel["panel"] == "folder":
        try:
            folder = get_folder_for_user(request.user, panel["folder"])
        except Http404:
            message = "Pick a folder of personas to ask, or choose “Personas I pick” and tick some."
            context = _builder_context(survey, error=message, error_place="run", panel=panel)
            return render(request, "surveys/detail.html", context, status=400)
    # "Check quality" ticked: the run and its quality check start together (or neither, on a 402).
    start = quality_services.run_start_with_check if request.POST.get("check_quality") == "on" else services.run_start
    try:
        run = start(
            survey=survey,
            folder=folder,
            persona_ids=panel["personas"] if generate is None and sampled is None else None,
            generate=generate,
            panel=sampled,
        )
    except ApplicationError as exc:
        # A 402 comes with its way out (buy credits, or ask an admin).
        context = _builder_context(
            survey, error=error_html(exc), error_place="run", error_field=_error_field(exc), panel=panel
        )
        return render(request, "surveys/detail.html", context, status=exc.status_code)
    return redirect("surveys:run", run_id=run.pk)


def _run_context(run) -> dict:
    counts = run_counts(run)
    generated = panel_status(run)
    active = bool(run.job and run.job.is_active) or bool(generated and generated["state"] == "generating")
    finished = counts["done"] + counts["failed"] + counts["cancelled"]
    started = run.job.started_at if run.job else None
    elapsed = (timezone.now() - started).total_seconds() if started else None
    return {
        # From the same counts as the rest of the card (the job's own message may be a moment behind).
        "headline": progress_message(counts, elapsed),
        "percent": round(100 * finished / counts["total"]) if counts["total"] else 0,
        "run": run,
        "job": run.job,
        "generated": generated,
        "counts": counts,
        "active": active,
        "waiting": counts["pending"] + counts["queued"],
        "credits_spent": run.unit_cost * counts["done"],
        "respondents": pages.with_urls(run.pk, selectors.respondents_listed(run=run)),
    }


def _themes_context(run) -> dict:
    """The theme card: the latest theme job (running, or why it failed) and when the themes shown were found."""
    job = selectors.themes_jobs_of(run=run).first()
    stored = run.themes if isinstance(run.themes, dict) else {}
    return {
        "themes_job": job,
        "themes_active": bool(job and job.is_active),
        "themes_failed": bool(job and job.state in (JobState.FAILED, JobState.INTERRUPTED)),
        "themes_cancelled": bool(job and job.state == JobState.CANCELLED),
        "themes_found_at": parse_datetime(stored["generated_at"]) if stored.get("generated_at") else None,
        "themes_simulated": bool(stored.get("simulated")),
        "themes_possible": themes.has_open_answers(run),
        "themes_min_answers": themes.MIN_ANSWERS,
    }


@login_required
def run(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    run = get_run_for_user(request.user, run_id)
    context = _run_context(run)
    if not context["active"] and run.job_id is not None:
        results = run_results(run)
        context["page"] = pages.results_page(results)
        context["open_questions"] = len(themes.open_questions(run))
        if context["open_questions"]:
            context.update(_themes_context(run))
        context["chart_data"] = pages.chart_data(results)
        context.update(_methods_context(run))
        context.update(quality_context(run))
    return render(request, "surveys/run.html", context)


@login_required
@require_POST
def run_quality(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    """Check the quality of a finished run; the page then shows the check's progress."""
    run = get_run_for_user(request.user, run_id)
    try:
        quality_services.quality_start(run=run)
    except ApplicationError as exc:
        flash.error(request, error_html(exc))
    return redirect(f"{reverse('surveys:run', args=[run.pk])}#quality")


@login_required
def run_quality_status(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    run = get_run_for_user(request.user, run_id)
    context = {"run": run, **quality_context(run)}
    response = render(request, "surveys/_quality.html", context)
    if not context.get("quality_active") and request.GET.get("was") == "active":
        response["HX-Refresh"] = "true"  # the check ended: show its results
    return response


def _methods_context(run) -> dict:
    """The run's methods, against the original's when it is a replay, and what a replay of it would take."""
    rows = method_rows(run_methods(run_scope(run)))
    source = replay.replay_source(run)
    original = None
    if source is not None and source.replay_of is not None:
        rows = rows_against(rows, method_rows(source.replay_of.methods))
        original = selectors.run_from_scope(owner=run.owner, scope=source.replay_of.scope)
    return {
        "methods": rows,
        "replay_plan": replay.replay_check(run),
        "replay_source": (
            {"original_run_id": original.pk, "original_created": original.created_at} if original is not None else None
        ),
    }


@login_required
@require_POST
def run_replay(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    """Run it again with every AI answer from the cache (``allow_live``: the missing ones asked for)."""
    run = get_run_for_user(request.user, run_id)
    try:
        copy = replay.run_replay(run=run, allow_live=request.POST.get("allow_live") == "1")
    except ApplicationError as exc:
        flash.error(request, exc.message)
        return redirect(f"{reverse('surveys:run', args=[run.pk])}#replay")
    flash.info(request, "Replaying this run from the cache: the AI provider is not asked anything.")
    return redirect("surveys:run", run_id=copy.pk)


@login_required
@require_POST
def run_themes(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    """Find (or find again) the themes of the run's open answers; the page then shows the job's progress."""
    run = get_run_for_user(request.user, run_id)
    try:
        services.themes_start(run=run)
    except ApplicationError as exc:
        flash.error(request, exc.message)
    return redirect(f"{reverse('surveys:run', args=[run.pk])}#themes")


@login_required
def run_themes_status(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    run = get_run_for_user(request.user, run_id)
    context = {"run": run, **_themes_context(run)}
    response = render(request, "surveys/_themes.html", context)
    if not context["themes_active"] and request.GET.get("was") == "active":
        response["HX-Refresh"] = "true"  # the themes are ready (or the job failed): show them
    return response


@login_required
def run_progress(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    run = get_run_for_user(request.user, run_id)
    context = _run_context(run)
    response = render(request, "surveys/_progress.html", context)
    if not context["active"] and request.GET.get("was") == "active":
        response["HX-Refresh"] = "true"  # the run just finished: show the results
    return response


@login_required
def respondent(request: AuthenticatedHttpRequest, run_id: int, respondent_id: int) -> HttpResponse:
    respondent = get_respondent_for_user(request.user, respondent_id, run_id=run_id)
    run = respondent.run
    answers = pages.respondent_answers(run, list(selectors.answers_of(respondent=respondent)))
    previous, following = pages.neighbours(list(selectors.answered_respondents_of(run=run)), respondent)
    context = {"run": run, "respondent": respondent, "answers": answers, "previous": previous, "next": following}
    return render(request, "surveys/respondent.html", context)


@login_required
def export(request: AuthenticatedHttpRequest, run_id: int, fmt: str) -> HttpResponse:
    run = get_run_for_user(request.user, run_id)
    if fmt not in EXPORT_TYPES:
        return HttpResponse("Unknown export format: use csv or json.", status=404, content_type="text/plain")
    body = exports.export_csv(run) if fmt == "csv" else exports.export_json(run)
    response = HttpResponse(body, content_type=EXPORT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="survey-{run.survey_id}-run-{run.pk}.{fmt}"'
    return response
