"""Autonomous mode through the API: the latest run, and start, stop or resume."""

from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from focusgroups.access import get_focus_group_for_user
from focusgroups.autonomous import runs as autonomous
from focusgroups.quality import conformity
from focusgroups.serializers import ConformityInputSerializer

TAGS = ["focus groups"]


RunSerializer = inline_serializer(
    "AutonomousRun",
    {
        "id": serializers.IntegerField(),
        "status": serializers.CharField(),
        "end_reason": serializers.CharField(),
        "end_reason_label": serializers.CharField(),
        "notice": serializers.CharField(help_text="Why the run stopped or waits, and any refund; empty otherwise."),
        "failed_turns": serializers.IntegerField(help_text="Turns that failed in a row (the provider not answering)."),
        "retry_in_seconds": serializers.IntegerField(help_text="When the next attempt after a failed turn is due."),
        "refunded_credits": serializers.IntegerField(),
        "turns_done": serializers.IntegerField(),
        "turn_budget": serializers.IntegerField(),
        "section": serializers.IntegerField(),
        "sections": serializers.IntegerField(),
        "section_title": serializers.CharField(),
        "next_speaker": serializers.CharField(),
        "next_reason": serializers.CharField(),
        "balance": serializers.ListField(child=serializers.DictField()),
    },
)


class AutonomousActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["start", "stop", "resume"])
    conformity = ConformityInputSerializer(
        required=False,
        help_text="With `start`: measure conformity in this run (the same as setting it up first). Charged with the "
        "run: App settings' quality credits per participant.",
    )


@extend_schema(tags=TAGS)
class AutonomousView(APIView):
    @extend_schema(responses=RunSerializer)
    def get(self, request, fg_id: int):
        """The latest autonomous run: status, progress through the guide, next speaker, speaking balance."""
        focus_group = get_focus_group_for_user(request.user, fg_id)
        run = focus_group.runs.first()
        if run is None:
            raise Http404
        return Response(autonomous.run_payload(run))

    @extend_schema(request=AutonomousActionSerializer, responses={202: RunSerializer})
    def post(self, request, fg_id: int):
        """Start (costs the run's credits once; starting again returns the same run), stop after the current
        turn, or resume from the last saved turn."""
        focus_group = get_focus_group_for_user(request.user, fg_id)
        data = AutonomousActionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        action, check = data.validated_data["action"], data.validated_data.get("conformity")
        with transaction.atomic():  # set up and charged with the run, or neither
            if check is not None and action == "start":
                conformity.conformity_configure(focus_group=focus_group, **check)
            run = autonomous.run_action(focus_group=focus_group, action=action)
        run.refresh_from_db()
        return Response(autonomous.run_payload(run), status=status.HTTP_202_ACCEPTED)
