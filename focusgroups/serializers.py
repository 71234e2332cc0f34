"""API shapes for focus-group sessions and their participants. Data only: writes go through
``focusgroups.services`` (which own the rules: 2–12 distinct personas of yours, a title, an objective…)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cohorta.api.serializers import FieldsBuiltOnce
from focusgroups.models import (
    CONFORMITY_OPTION_MAX,
    CONFORMITY_OPTIONS_MAX,
    CONFORMITY_QUESTION_MAX,
    DEFAULT_CONFORMITY_OPTIONS,
    MAX_PARTICIPANTS,
    FocusGroup,
    Participant,
)
from personas.models import Persona

# Generous bounds on input lists so a request cannot make us look up thousands of ids;
# the real limit (2–12) is the service's, with its own clear message.
_IDS_MAX = 100


class FocusGroupPersonaSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    """A persona as a participant: enough to recognise them; the full profile is at /api/v1/personas/<id>/."""

    headline = serializers.CharField(read_only=True)

    class Meta:
        model = Persona
        fields = ["id", "name", "age", "gender", "occupation", "location", "headline", "simulated"]
        read_only_fields = fields


class FocusGroupParticipantSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    persona = FocusGroupPersonaSerializer(read_only=True)

    class Meta:
        model = Participant
        fields = ["persona", "position", "added_at"]
        read_only_fields = fields


class ConformitySetupSerializer(serializers.Serializer):
    """A session's conformity check as set up (its result is at ``…/quality/``)."""

    question = serializers.CharField(read_only=True)
    options = serializers.ListField(child=serializers.CharField(), read_only=True)
    started = serializers.BooleanField(
        read_only=True, help_text="The participants have answered privately: the check can no longer change."
    )


class ConformityInputSerializer(serializers.Serializer):
    """Turn on "Measure conformity": each participant answers ``question`` privately, choosing one of ``options``,
    before the discussion and after it. Charged when the discussion starts (App settings' quality credits per
    participant); refunded for anyone whose private answer fails."""

    question = serializers.CharField(max_length=CONFORMITY_QUESTION_MAX, default="Would you buy it?")
    options = serializers.ListField(
        child=serializers.CharField(max_length=CONFORMITY_OPTION_MAX),
        max_length=CONFORMITY_OPTIONS_MAX,
        default=lambda: list(DEFAULT_CONFORMITY_OPTIONS),
        help_text="2–6 distinct answer options (default: Yes, No, Not sure).",
    )


class FocusGroupSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    participant_count = serializers.IntegerField(read_only=True)
    message_count = serializers.IntegerField(read_only=True)
    participants = FocusGroupParticipantSerializer(many=True, read_only=True)
    conformity = serializers.SerializerMethodField(help_text="The conformity check, or null when it is off.")

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
            "conformity",
            "created_at",
            "updated_at",
            "ended_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ConformitySetupSerializer(allow_null=True))
    def get_conformity(self, focus_group: FocusGroup) -> dict | None:
        check = getattr(focus_group, "conformity", None)  # a missing reverse one-to-one is an AttributeError
        if check is None:
            return None
        return {"question": check.question, "options": check.options, "started": check.started}


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
    conformity = ConformityInputSerializer(required=False, allow_null=True, default=None)


class FocusGroupUpdateInputSerializer(serializers.Serializer):
    """The fields to change (PATCH). ``archived`` archives (read-only) or restores the session."""

    title = serializers.CharField(max_length=200, required=False)
    objective = serializers.CharField(required=False)
    concept = serializers.CharField(required=False, allow_blank=True)
    cost_cap_usd = serializers.DecimalField(
        max_digits=10, decimal_places=2, required=False, allow_null=True, help_text="`null` removes the cap."
    )
    archived = serializers.BooleanField(required=False)
    conformity = ConformityInputSerializer(
        required=False, allow_null=True, help_text="Turn measuring conformity on (or change it), or off with `null`."
    )


class FocusGroupParticipantsInputSerializer(serializers.Serializer):
    persona_ids = _persona_ids()
