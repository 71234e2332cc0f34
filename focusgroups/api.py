"""The focus-group sessions API: thin views over ``focusgroups.selectors`` / ``focusgroups.services``.

Another user's session or persona is a 404, never a 403. An archived session is read-only (409) until
restored with ``PATCH {"archived": false}``.
"""

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from cohorta.read_cache import cached_read
from focusgroups import selectors, services
from focusgroups.access import get_focus_group_for_user
from focusgroups.quality import conformity
from focusgroups.serializers import (
    FocusGroupCreateInputSerializer,
    FocusGroupFilterSerializer,
    FocusGroupParticipantSerializer,
    FocusGroupParticipantsInputSerializer,
    FocusGroupSerializer,
    FocusGroupUpdateInputSerializer,
)

TAGS = ["focus groups"]
_NOT_FOUND = OpenApiResponse(description="Not your session (or persona), or no such one.")
_UNCHANGED = object()
_ARCHIVED = OpenApiResponse(description="The session is archived (read-only), or the change is refused.")


def _detail(focus_group) -> dict:
    return FocusGroupSerializer(selectors.focus_group_with_details(focus_group=focus_group)).data


class FocusGroupListCreateView(generics.ListAPIView):
    """Your focus-group sessions, newest first."""

    serializer_class = FocusGroupSerializer

    def get_queryset(self):
        filters = FocusGroupFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.focus_groups_for_user(user=self.request.user, **filters.validated_data)

    @extend_schema(tags=TAGS, parameters=[FocusGroupFilterSerializer], responses=FocusGroupSerializer(many=True))
    @cached_read
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS,
        request=FocusGroupCreateInputSerializer,
        responses={201: FocusGroupSerializer, 404: _NOT_FOUND},
    )
    def post(self, request):
        """Create a session (status `draft`) with 2–12 of your personas as participants, in the order given."""
        data = FocusGroupCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        check = fields.pop("conformity", None)
        with transaction.atomic():
            focus_group = services.focus_group_create(owner=request.user, **fields)
            if check is not None:
                conformity.conformity_configure(focus_group=focus_group, **check)
        return Response(_detail(focus_group), status=status.HTTP_201_CREATED)


class FocusGroupDetailView(APIView):
    @extend_schema(tags=TAGS, responses={200: FocusGroupSerializer, 404: _NOT_FOUND})
    @cached_read
    def get(self, request, fg_id: int):
        """A session with its participants (persona summaries), status and counts."""
        return Response(_detail(get_focus_group_for_user(request.user, fg_id)))

    @extend_schema(
        tags=TAGS,
        request=FocusGroupUpdateInputSerializer,
        responses={200: FocusGroupSerializer, 404: _NOT_FOUND, 409: _ARCHIVED},
    )
    def patch(self, request, fg_id: int):
        """Change the title, objective, concept or spending cap; `archived` archives or restores.

        Restoring and editing in one request works (`{"archived": false, "title": "…"}`); editing an
        archived session without restoring it is a 409.
        """
        focus_group = get_focus_group_for_user(request.user, fg_id)
        data = FocusGroupUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        archived = fields.pop("archived", None)
        check = fields.pop("conformity", _UNCHANGED)
        with transaction.atomic():
            if archived is False:
                services.focus_group_archive(focus_group=focus_group, archived=False)
            if fields:
                services.focus_group_update(focus_group=focus_group, **fields)
            if check is not _UNCHANGED:
                conformity.conformity_set(focus_group=focus_group, enabled=check is not None, **(check or {}))
            if archived is True:
                services.focus_group_archive(focus_group=focus_group, archived=True)
        return Response(_detail(focus_group))

    @extend_schema(tags=TAGS, responses={204: None, 404: _NOT_FOUND})
    def delete(self, request, fg_id: int):
        """Delete the session and everything in it (messages, guide, assets). The personas are kept."""
        services.focus_group_delete(focus_group=get_focus_group_for_user(request.user, fg_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    tags=TAGS,
    request=None,
    responses={
        200: FocusGroupSerializer,
        404: _NOT_FOUND,
        409: OpenApiResponse(description="The session has not ended (code `not_ended`), or it is archived."),
    },
)
class ReopenView(APIView):
    def post(self, request, fg_id: int):
        """Reopen an ended session for follow-up questions: it is `live` again and you moderate it by hand
        (post to `messages/`). The autonomous run is not restarted and nothing is charged; the transcript keeps
        every message, with a note where the follow-up begins."""
        focus_group = services.focus_group_reopen(focus_group=get_focus_group_for_user(request.user, fg_id))
        return Response(_detail(focus_group))


class ParticipantsView(APIView):
    @extend_schema(tags=TAGS, responses={200: FocusGroupParticipantSerializer(many=True), 404: _NOT_FOUND})
    def get(self, request, fg_id: int):
        """The participants in speaking order, each with a persona summary."""
        focus_group = get_focus_group_for_user(request.user, fg_id)
        participants = selectors.participants_with_personas(focus_group=focus_group)
        return Response(FocusGroupParticipantSerializer(participants, many=True).data)

    @extend_schema(
        tags=TAGS,
        request=FocusGroupParticipantsInputSerializer,
        responses={200: FocusGroupParticipantSerializer(many=True), 404: _NOT_FOUND, 409: _ARCHIVED},
    )
    def put(self, request, fg_id: int):
        """Replace the participants with these 2–12 personas, in this order.

        Adding is always allowed; removing someone who has already spoken in the session is a 409.
        """
        focus_group = get_focus_group_for_user(request.user, fg_id, for_write=True)
        data = FocusGroupParticipantsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.participants_set(focus_group=focus_group, persona_ids=data.validated_data["persona_ids"])
        participants = selectors.participants_with_personas(focus_group=focus_group)
        return Response(FocusGroupParticipantSerializer(participants, many=True).data)
