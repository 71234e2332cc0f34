from rest_framework import serializers

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
    by_model = UsageGroupSerializer(many=True)
    by_day = UsageDaySerializer(many=True)
    recent = UsageEventSerializer(many=True)
