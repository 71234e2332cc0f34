"""API for a focus group's discussion guide: read it, replace it, (re)generate it with AI.

Another user's session is a 404; an archived one refuses changes with 409."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from cohorta.api.errors import error_body
from cohorta.errors import ApplicationError
from cohorta.jobs.serializers import JobSerializer
from focusgroups.access import get_focus_group_for_user
from focusgroups.guide import services as guides

TAGS = ["focus groups"]


class DiscussionGuideQuestionSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=guides.MAX_LENGTHS["text"])
    probes = serializers.ListField(
        child=serializers.CharField(max_length=guides.MAX_LENGTHS["probe"]),
        max_length=guides.MAX_PROBES,
        help_text="Follow-up questions to dig deeper.",
    )


class DiscussionGuideSectionSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=guides.MAX_LENGTHS["section"])
    goal = serializers.CharField(max_length=guides.MAX_LENGTHS["goal"], allow_blank=True)
    turn_budget = serializers.IntegerField(
        min_value=guides.MIN_TURNS,
        max_value=guides.MAX_TURNS,
        help_text="How many discussion turns to spend on this section.",
    )
    # many=True hands min_length/max_length to the ListSerializer (DRF 3.15+); the stubs' __init__ lacks them.
    questions = DiscussionGuideQuestionSerializer(  # type: ignore[call-arg]  # drf-stubs: see above
        many=True, min_length=guides.MIN_QUESTIONS, max_length=guides.MAX_QUESTIONS
    )


class DiscussionGuideInputSerializer(serializers.Serializer):
    """The whole guide. Validated against the guide schema: 2–8 sections of 1–8 questions, no blank text."""

    title = serializers.CharField(max_length=guides.MAX_LENGTHS["guide"])
    sections = DiscussionGuideSectionSerializer(  # type: ignore[call-arg]  # drf-stubs: as `questions` above
        many=True, min_length=guides.MIN_SECTIONS, max_length=guides.MAX_SECTIONS
    )


class DiscussionGuideSerializer(serializers.Serializer):
    focus_group = serializers.IntegerField(source="focus_group_id", read_only=True)
    title = serializers.CharField(source="data.title", read_only=True)
    sections = DiscussionGuideSectionSerializer(source="data.sections", many=True, read_only=True)
    simulated = serializers.BooleanField(
        read_only=True, help_text="Written by the offline simulator, not a language model."
    )
    job = serializers.UUIDField(
        source="job_id", read_only=True, allow_null=True, help_text="The job that wrote it, if AI did."
    )
    updated_at = serializers.DateTimeField(read_only=True)


_ERROR = OpenApiResponse(description='The standard error body: {"error": {"code", "message", …}}.')


@extend_schema(tags=TAGS)
class GuideView(APIView):
    """The session's discussion guide (404 until one is generated or written)."""

    @extend_schema(responses={200: DiscussionGuideSerializer, 404: _ERROR})
    def get(self, request, fg_id: int):
        focus_group = get_focus_group_for_user(request.user, fg_id)
        guide = guides.guide_get(focus_group=focus_group)
        if guide is None:
            raise NotFound(
                "This focus group has no discussion guide yet. Generate one with "
                f"POST /api/v1/focus-groups/{focus_group.pk}/guide/generate/, or PUT one here."
            )
        return Response(DiscussionGuideSerializer(guide).data)

    @extend_schema(
        request=DiscussionGuideInputSerializer,
        responses={200: DiscussionGuideSerializer, 400: _ERROR, 404: _ERROR, 409: _ERROR},
    )
    def put(self, request, fg_id: int):
        """Replace the whole guide (or write the first one by hand). Errors name each field by its path,
        e.g. `sections.1.questions.0.text`."""
        focus_group = get_focus_group_for_user(request.user, fg_id, for_write=True)
        try:
            guide = guides.guide_save(focus_group=focus_group, data=request.data, simulated=False)
        except ApplicationError as exc:
            if exc.code != "validation_error":
                raise
            return Response(
                error_body(exc.code, exc.message, fields=exc.extra.get("fields")), status=status.HTTP_400_BAD_REQUEST
            )
        return Response(DiscussionGuideSerializer(guide).data)


@extend_schema(tags=TAGS)
class GuideGenerateView(APIView):
    """Write the guide with AI from the objective, concept, participants and assets; it replaces the current
    guide only if it succeeds. Free (no credits), metered like every AI call. Follow the job at
    GET /api/v1/jobs/<id>/; a guide job already running for the session is returned instead of a second."""

    @extend_schema(request=None, responses={202: JobSerializer, 404: _ERROR, 409: _ERROR})
    def post(self, request, fg_id: int):
        focus_group = get_focus_group_for_user(request.user, fg_id, for_write=True)
        job = guides.guide_generate_start(focus_group=focus_group)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
