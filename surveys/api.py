"""The surveys API: thin views over surveys.services / surveys.results. Another user's survey or
run is a 404, never a 403. Starting a run answers 202 with the run and its job; 402 when credits
are short (nothing is started). Finding a run's themes answers 202 with the job (free of credits)."""

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from cohorta.errors import ApplicationError
from cohorta.jobs.serializers import JobSerializer
from panels.access import get_panel_for_user
from personas.access import get_folder_for_user
from surveys import exports, selectors, services
from surveys.access import get_run_for_user, get_survey_for_user
from surveys.io import questionnaire_read
from surveys.panel import panel_status, panel_statuses
from surveys.quality import services as quality_services
from surveys.quality.pages import check_data, latest_check
from surveys.results import run_results
from surveys.runner import run_counts
from surveys.serializers import (
    QualityStartSerializer,
    RunSerializer,
    RunStartSerializer,
    SurveyCreateSerializer,
    SurveyInputSerializer,
    SurveySerializer,
)

TAGS = ["surveys"]
_FILE_UPLOAD = {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
_NOT_FOUND = OpenApiResponse(description="Not your survey (or run), or no such one.")


def _run_data(run) -> dict:
    return RunSerializer(run, context={"counts": run_counts(run), "generated_panel": panel_status(run)}).data


class SurveyListCreateView(APIView):
    @extend_schema(tags=TAGS, responses=SurveySerializer(many=True))
    def get(self, request):
        """Your surveys, newest first, with their questions."""
        surveys = selectors.surveys_for_user(user=request.user).prefetch_related("questions")
        return Response(SurveySerializer(surveys, many=True).data)

    @extend_schema(tags=TAGS, request=SurveyCreateSerializer, responses={201: SurveySerializer})
    def post(self, request):
        """Create a survey; `questions` (optional) is a list of `{kind, text, labels, options, …}`."""
        data = SurveyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        survey = services.survey_create(owner=request.user, **data.validated_data)
        return Response(SurveySerializer(survey).data, status=status.HTTP_201_CREATED)


class SurveyImportView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(tags=TAGS, request={"multipart/form-data": _FILE_UPLOAD}, responses={201: SurveySerializer})
    def post(self, request):
        """Create a survey from a questionnaire file (JSON or CSV); 400 `invalid_file` says what is wrong."""
        survey = services.survey_create(owner=request.user, **questionnaire_read(request.FILES.get("file")))
        return Response(SurveySerializer(survey).data, status=status.HTTP_201_CREATED)


class SurveyDetailView(APIView):
    @extend_schema(tags=TAGS, responses={200: SurveySerializer, 404: _NOT_FOUND})
    def get(self, request, survey_id: int):
        return Response(SurveySerializer(get_survey_for_user(request.user, survey_id)).data)

    @extend_schema(tags=TAGS, request=SurveyInputSerializer, responses={200: SurveySerializer, 404: _NOT_FOUND})
    def patch(self, request, survey_id: int):
        """Change the title, intro or randomisation; `questions`, when given, replaces them all."""
        survey = get_survey_for_user(request.user, survey_id)
        data = SurveyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        survey = services.survey_update(survey=survey, **data.validated_data)
        return Response(SurveySerializer(survey).data)

    @extend_schema(tags=TAGS, responses={204: None, 404: _NOT_FOUND})
    def delete(self, request, survey_id: int):
        services.survey_delete(survey=get_survey_for_user(request.user, survey_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SurveyRunsView(APIView):
    @extend_schema(tags=TAGS, responses={200: RunSerializer(many=True), 404: _NOT_FOUND})
    def get(self, request, survey_id: int):
        survey = get_survey_for_user(request.user, survey_id)
        # Counts and generated-panel states for all the runs at once: the same queries for 2 runs as for 200.
        runs = list(selectors.runs_for_survey(survey=survey))
        counts = selectors.respondent_counts_by_run(run_ids=[run.pk for run in runs])
        statuses = panel_statuses(runs)
        return Response(
            [
                RunSerializer(run, context={"counts": counts[run.pk], "generated_panel": statuses[run.pk]}).data
                for run in runs
            ]
        )

    @extend_schema(
        tags=TAGS,
        request=RunStartSerializer,
        responses={
            202: RunSerializer,
            400: OpenApiResponse(
                description="Empty questionnaire or panel, too large a panel, or a generated panel's description "
                "or size out of range (`fields` names `panel_description` or `panel_size`)."
            ),
            402: OpenApiResponse(description="Not enough credits."),
            404: _NOT_FOUND,
        },
    )
    def post(self, request, survey_id: int):
        """Run the survey on a folder (`folder_id`), a list of personas (`persona_ids`), a sampled panel
        (`panel_id`) or a panel generated
        for it (`panel: {"generate": {"description", "size"}}`): 202 + the run. A run on a generated panel
        answers with `state: "generating_panel"` and `generated_panel` progress; it starts by itself when the
        personas are ready, or ends `not_started` with `generated_panel.reason`."""
        survey = get_survey_for_user(request.user, survey_id)
        data = RunStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        generate = (data.validated_data.get("panel") or {}).get("generate")
        folder = panel = None
        if generate is None and data.validated_data.get("panel_id") is not None:
            panel = get_panel_for_user(request.user, data.validated_data["panel_id"])
        elif generate is None and data.validated_data.get("folder_id") is not None:
            folder = get_folder_for_user(request.user, data.validated_data["folder_id"])
        panel_args = {
            "survey": survey,
            "folder": folder,
            "persona_ids": data.validated_data["persona_ids"],
            "generate": dict(generate) if generate is not None else None,
            "panel": panel,
        }
        if data.validated_data["check_quality"]:
            run = quality_services.run_start_with_check(
                reference_variances=data.validated_data["reference_variances"], **panel_args
            )
        else:
            run = services.run_start(**panel_args)
        return Response(_run_data(run), status=status.HTTP_202_ACCEPTED)


class RunDetailView(APIView):
    @extend_schema(tags=TAGS, responses={200: RunSerializer, 404: _NOT_FOUND})
    def get(self, request, run_id: int):
        """A run's state and progress (respondents per state)."""
        return Response(_run_data(get_run_for_user(request.user, run_id)))


class RunResultsView(APIView):
    @extend_schema(tags=TAGS, responses={200: OpenApiResponse(description="Statistics per question."), 404: _NOT_FOUND})
    def get(self, request, run_id: int):
        """Per question: distribution, mean and top-2-box with 95% bootstrap intervals, segments."""
        return Response(run_results(get_run_for_user(request.user, run_id)))


class RunExportView(APIView):
    @extend_schema(tags=TAGS, responses={200: OpenApiResponse(description="CSV or JSON file."), 404: _NOT_FOUND})
    def get(self, request, run_id: int, fmt: str):
        """`csv`: a row per respondent × question; `json`: everything, with the statistics."""
        run = get_run_for_user(request.user, run_id)
        if fmt not in ("csv", "json"):
            raise ApplicationError("Unknown export format: use csv or json.", code="not_found", status_code=404)
        body = exports.export_csv(run) if fmt == "csv" else exports.export_json(run)
        response = HttpResponse(body, content_type="text/csv; charset=utf-8" if fmt == "csv" else "application/json")
        response["Content-Disposition"] = f'attachment; filename="survey-{run.survey_id}-run-{run.pk}.{fmt}"'
        return response


class RunThemesView(APIView):
    @extend_schema(
        tags=TAGS, responses={200: OpenApiResponse(description="The latest theme job and the themes."), 404: _NOT_FOUND}
    )
    def get(self, request, run_id: int):
        """The themes of the run's open answers (`themes`: empty until found) and the latest theme job."""
        run = get_run_for_user(request.user, run_id)
        job = selectors.themes_jobs_of(run=run).first()
        return Response({"job": JobSerializer(job).data if job else None, "themes": run.themes or None})

    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            202: OpenApiResponse(description="The theme job (an unfinished one is returned, not doubled)."),
            404: _NOT_FOUND,
            409: OpenApiResponse(description="The run is still going, or no open question has enough answers."),
        },
    )
    def post(self, request, run_id: int):
        """Find (again) the themes of the run's open answers: 202 + the job. Free: no credits; metered."""
        job = services.themes_start(run=get_run_for_user(request.user, run_id))
        return Response({"job": JobSerializer(job).data}, status=status.HTTP_202_ACCEPTED)


class RunQualityView(APIView):
    @extend_schema(
        tags=TAGS,
        responses={
            200: OpenApiResponse(description="The run's latest quality check (`check`: null if none)."),
            404: _NOT_FOUND,
        },
    )
    def get(self, request, run_id: int):
        """The run's latest quality check: its state, credits and, once it has ended, `results`: `retest` (κ per
        item with its Landis–Koch reading), `leading` (the twins and the shift per scale item), `judge` (scores
        per respondent, the mean, who is flagged), `diversity` (variance and SD per scale item, mean pairwise
        distance per open item), and `skipped` (parts left out, and why)."""
        return Response({"check": check_data(latest_check(get_run_for_user(request.user, run_id)))})

    @extend_schema(
        tags=TAGS,
        request=QualityStartSerializer,
        responses={
            202: OpenApiResponse(description="The check, started."),
            402: OpenApiResponse(description="Not enough credits."),
            404: _NOT_FOUND,
            409: OpenApiResponse(description="The run is still going, nobody answered, or a check is under way."),
        },
    )
    def post(self, request, run_id: int):
        """Check a finished run's quality: 202 + the check. The retest is priced like another run of the survey;
        the leading pass and the judge at the App settings' credits per persona each; reserved now, and what
        cannot be done is refunded."""
        run = get_run_for_user(request.user, run_id)
        data = QualityStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        check = quality_services.quality_start(run=run, reference_variances=data.validated_data["reference_variances"])
        check.refresh_from_db()
        return Response({"check": check_data(check)}, status=status.HTTP_202_ACCEPTED)
