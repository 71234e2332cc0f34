"""API shapes for focus-group sessions and their participants. Data only: writes go through
``focusgroups.services`` (which own the rules: 2–12 distinct personas of yours, a title, an objective…)."""

from rest_framework import serializers

from focusgroups.models import MAX_PARTICIPANTS, FocusGroup, Participant
from personas.models import Persona

# Generous bounds on input lists so a request cannot make us look up thousands of ids;
# the real limit (2–12) is the service's, with its own clear message.
_IDS_MAX = 100


class FocusGroupPersonaSerializer(serializers.ModelSerializer):
    """A persona as a participant: enough to recognise them; the full profile is at /api/v1/personas/<id>/."""

    headline = serializers.CharField(read_only=True)

    class Meta:
        model = Persona
        fields = ["id", "name", "age", "gender", "occupation", "location", "headline", "simulated"]
        read_only_fields = fields


class FocusGroupParticipantSerializer(serializers.ModelSerializer):
    persona = FocusGroupPersonaSerializer(read_only=True)

    class Meta:
        model = Participant
        fields = ["persona", "position", "added_at"]
        read_only_fields = fields


class FocusGroupSerializer(serializers.ModelSerializer):
    participant_count = serializers.IntegerField(read_only=True)
    message_count = serializers.IntegerField(read_only=True)
    participants = FocusGroupParticipantSerializer(many=True, read_only=True)

    class Meta:
        model = FocusGroup
        fields = [
            "id",
            "title",
            "objective",
            "concept",
            "status",
            "archived",
            "cost_cap_usd",
            "participant_count",
            "message_count",
            "participants",
            "created_at",
            "updated_at",
            "ended_at",
        ]
        read_only_fields = fields


class FocusGroupFilterSerializer(serializers.Serializer):
    q = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Search titles, objectives and concepts."
    )
    archived = serializers.BooleanField(
        required=False, default=False, help_text="`true` lists archived sessions instead of active ones."
    )


def _persona_ids(**kwargs) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        max_length=_IDS_MAX,
        help_text=f"Your personas' ids, 2–{MAX_PARTICIPANTS} distinct ones, in speaking order.",
        **kwargs,
    )


class FocusGroupCreateInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    objective = serializers.CharField(help_text="What the research needs to learn.")
    concept = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="The product or concept under discussion, if any."
    )
    persona_ids = _persona_ids()
    cost_cap_usd = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        required=False,
        allow_null=True,
        default=None,
        help_text="Optional cap on this session's LLM cost in USD; AI work stops when it is reached.",
    )


class FocusGroupUpdateInputSerializer(serializers.Serializer):
    """The fields to change (PATCH). ``archived`` archives (read-only) or restores the session."""

    title = serializers.CharField(max_length=200, required=False)
    objective = serializers.CharField(required=False)
    concept = serializers.CharField(required=False, allow_blank=True)
    cost_cap_usd = serializers.DecimalField(
        max_digits=10, decimal_places=2, required=False, allow_null=True, help_text="`null` removes the cap."
    )
    archived = serializers.BooleanField(required=False)


class FocusGroupParticipantsInputSerializer(serializers.Serializer):
    persona_ids = _persona_ids()
