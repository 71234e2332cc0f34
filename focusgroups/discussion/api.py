from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from cohorta.read_cache import cached_read
from focusgroups.access import get_focus_group_for_user, get_message_for_user
from focusgroups.discussion import services as discussion
from focusgroups.events import message_payload

TAGS = ["focus groups"]


class MessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sequence = serializers.IntegerField()
    role = serializers.CharField()
    persona_id = serializers.IntegerField(allow_null=True)
    speaker_name = serializers.CharField()
    content = serializers.CharField()
    status = serializers.CharField()
    error = serializers.CharField()
    mentions = serializers.ListField(child=serializers.IntegerField())
    reply_to = serializers.IntegerField(allow_null=True)
    answer_id = serializers.CharField(allow_null=True)
    retry_of = serializers.IntegerField(allow_null=True)
    simulated = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class MessageInputSerializer(serializers.Serializer):
    # Bounded here and in the service: a 20,000-character message is a 400, never a prompt.
    content = serializers.CharField(max_length=discussion.MAX_MESSAGE_CHARS, trim_whitespace=True)


PostedSerializer = inline_serializer(
    "PostedMessage",
    {
        "message": MessageSerializer(),
        "answer_ids": serializers.ListField(child=serializers.UUIDField()),
    },
)


def _messages_after(focus_group, after: int) -> list[dict]:
    return [message_payload(m) for m in focus_group.messages.filter(sequence__gt=after).order_by("sequence")]


@extend_schema(tags=TAGS)
class MessagesView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("after", int, description="Only messages after this sequence")],
        responses=MessageSerializer(many=True),
    )
    @cached_read
    def get(self, request, fg_id: int):
        """Saved messages in order (``?after=N`` to catch up)."""
        focus_group = get_focus_group_for_user(request.user, fg_id)
        try:
            after = max(0, int(request.query_params.get("after", 0)))
        except ValueError:
            raise serializers.ValidationError({"after": ["A whole number."]}) from None
        return Response(_messages_after(focus_group, after))

    @extend_schema(request=MessageInputSerializer, responses={202: PostedSerializer})
    def post(self, request, fg_id: int):
        """Post a question; all participants (or the @mentioned ones) answer in parallel.
        Answers stream on the session websocket and are saved as messages when complete."""
        focus_group = get_focus_group_for_user(request.user, fg_id)
        data = MessageInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message, answers = discussion.message_post(focus_group=focus_group, text=data.validated_data["content"])
        return Response(
            {"message": message_payload(message), "answer_ids": [str(a.pk) for a in answers]},
            status=status.HTTP_202_ACCEPTED,
        )


@extend_schema(
    tags=TAGS, request=None, responses={202: inline_serializer("RetriedAnswer", {"answer_id": serializers.UUIDField()})}
)
class RetryView(APIView):
    """Retry a persona's failed answer."""

    def post(self, request, fg_id: int, message_id: int):
        focus_group = get_focus_group_for_user(request.user, fg_id)
        message = get_message_for_user(request.user, message_id, focus_group_id=focus_group.pk)
        answer = discussion.answer_retry(focus_group=focus_group, message=message)
        return Response({"answer_id": str(answer.pk)}, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    tags=TAGS,
    responses=inline_serializer(
        "Transcript",
        {
            "focus_group": serializers.IntegerField(),
            "title": serializers.CharField(),
            "status": serializers.CharField(),
            "messages": MessageSerializer(many=True),
        },
    ),
)
class TranscriptView(APIView):
    """The whole transcript, in order."""

    def get(self, request, fg_id: int):
        focus_group = get_focus_group_for_user(request.user, fg_id)
        return Response(
            {
                "focus_group": focus_group.pk,
                "title": focus_group.title,
                "status": focus_group.status,
                "messages": _messages_after(focus_group, 0),
            }
        )
