from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from usage.analytics import MAX_DAYS, Period
from usage.models import UsageEvent


class QuotaSerializer(serializers.Serializer):
    limit_usd = serializers.DecimalField(max_digits=12, decimal_places=2)
    spent_usd = serializers.DecimalField(max_digits=14, decimal_places=6)
    remaining_usd = serializers.DecimalField(max_digits=14, decimal_places=6)
    percent = serializers.IntegerField()
    warning = serializers.BooleanField()
    exceeded = serializers.BooleanField()


class UsageGroupSerializer(serializers.Serializer):
    key = serializers.CharField()
    cost_usd = serializers.DecimalField(max_digits=14, decimal_places=6)
    calls = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()


class UsageModelGroupSerializer(UsageGroupSerializer):
    provider = serializers.CharField(help_text="The provider the model ran on (a name in LLM_PROVIDERS).")


class UsageDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    cost_usd = serializers.DecimalField(max_digits=14, decimal_places=6)
    calls = serializers.IntegerField()


class UsageEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = UsageEvent
        fields = [
            "id",
            "created_at",
            "feature",
            "provider",
            "model",
            "model_snapshot",
            "input_tokens",
            "cached_input_tokens",
            "output_tokens",
            "reasoning_tokens",
            "cost_usd",
            "price_missing",
            "usage_source",
            "status",
            "error_class",
            "latency_ms",
            "ttft_ms",
            "streamed",
            "simulated",
            "focus_group_id",
            "persona_id",
            "job",
        ]
        read_only_fields = fields


class UsageSummarySerializer(serializers.Serializer):
    period_start = serializers.DateTimeField()
    quota = QuotaSerializer()
    month_cost_usd = serializers.DecimalField(max_digits=14, decimal_places=6)
    month_calls = serializers.IntegerField()
    unpriced_calls = serializers.IntegerField()
    simulated_calls = serializers.IntegerField()
    by_feature = UsageGroupSerializer(many=True)
    by_model = UsageModelGroupSerializer(many=True)
    by_provider = UsageGroupSerializer(many=True)
    by_day = UsageDaySerializer(many=True)
    recent = UsageEventSerializer(many=True)


class StaffUsageSummaryQuerySerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=["user", "model", "provider", "feature", "day"], default="day")
    # "from" is a Python keyword: the fields are declared in __init__ (see below).

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from"] = serializers.DateField(
            required=False, help_text="First day, inclusive (YYYY-MM-DD). Default: 29 days before `to`."
        )
        self.fields["to"] = serializers.DateField(required=False, help_text="Last day, inclusive. Default: today.")

    def validate(self, attrs):
        end = attrs.get("to") or max(attrs.get("from") or timezone.localdate(), timezone.localdate())
        start = attrs.get("from") or end - timedelta(days=29)
        if start > end:
            raise serializers.ValidationError({"from": "`from` must not be after `to`."})
        if (end - start).days + 1 > MAX_DAYS:
            raise serializers.ValidationError({"from": f"The range may span at most {MAX_DAYS} days."})
        attrs["period"] = Period(start, end)
        return attrs


class StaffUsageRowSerializer(serializers.Serializer):
    key = serializers.CharField(
        allow_null=True,
        help_text="User id (null: events with no user), model name, provider, feature name or ISO date, per "
        "`group_by`.",
    )
    provider = serializers.CharField(
        required=False, help_text="With `group_by=model`: the provider the model ran on (one row per provider)."
    )
    # The metaclass takes declared fields out of the class, so a field may share a Field attribute's name.
    label = serializers.CharField(  # type: ignore[assignment]  # drf-stubs: see above
        help_text="What the key stands for: the user's email; otherwise the key."
    )
    cost_usd = serializers.DecimalField(max_digits=20, decimal_places=6)
    calls = serializers.IntegerField()
    input_tokens = serializers.IntegerField(required=False)
    output_tokens = serializers.IntegerField(required=False)


class StaffUsageTotalsSerializer(serializers.Serializer):
    cost_usd = serializers.DecimalField(max_digits=20, decimal_places=6)
    calls = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    unpriced = serializers.IntegerField(help_text="Calls recorded without a price (unknown cost).")
    estimated = serializers.IntegerField(help_text="Calls whose tokens were estimated.")
    errors = serializers.IntegerField()  # type: ignore[assignment]  # drf-stubs: a declared field, as `label` above


class StaffUsageSummarySerializer(serializers.Serializer):
    group_by = serializers.CharField()
    from_ = serializers.DateField(source="period.start")
    to = serializers.DateField(source="period.end")
    totals = StaffUsageTotalsSerializer()
    rows = StaffUsageRowSerializer(many=True)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields
