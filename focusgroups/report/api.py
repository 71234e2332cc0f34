"""API for a session's analysis (key themes and report) and its downloads.

Another user's session is a 404; an archived one can be read and downloaded but not re-analysed (409)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from cohorta.jobs.serializers import JobSerializer
from focusgroups.access import get_focus_group_for_user
from focusgroups.report import analysis as analyses
from focusgroups.report import exports, live_themes

TAGS = ["focus groups"]


class ThemeQuoteSerializer(serializers.Serializer):
    sequence = serializers.IntegerField(help_text="The quoted message's sequence number in this session.")
    text = serializers.CharField(help_text="The words quoted, as they are in the message.")
    speaker = serializers.CharField()
    persona_id = serializers.IntegerField(allow_null=True)
    repaired = serializers.BooleanField(
        help_text="The AI paraphrased; the text was replaced by the message's closest passage."
    )
    sentiment = serializers.ChoiceField(
        choices=analyses.QUOTE_SENTIMENTS,
        help_text="How the speaker feels about the theme in these words (the theme's own, for an analysis "
        "made before quotes had one).",
    )


class ThemeSerializer(serializers.Serializer):
    title = serializers.CharField()
    description = serializers.CharField()
    sentiment = serializers.ChoiceField(choices=analyses.SENTIMENTS)
    personas = serializers.ListField(child=serializers.CharField(), help_text="Participants who voiced it.")
    persona_ids = serializers.ListField(child=serializers.IntegerField(allow_null=True))
    quotes = ThemeQuoteSerializer(many=True)


class FindingSerializer(serializers.Serializer):
    section = serializers.CharField(help_text="A guide section (or a theme, when the session has no guide).")
    summary = serializers.CharField(allow_blank=True)
    key_points = serializers.ListField(child=serializers.CharField())


class StanceSerializer(serializers.Serializer):
    persona = serializers.CharField(help_text="The participant's current name.")
    persona_id = serializers.IntegerField(allow_null=True)
    stance = serializers.ChoiceField(
        choices=[*analyses.STANCES, analyses.NO_STANCE],
        help_text=f"'{analyses.NO_STANCE}' when the AI recorded no clear stance for this participant.",
    )
    summary = serializers.CharField(allow_blank=True)


class ReportSerializer(serializers.Serializer):
    executive_summary = serializers.CharField(allow_blank=True)
    findings_by = serializers.ChoiceField(choices=["section", "theme"])
    findings = FindingSerializer(many=True)
    stances = StanceSerializer(many=True, help_text="One row per participant of the session, in panel order.")
    recommendations = serializers.ListField(child=serializers.CharField())
    limitations = serializers.ListField(
        child=serializers.CharField(), help_text="Always ends with the synthetic-respondents statement."
    )


class TranscriptCoverageSerializer(serializers.Serializer):
    first_sequence = serializers.IntegerField()
    last_sequence = serializers.IntegerField()
    messages = serializers.IntegerField()
    omitted = serializers.IntegerField(help_text="Earlier messages left out of a long transcript.")
    truncated = serializers.BooleanField()


class AnalysisSerializer(serializers.Serializer):
    job_id = serializers.UUIDField(help_text="The job that wrote it.")
    finished_at = serializers.DateTimeField()
    through_sequence = serializers.IntegerField(help_text="The last message of the session when it was analysed.")
    transcript = TranscriptCoverageSerializer()
    themes = ThemeSerializer(many=True)
    dropped_quotes = serializers.IntegerField(help_text="Quotes the AI gave that were not in the transcript.")
    dropped_themes = serializers.IntegerField(help_text="Themes left without a valid quote.")
    report = ReportSerializer()
    simulated = serializers.BooleanField(help_text="Written by the offline simulator, not a language model.")
    model = serializers.CharField()


_ERROR = OpenApiResponse(description='The standard error body: {"error": {"code", "message", …}}.')


@extend_schema(tags=TAGS)
class AnalysisView(APIView):
    """The session's key themes and report: the latest successful analysis."""

    @extend_schema(responses={200: AnalysisSerializer, 404: _ERROR})
    def get(self, request, fg_id: int):
        focus_group = get_focus_group_for_user(request.user, fg_id)
        found = analyses.analysis_get(focus_group=focus_group)
        if found is None:
            raise NotFound(
                "This focus group has not been analysed yet. Start the analysis with "
                f"POST /api/v1/focus-groups/{focus_group.pk}/analysis/."
            )
        return Response(AnalysisSerializer(found).data)

    @extend_schema(request=None, responses={202: JobSerializer, 404: _ERROR, 409: _ERROR})
    def post(self, request, fg_id: int):
        """(Re)analyse the session: key themes, then the report, in one job (progress 1/2, 2/2). Free (no
        credits), metered like every AI call. 409 when participants have given fewer than two answers. Follow
        the job at GET /api/v1/jobs/<id>/; an analysis already running for the session is returned."""
        focus_group = get_focus_group_for_user(request.user, fg_id, for_write=True)
        job = analyses.analysis_start(focus_group=focus_group)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class LiveThemeSerializer(serializers.Serializer):
    title = serializers.CharField()
    note = serializers.CharField(allow_blank=True)
    sentiment = serializers.ChoiceField(choices=analyses.SENTIMENTS)
    sequences = serializers.ListField(
        child=serializers.IntegerField(), help_text="Participant messages (sequence numbers) where it comes up."
    )


class LiveThemesSerializer(serializers.Serializer):
    every = serializers.IntegerField(help_text="A read every this many participant answers (0: switched off).")
    answers = serializers.IntegerField(help_text="Participant answers in the session so far.")
    final = serializers.BooleanField(help_text="The final analysis covers these: read its themes instead.")
    analysing = serializers.BooleanField(help_text="The final analysis is being written.")
    read_at_answers = serializers.IntegerField(allow_null=True, help_text="Answers the latest read was made at.")
    through_sequence = serializers.IntegerField(allow_null=True, help_text="The last message the latest read saw.")
    updated_at = serializers.DateTimeField(allow_null=True)
    simulated = serializers.BooleanField()
    themes = LiveThemeSerializer(many=True, help_text="Provisional: empty until the first read.")


@extend_schema(tags=TAGS)
class LiveThemesView(APIView):
    """The emerging themes of a session while it runs: a quick, provisional read by a small model every N
    participant answers (App settings). Free in credits; its AI usage is metered."""

    @extend_schema(responses={200: LiveThemesSerializer, 404: _ERROR})
    def get(self, request, fg_id: int):
        focus_group = get_focus_group_for_user(request.user, fg_id)
        panel = live_themes.live_themes_panel(focus_group=focus_group) or {
            "every": 0,
            "answers": live_themes.answers_count(focus_group.pk),
            "final": False,
            "analysing": False,
            "read": None,
        }
        read = panel["read"] or {}
        data = {
            "every": panel["every"],
            "answers": panel["answers"],
            "final": panel["final"],
            "analysing": panel["analysing"],
            "read_at_answers": read.get("answers"),
            "through_sequence": read.get("through_sequence"),
            "updated_at": read.get("updated_at"),
            "simulated": read.get("simulated", False),
            "themes": read.get("themes", []),
        }
        return Response(LiveThemesSerializer(data).data)


class _AnyAccept(DefaultContentNegotiation):
    """The download's type is set by its kind, whatever the client accepts."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


@extend_schema(tags=TAGS)
class ExportView(APIView):
    content_negotiation_class = _AnyAccept

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "kind",
                str,
                OpenApiParameter.PATH,
                enum=list(exports.EXPORTS),
                description="transcript-csv, transcript-md, report-md, report-docx or json.",
            )
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The transcript, one message a row."),
            (200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR, description="Transcript or report."),
            (200, exports.DOCX): OpenApiResponse(OpenApiTypes.BINARY, description="The report as a Word file."),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Everything: session, participants with profiles, guide, asset metadata, messages, "
                "themes, report and the session's AI usage.",
            ),
            (404, "application/json"): _ERROR,
        },
    )
    def get(self, request, fg_id: int, kind: str):
        """Download the session as a file (`Content-Disposition: attachment`). Report kinds are 404 until the
        session is analysed."""
        focus_group = get_focus_group_for_user(request.user, fg_id)
        return exports.export_response(focus_group=focus_group, kind=kind)
