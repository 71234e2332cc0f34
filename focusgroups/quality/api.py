"""A session's quality checks through the API: set up conformity, read the results, start the judge."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from cohorta.jobs.serializers import JobSerializer
from focusgroups.access import get_focus_group_for_user
from focusgroups.quality import conformity, judge
from focusgroups.quality.results import session_quality
from focusgroups.serializers import ConformityInputSerializer, ConformitySetupSerializer

TAGS = ["focus groups"]
_ERROR = OpenApiResponse(description='The standard error body: {"error": {"code", "message", …}}.')

QualitySerializer = inline_serializer(
    "SessionQuality",
    {
        "conformity": serializers.DictField(
            allow_null=True,
            help_text="null when conformity is not measured. Else: question, options, state (waiting, before, "
            "discussing, after, done), counts per option before and after, majority (null on a tie), tied, "
            "eligible, moved, rate (0–1, null when there is none), changed, answered_before, answered_after, "
            "answered_both, failed, rows (each participant's private answers), summary (plain sentences), "
            "definition, credits_charged, credits_refunded.",
        ),
        "judge": serializers.DictField(
            help_text="bar, price, can_start, checked, flagged, job (the latest check job), and participants: "
            "adherence and consistency (0–9, null when not scored), their reasons, flagged, failed, error."
        ),
    },
)


def _setup(focus_group) -> dict | None:
    check = conformity.conformity_get(focus_group)
    if check is None:
        return None
    return {"question": check.question, "options": check.options, "started": check.started}


@extend_schema(tags=TAGS)
class ConformityView(APIView):
    """Measure conformity in a session: each participant answers a key question privately before the discussion
    and again after it; the results are at `…/quality/`."""

    @extend_schema(responses={200: ConformitySetupSerializer, 404: _ERROR})
    def get(self, request, fg_id: int):
        """The check as set up; 404 when it is off."""
        setup = _setup(get_focus_group_for_user(request.user, fg_id))
        if setup is None:
            return Response(
                {"error": {"code": "not_found", "message": "Conformity is not measured in this session."}},
                status=status.HTTP_404_NOT_FOUND,
            )
        return Response(setup)

    @extend_schema(
        request=ConformityInputSerializer, responses={200: ConformitySetupSerializer, 404: _ERROR, 409: _ERROR}
    )
    def put(self, request, fg_id: int):
        """Turn it on, or change the question, before the discussion starts (409 afterwards). Charged when the
        discussion starts: App settings' quality credits per participant."""
        focus_group = get_focus_group_for_user(request.user, fg_id, for_write=True)
        data = ConformityInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conformity.conformity_configure(focus_group=focus_group, **data.validated_data)
        return Response(_setup(focus_group))

    @extend_schema(request=None, responses={204: None, 404: _ERROR, 409: _ERROR})
    def delete(self, request, fg_id: int):
        """Turn it off (409 once the participants have answered privately)."""
        conformity.conformity_disable(focus_group=get_focus_group_for_user(request.user, fg_id, for_write=True))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=TAGS)
class QualityView(APIView):
    @extend_schema(responses={200: QualitySerializer, 404: _ERROR})
    def get(self, request, fg_id: int):
        """The session's quality results: the conformity rate and each participant's judge scores."""
        return Response(session_quality(focus_group=get_focus_group_for_user(request.user, fg_id)))


@extend_schema(tags=TAGS)
class QualityCheckView(APIView):
    @extend_schema(request=None, responses={202: JobSerializer, 402: _ERROR, 404: _ERROR, 409: _ERROR})
    def post(self, request, fg_id: int):
        """Judge every participant who spoke in the ended session (in character, self-consistent, 0–9). Charged now,
        App settings' quality credits per participant; a failed check is refunded. Follow the job at
        GET /api/v1/jobs/<id>/; a check already running is returned instead of a second."""
        job = judge.session_check_start(focus_group=get_focus_group_for_user(request.user, fg_id))
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
