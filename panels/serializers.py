from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cohorta.jobs.serializers import JobSerializer
from panels.models import Panel, ProfileDepth, TargetKind

# Fields named ``label`` or ``source`` shadow attributes of DRF's Field in drf-stubs, hence their ignores.

# --- populations -----------------------------------------------------------------------------------


class CategorySerializer(serializers.Serializer):
    name = serializers.CharField()
    share = serializers.FloatField(help_text="Percent of the population.")


class DimensionSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="What quotas and cores call it (e.g. `age`).")
    label = serializers.CharField()  # type: ignore[assignment]  # drf-stubs: a Field attribute
    source = serializers.CharField(allow_blank=True)  # type: ignore[assignment]  # drf-stubs: a Field attribute
    year = serializers.IntegerField(allow_null=True)
    categories = CategorySerializer(many=True)


class TargetSerializer(serializers.Serializer):
    value = serializers.CharField(
        help_text="What `POST /panels/` takes as `target`: `bundled:<key>`, `marginals:<id>` or `microdata:<id>`."
    )
    # Plain text, not an enum: the same choices are the panel's `target_kind` enum in the schema.
    kind = serializers.CharField(help_text=f"One of: {', '.join(TargetKind.values)}.")
    id = serializers.IntegerField(required=False, help_text="Your upload's id (uploads only).")
    label = serializers.CharField()  # type: ignore[assignment]  # drf-stubs: a Field attribute
    name = serializers.CharField()
    country = serializers.CharField(allow_blank=True)
    filename = serializers.CharField(required=False)
    row_count = serializers.IntegerField(required=False, help_text="Respondents in the file (microdata only).")
    created_at = serializers.DateTimeField(required=False)
    dimensions = DimensionSerializer(many=True)


class MarginalsUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="A CSV with the columns dimension, category, share (percent or proportion), optional source "
        "and year; one row per category. Each dimension's shares must add up to 100%."
    )
    name = serializers.CharField(required=False, allow_blank=True, default="")
    country = serializers.CharField(required=False, allow_blank=True, default="")


class MicrodataUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="A CSV with one row per real respondent: categorical demographic columns and a weight column."
    )
    name = serializers.CharField(required=False, allow_blank=True, default="")
    weight_column = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="The weight column's name, if not found by itself."
    )


# --- panels ----------------------------------------------------------------------------------------


class QuotaInputSerializer(serializers.Serializer):
    where = serializers.DictField(
        help_text='One or two dimensions and their categories: `{"gender": "Female", "age": ["18-24", "25-44"]}`.'
    )
    share = serializers.FloatField(required=False, help_text="Percent of the panel (exact).")
    at_least = serializers.IntegerField(required=False, help_text="Fewest people.")


class PanelBuildSerializer(serializers.Serializer):
    """Checked by the service (one set of rules for the page and the API): a 400 says what is wrong."""

    target = serializers.CharField(default="bundled:us_adults", help_text="A `value` from `GET /panels/targets/`.")
    size = serializers.IntegerField(help_text="How many people (at most the App settings' largest panel, 1,000).")
    name = serializers.CharField(required=False, allow_blank=True, default="")
    depth = serializers.ChoiceField(choices=ProfileDepth.choices, default=ProfileDepth.LIGHT)
    quotas = QuotaInputSerializer(many=True, required=False, default=list, help_text="At most 10.")
    seed = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="The same target, quotas and seed give the same panel."
    )
    description = serializers.CharField(required=False, allow_blank=True, default="")


class MemberCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class PanelSerializer(serializers.ModelSerializer):
    """A panel, its job and how many of its people are written (``counts`` in the context)."""

    target = serializers.SerializerMethodField()
    cost = serializers.SerializerMethodField(help_text="Credits reserved: per person × size.")
    folder_id = serializers.IntegerField(allow_null=True, read_only=True)
    job_id = serializers.UUIDField(source="job.pk", read_only=True, allow_null=True)
    state = serializers.SerializerMethodField(help_text="The job's state: `pending`, `running`, `done`…")
    progress_message = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()
    job = serializers.SerializerMethodField()

    class Meta:
        model = Panel
        fields = [
            "id",
            "name",
            "size",
            "depth",
            "seed",
            "target_kind",
            "target",
            "quotas",
            "description",
            "unit_cost",
            "cost",
            "folder_id",
            "job_id",
            "state",
            "progress_message",
            "counts",
            "job",
            "stop_reason",
            "created_at",
        ]

    @extend_schema_field(serializers.DictField())
    def get_target(self, panel) -> dict:
        target = panel.target or {}
        return {"name": target.get("name", ""), "country": target.get("country", "")}

    def get_cost(self, panel) -> int:
        return panel.unit_cost * panel.size

    def get_state(self, panel) -> str:
        return panel.job.state if panel.job is not None else "unknown"

    def get_progress_message(self, panel) -> str:
        return panel.job.progress_message if panel.job is not None else ""

    @extend_schema_field(MemberCountsSerializer(allow_null=True))
    def get_counts(self, panel) -> dict | None:
        return self.context.get("counts")

    @extend_schema_field(JobSerializer(allow_null=True))
    def get_job(self, panel) -> dict | None:
        if not self.context.get("with_job") or panel.job is None:
            return None
        return JobSerializer(panel.job).data


class PanelListItemSerializer(PanelSerializer):
    written = serializers.IntegerField(read_only=True, help_text="People whose persona is written.")

    class Meta(PanelSerializer.Meta):
        fields = [name for name in PanelSerializer.Meta.fields if name not in ("counts", "job", "quotas")] + ["written"]


class CompositionRowSerializer(serializers.Serializer):
    category = serializers.CharField()
    target = serializers.FloatField()
    panel = serializers.FloatField()
    count = serializers.IntegerField()
    deviation = serializers.FloatField(help_text="Panel minus target, in percentage points.")
    not_stated = serializers.BooleanField(
        required=False, help_text="The row of people with no category of this dimension (folders only)."
    )


class CompositionDimensionSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # drf-stubs: a Field attribute
    source = serializers.CharField(allow_blank=True)  # type: ignore[assignment]  # drf-stubs: a Field attribute
    year = serializers.IntegerField(allow_null=True)
    max_deviation = serializers.FloatField()
    warning = serializers.BooleanField(help_text="Some category is off by more than 5 points.")
    rows = CompositionRowSerializer(many=True)


class CompositionQuotaSerializer(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # drf-stubs: a Field attribute
    target = serializers.JSONField(help_text="A percent (an exact share) or “at least N”.")
    panel = serializers.FloatField(help_text="Percent of the panel.")
    count = serializers.IntegerField()
    met = serializers.BooleanField()


class CompositionSerializer(serializers.Serializer):
    size = serializers.IntegerField()
    dimensions = CompositionDimensionSerializer(many=True)
    quotas = CompositionQuotaSerializer(many=True)
    warnings = serializers.ListField(child=serializers.CharField())
