from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from panels.models import ProfileDepth
from validation import exports, services
from validation.models import Reference, Validation, ValidationState
from validation.reference import KINDS

# Fields named ``label`` shadow an attribute of DRF's Field in drf-stubs, hence their ignores.

# --- references ----------------------------------------------------------------------------------------


class ReferenceUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="A CSV of real respondents: a header row naming each column, then one row per respondent "
        "(comma, semicolon or tab separated; at most 20 MB and 50,000 rows)."
    )
    name = serializers.CharField(required=False, allow_blank=True, default="", help_text="Empty: the file's name.")


class MappingQuestionSerializer(serializers.Serializer):
    column = serializers.CharField()
    kind = serializers.ChoiceField(choices=list(KINDS), help_text="`scale` (ordered), `choice` or `open` text.")
    label = serializers.CharField(required=False, allow_blank=True)  # type: ignore[assignment]  # drf-stubs
    text = serializers.CharField(required=False, allow_blank=True, help_text="The question as it was asked.")
    scale = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True, help_text="A scale's points, lowest first."
    )
    options = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        allow_null=True,
        help_text="A choice's options (empty: every answer given).",
    )
    missing = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Extra codes that mean no answer (NA, DK… already do)."
    )
    n_answered = serializers.IntegerField(read_only=True)
    n_missing = serializers.IntegerField(read_only=True)


class MappingDemographicSerializer(serializers.Serializer):
    column = serializers.CharField()
    dimension = serializers.CharField(help_text="age, gender, education, income, race, region… or your own.")
    label = serializers.CharField(required=False, allow_blank=True)  # type: ignore[assignment]  # drf-stubs


class MappingSerializer(serializers.Serializer):
    """Checked by the service against every row: a 400's message names the column and what to fix."""

    questions = MappingQuestionSerializer(many=True)
    demographics = MappingDemographicSerializer(many=True, required=False)
    weight = serializers.CharField(required=False, allow_null=True, allow_blank=True, help_text="The weight column.")
    ignored = serializers.ListField(child=serializers.CharField(), required=False)


class ReferenceListItemSerializer(serializers.ModelSerializer):
    is_mapped = serializers.BooleanField(read_only=True)
    question_count = serializers.SerializerMethodField()

    class Meta:
        model = Reference
        fields = ["id", "name", "filename", "size", "row_count", "is_mapped", "question_count", "created_at"]

    def get_question_count(self, reference) -> int:
        return len((reference.mapping or {}).get("questions") or [])


class ReferenceSerializer(ReferenceListItemSerializer):
    columns = serializers.SerializerMethodField(help_text="The file's columns, in order.")
    suggested = serializers.SerializerMethodField(help_text="What the reader guessed: a mapping to start from.")
    mapping = serializers.SerializerMethodField(help_text="The checked mapping; empty until one is saved.")

    class Meta(ReferenceListItemSerializer.Meta):
        fields = [*ReferenceListItemSerializer.Meta.fields, "columns", "suggested", "mapping"]

    def get_columns(self, reference) -> list[str]:
        return [str(c) for c in (reference.table or {}).get("columns") or []]

    @extend_schema_field(MappingSerializer)
    def get_suggested(self, reference) -> dict:
        return reference.suggested or {}

    @extend_schema_field(MappingSerializer)
    def get_mapping(self, reference) -> dict:
        return reference.mapping or {}


# --- validations ---------------------------------------------------------------------------------------


class ValidationStartSerializer(serializers.Serializer):
    reference_id = serializers.IntegerField(help_text="A mapped reference survey of yours.")
    size = serializers.IntegerField(
        help_text="Synthetic respondents: at most the reference's respondents and the largest panel (1,000)."
    )
    depth = serializers.ChoiceField(choices=ProfileDepth.choices, default=ProfileDepth.LIGHT)
    seed = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        max_value=2**53,
        help_text="The same reference, size and seed sample the same respondents.",
    )


class StepSerializer(serializers.Serializer):
    key = serializers.ChoiceField(choices=[s.value for s in exports.STEPS])
    label = serializers.CharField()  # type: ignore[assignment]  # drf-stubs: a Field attribute
    status = serializers.ChoiceField(choices=["done", "current", "waiting", "failed"])
    done = serializers.IntegerField(help_text="Personas written, or respondents answered, so far.")
    total = serializers.IntegerField()


class VerdictCheckSerializer(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # drf-stubs: a Field attribute
    value = serializers.CharField()
    passed = serializers.BooleanField()


class VerdictSerializer(serializers.Serializer):
    passed = serializers.BooleanField()
    summary = serializers.CharField()
    checks = VerdictCheckSerializer(many=True)
    rule = serializers.DictField(help_text="The thresholds the verdict applies.")


class ValidationListItemSerializer(serializers.ModelSerializer):
    # Plain text, not an enum: a schema enum for it would collide with the jobs' `state`.
    state = serializers.CharField(read_only=True, help_text=f"One of: {', '.join(ValidationState.values)}.")
    state_label = serializers.CharField(source="get_state_display", read_only=True)
    passed = serializers.SerializerMethodField(help_text="The verdict (null until scored).")

    class Meta:
        model = Validation
        fields = [
            "id",
            "reference_id",
            "reference_name",
            "size",
            "seed",
            "state",
            "state_label",
            "error",
            "panel_id",
            "survey_id",
            "run_id",
            "passed",
            "created_at",
            "finished_at",
        ]

    def get_passed(self, validation) -> bool | None:
        return exports.verdict_passed(validation)


class ValidationSerializer(ValidationListItemSerializer):
    """A validation: where it is (each step with its progress), links to its panel and run, its cost, and the
    verdict and whole scorecard once scored."""

    depth = serializers.SerializerMethodField()
    cost = serializers.SerializerMethodField(help_text="Credits: each persona plus its answers, × size.")
    steps = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()
    verdict = serializers.SerializerMethodField()
    scorecard = serializers.SerializerMethodField(help_text="The whole scorecard once done, else null.")

    class Meta(ValidationListItemSerializer.Meta):
        fields = [*ValidationListItemSerializer.Meta.fields, "depth", "cost", "steps", "links", "verdict", "scorecard"]

    def get_depth(self, validation) -> str | None:
        return validation.panel.depth if validation.panel is not None else None

    def get_cost(self, validation) -> int:
        depth = validation.panel.depth if validation.panel is not None else ProfileDepth.LIGHT
        asked = len(services.survey_questions(validation.mapping or {}))
        return services.validation_cost(size=validation.size, question_count=asked, depth=depth)

    @extend_schema_field(StepSerializer(many=True))
    def get_steps(self, validation) -> list[dict]:
        steps = []
        for step in exports.validation_status(validation)["steps"]:
            progress = step["progress"] or {}
            steps.append(
                {
                    "key": step["key"],
                    "label": step["label"],
                    "status": step["status"],
                    "done": progress.get("done", 0),
                    "total": progress.get("total", 0),
                }
            )
        return steps

    @extend_schema_field(
        serializers.DictField(
            child=serializers.CharField(allow_null=True),
            help_text="Paths: `page`, `panel`, `panel_api`, `run`, `run_api`, `scorecard`, `scorecard_csv` "
            "(null until they exist).",
        )
    )
    def get_links(self, validation) -> dict:
        return exports.validation_links(validation)

    @extend_schema_field(VerdictSerializer(allow_null=True))
    def get_verdict(self, validation) -> dict | None:
        if validation.state != ValidationState.DONE:
            return None
        verdict = (validation.scorecard or {}).get("verdict") or {}
        return {key: verdict.get(key) for key in ("passed", "summary", "checks", "rule")}

    @extend_schema_field(serializers.JSONField(allow_null=True))
    def get_scorecard(self, validation) -> dict | None:
        return validation.scorecard if validation.state == ValidationState.DONE else None
