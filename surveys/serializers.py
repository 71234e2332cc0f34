from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from surveys.models import Question, QuestionKind, Run, Survey


class QuestionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Question
        fields = [
            "id",
            "position",
            "kind",
            "text",
            "labels",
            "options",
            "randomize_options",
            "anchor_preset",
            "anchor_sets",
            "direct_elicitation",
        ]


class SurveySerializer(serializers.ModelSerializer):
    questions = QuestionSerializer(many=True, read_only=True)

    class Meta:
        model = Survey
        fields = ["id", "title", "intro", "randomize_questions", "questions", "created_at", "updated_at"]


class QuestionInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=QuestionKind.choices)
    text = serializers.CharField()
    labels = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    options = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    randomize_options = serializers.BooleanField(required=False, default=False)
    anchor_preset = serializers.CharField(required=False, allow_blank=True, default="")
    anchor_sets = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField()), required=False, default=list
    )
    direct_elicitation = serializers.BooleanField(required=False, default=True)


class SurveyInputSerializer(serializers.Serializer):
    """The questions are checked by the service (one set of rules for the page, the API and files)."""

    title = serializers.CharField(required=False, allow_blank=True)
    intro = serializers.CharField(required=False, allow_blank=True)
    randomize_questions = serializers.BooleanField(required=False)
    questions = serializers.ListField(child=serializers.DictField(), required=False)


class SurveyCreateSerializer(SurveyInputSerializer):
    """A new survey needs its title; the rest may come later."""

    title = serializers.CharField(allow_blank=True)


class GeneratePanelSerializer(serializers.Serializer):
    """Checked by the service (one set of rules for the page and the API): 400 with `fields` naming
    `panel_description` or `panel_size` when they are wrong."""

    description = serializers.CharField(
        allow_blank=True, help_text="Who should answer, in words (at least 10 characters), as for persona generation."
    )
    size = serializers.IntegerField(
        help_text="How many personas to generate: from 5 to the App settings' largest survey panel (500 by default)."
    )


class PanelSerializer(serializers.Serializer):
    generate = GeneratePanelSerializer(
        help_text=(
            "Generate the panel for this run: the personas go into a new folder named after the survey, and the "
            "run starts when they are ready. Their generation is charged as persona generation is (reserved "
            "now); the run's credits are reserved when it starts. Both must be affordable now (402 otherwise)."
        )
    )


class RunStartSerializer(serializers.Serializer):
    """One panel: `folder_id`, `persona_ids`, `panel_id` (a sampled panel) or `panel.generate`."""

    folder_id = serializers.IntegerField(required=False, allow_null=True)
    panel_id = serializers.IntegerField(
        required=False, allow_null=True, help_text="A panel sampled from a population (/api/v1/panels)."
    )
    persona_ids = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    panel = PanelSerializer(required=False)
    check_quality = serializers.BooleanField(
        required=False,
        default=False,
        help_text=(
            "Also check the run's quality when it ends (test-retest, leading questions, the judge, diversity): its "
            "credits are reserved now with the run's (402 when short); see /surveys/runs/{id}/quality/."
        ),
    )
    reference_variances = serializers.DictField(
        child=serializers.FloatField(),
        required=False,
        default=dict,
        help_text="For the quality check: people's variance per scale question, keyed by question id (optional).",
    )


class QualityStartSerializer(serializers.Serializer):
    reference_variances = serializers.DictField(
        child=serializers.FloatField(),
        required=False,
        default=dict,
        help_text="People's variance per scale question, keyed by question id, to compare the panel's with.",
    )


class GeneratedPanelStatusSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=[
            ("generating", "The personas are being generated; the run waits."),
            ("done", "Generated: the run has started (see the run's own state and progress)."),
            ("failed", "The run did not start: `reason` says why."),
        ]
    )
    description = serializers.CharField()
    size = serializers.IntegerField(help_text="Personas asked for.")
    done = serializers.IntegerField(help_text="Personas handled so far (generated or failed).")
    generated = serializers.IntegerField(help_text="Personas generated so far.")
    folder_id = serializers.IntegerField(allow_null=True)
    folder = serializers.CharField()
    job_id = serializers.UUIDField(allow_null=True, help_text="The generation's current job (cancel it to stop).")
    job_state = serializers.CharField(allow_null=True)
    cancel_requested = serializers.BooleanField()
    message = serializers.CharField()
    reason = serializers.CharField(help_text="Why the run did not start (empty otherwise).")


class RunSerializer(serializers.ModelSerializer):
    job_id = serializers.UUIDField(source="job.pk", read_only=True, allow_null=True)
    state = serializers.SerializerMethodField(
        help_text=(
            "The run's job state; before it has a job: `generating_panel` (its panel is being generated) or "
            "`not_started` (see `generated_panel.reason`)."
        )
    )
    progress = serializers.SerializerMethodField()
    generated_panel = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = [
            "id",
            "survey",
            "title",
            "panel_label",
            "unit_cost",
            "seed",
            "stop_reason",
            "job_id",
            "state",
            "progress",
            "generated_panel",
            "created_at",
        ]

    def get_state(self, run) -> str:
        if run.job is not None:
            return run.job.state
        return "generating_panel" if run.generating else "not_started"

    def get_progress(self, run) -> dict:
        return self.context.get("counts", {})

    @extend_schema_field(GeneratedPanelStatusSerializer(allow_null=True))
    def get_generated_panel(self, run) -> dict | None:
        return self.context.get("generated_panel")
