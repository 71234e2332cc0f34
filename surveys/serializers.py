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


class RunStartSerializer(serializers.Serializer):
    folder_id = serializers.IntegerField(required=False, allow_null=True)
    persona_ids = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)


class RunSerializer(serializers.ModelSerializer):
    job_id = serializers.UUIDField(source="job.pk", read_only=True, allow_null=True)
    state = serializers.CharField(source="job.state", read_only=True, allow_null=True)
    progress = serializers.SerializerMethodField()

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
            "created_at",
        ]

    def get_progress(self, run) -> dict:
        return self.context.get("counts", {})
