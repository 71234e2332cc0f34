"""Survey pages: the list, the builder (questions added, edited, reordered, previewed), import,
runs on a panel with live progress, results with charts, the respondent drill-down, exports."""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from billing.selectors import credits_balance
from billing.ux import error_html
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError
from personas.models import Folder
from surveys import exports, selectors, services
from surveys.access import get_question_for_user, get_respondent_for_user, get_run_for_user, get_survey_for_user
from surveys.io import questionnaire_read
from surveys.models import SCALE_POINTS, QuestionKind
from surveys.questionnaire import DEFAULT_LABELS, DEFAULT_PRESET, PRESET_LABELS, anchor_sets_for, presets_for
from surveys.results import run_results
from surveys.runner import run_counts, shown_questions

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


def _builder_context(survey, question_form=None, error=None) -> dict:
    questions = list(survey.questions.all())
    for question in questions:
        if question.is_scale:
            question.anchor_summary = anchor_sets_for(
                {"kind": question.kind, "anchor_preset": question.anchor_preset, "anchor_sets": question.anchor_sets}
            )
            question.preset_label = (
                "Custom anchors"
                if question.anchor_sets
                else PRESET_LABELS.get(question.anchor_preset or DEFAULT_PRESET[question.kind])
            )
    unit = services.run_unit_cost(question_count=len(questions)) if questions else 0
    return {
        "survey": survey,
        "questions": questions,
        "kinds": QuestionKind.choices,
        "default_labels": {kind: "\n".join(labels) for kind, labels in DEFAULT_LABELS.items()},
        "presets": {kind: presets_for(kind) for kind in SCALE_POINTS},
        "question_form": _form_values(question_form or {"labels": DEFAULT_LABELS[QuestionKind.LIKERT5]}),
        "error": error,
        "runs": list(selectors.runs_for_survey(survey=survey)),
        "folders": list(selectors.folders_with_counts(user=survey.owner)),
        "personas": selectors.personas_for_panel(user=survey.owner),
        "unit_cost": unit,
        "balance": credits_balance(user=survey.owner),
        "max_panel": get_app_settings().survey_max_panel,
    }


@login_required
def index(request: HttpRequest) -> HttpResponse:
    error = None
    if request.method == "POST":
        try:
            survey = services.survey_create(owner=request.user, title=request.POST.get("title", ""))
        except ApplicationError as exc:
            error = exc.message
        else:
            return redirect("surveys:detail", survey_id=survey.pk)
    surveys = selectors.surveys_for_user(user=request.user)
    return render(request, "surveys/index.html", {"surveys": surveys, "error": error}, status=400 if error else 200)


@login_required
@require_POST
def import_file(request: HttpRequest) -> HttpResponse:
    try:
        data = questionnaire_read(request.FILES.get("file"))
        survey = services.survey_create(owner=request.user, **data)
    except ApplicationError as exc:
        surveys = selectors.surveys_for_user(user=request.user)
        return render(request, "surveys/index.html", {"surveys": surveys, "import_error": exc.message}, status=400)
    flash.success(request, f"Imported “{survey.title}” with {survey.questions.count()} questions.")
    return redirect("surveys:detail", survey_id=survey.pk)


@login_required
def detail(request: HttpRequest, survey_id: int) -> HttpResponse:
    survey = get_survey_for_user(request, survey_id)
    if request.method == "POST":
        try:
            services.survey_update(
                survey=survey,
                title=request.POST.get("title", ""),
                intro=request.POST.get("intro", ""),
                randomize_questions=request.POST.get("randomize_questions") == "on",
            )
        except ApplicationError as exc:
            return render(request, "surveys/detail.html", _builder_context(survey, error=exc.message), status=400)
        flash.success(request, "Survey saved.")
        return redirect("surveys:detail", survey_id=survey.pk)
    return render(request, "surveys/detail.html", _builder_context(survey))


@login_required
@require_POST
def question_add(request: HttpRequest, survey_id: int) -> HttpResponse:
    survey = get_survey_for_user(request, survey_id)
    data = _question_data(request.POST)
    try:
        services.question_create(survey=survey, data=data)
    except ApplicationError as exc:
        form = data
        return render(
            request, "surveys/detail.html", _builder_context(survey, question_form=form, error=exc.message), status=400
        )
    return redirect(f"{request.path.rsplit('questions/', 1)[0]}#questions")


def _question_dict(question) -> dict:
    fields = ("kind", "text", "labels", "options", "randomize_options", "anchor_preset", "anchor_sets")
    return {**{f: getattr(question, f) for f in fields}, "direct_elicitation": question.direct_elicitation}


@login_required
def question_edit(request: HttpRequest, survey_id: int, question_id: int) -> HttpResponse:
    question = get_question_for_user(request, survey_id, question_id)
    error = None
    if request.method == "POST":
        try:
            services.question_update(question=question, data=_question_data(request.POST))
        except ApplicationError as exc:
            error = exc.message
        else:
            return redirect("surveys:detail", survey_id=question.survey_id)
    context = {
        "survey": question.survey,
        "question": question,
        "kinds": QuestionKind.choices,
        "presets": {kind: presets_for(kind) for kind in SCALE_POINTS},
        "default_labels": {kind: "\n".join(labels) for kind, labels in DEFAULT_LABELS.items()},
        "form": _form_values(_question_data(request.POST) if error else _question_dict(question)),
        "error": error,
    }
    return render(request, "surveys/question_edit.html", context, status=400 if error else 200)


@login_required
@require_POST
def question_delete(request: HttpRequest, survey_id: int, question_id: int) -> HttpResponse:
    question = get_question_for_user(request, survey_id, question_id)
    services.question_delete(question=question)
    return redirect("surveys:detail", survey_id=survey_id)


@login_required
@require_POST
def question_move(request: HttpRequest, survey_id: int, question_id: int) -> HttpResponse:
    question = get_question_for_user(request, survey_id, question_id)
    services.question_move(question=question, direction=request.POST.get("direction", "up"))
    return redirect("surveys:detail", survey_id=survey_id)


@login_required
def preview(request: HttpRequest, survey_id: int) -> HttpResponse:
    survey = get_survey_for_user(request, survey_id)
    questions = list(survey.questions.all())
    return render(request, "surveys/preview.html", {"survey": survey, "questions": questions})


@login_required
@require_POST
def delete(request: HttpRequest, survey_id: int) -> HttpResponse:
    survey = get_survey_for_user(request, survey_id)
    title = survey.title
    services.survey_delete(survey=survey)
    flash.success(request, f"Deleted “{title}”.")
    return redirect("surveys:index")


@login_required
@require_POST
def run_start(request: HttpRequest, survey_id: int) -> HttpResponse:
    survey = get_survey_for_user(request, survey_id)
    folder = None
    if request.POST.get("panel") == "folder":
        folder = Folder.objects.filter(owner=request.user, pk=request.POST.get("folder") or 0).first()
        if folder is None:
            exc = ApplicationError("Pick a folder of personas to ask.", code="validation_error")
            return render(request, "surveys/detail.html", _builder_context(survey, error=exc.message), status=400)
    try:
        run = services.run_start(survey=survey, folder=folder, persona_ids=request.POST.getlist("personas"))
    except ApplicationError as exc:
        context = _builder_context(survey, error=error_html(exc))  # a 402 comes with its way out
        return render(request, "surveys/detail.html", context, status=exc.status_code)
    return redirect("surveys:run", run_id=run.pk)


def _run_context(run) -> dict:
    counts = run_counts(run)
    return {"run": run, "job": run.job, "counts": counts, "active": bool(run.job and run.job.is_active)}


@login_required
def run(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_run_for_user(request, run_id)
    context = _run_context(run)
    if not context["active"]:
        context["results"] = run_results(run)
    context["respondents"] = list(selectors.respondents_of(run=run))
    return render(request, "surveys/run.html", context)


@login_required
def run_progress(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_run_for_user(request, run_id)
    context = _run_context(run)
    response = render(request, "surveys/_progress.html", context)
    if not context["active"] and request.GET.get("was") == "active":
        response["HX-Refresh"] = "true"  # the run just finished: show the results
    return response


@login_required
def respondent(request: HttpRequest, run_id: int, respondent_id: int) -> HttpResponse:
    respondent = get_respondent_for_user(request, run_id, respondent_id)
    run = respondent.run
    questions = {q["id"]: q for q in run.questions}
    answers = list(selectors.answers_of(respondent=respondent))
    for answer in answers:
        answer.question = questions.get(answer.question_id, {})
        if answer.pmf:
            labels = answer.question.get("labels") or []
            answer.bars = [
                {"label": labels[i] if len(labels) == len(answer.pmf) else str(i), "p": p, "pct": round(p * 100)}
                for i, p in enumerate(answer.pmf)
            ]
            if answer.question.get("kind") == QuestionKind.NPS:
                for i, bar in enumerate(answer.bars):
                    bar["label"] = str(i)
    context = {"run": run, "respondent": respondent, "answers": answers, "order": shown_questions(run, respondent)}
    return render(request, "surveys/respondent.html", context)


@login_required
def export(request: HttpRequest, run_id: int, fmt: str) -> HttpResponse:
    run = get_run_for_user(request, run_id)
    if fmt not in EXPORT_TYPES:
        return HttpResponse("Unknown export format: use csv or json.", status=404, content_type="text/plain")
    body = exports.export_csv(run) if fmt == "csv" else exports.export_json(run)
    response = HttpResponse(body, content_type=EXPORT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="survey-{run.survey_id}-run-{run.pk}.{fmt}"'
    return response
