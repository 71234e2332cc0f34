from rest_framework import serializers

from cohorta.jobs.models import Job
from cohorta.jobs.registry import kind_label


class JobSerializer(serializers.ModelSerializer):
    kind_label = serializers.SerializerMethodField()
    percent = serializers.IntegerField(read_only=True)
    target = serializers.SerializerMethodField()
    can_cancel = serializers.SerializerMethodField()
    can_retry = serializers.BooleanField(read_only=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "kind_label",
            "state",
            "progress_done",
            "progress_total",
            "progress_message",
            "percent",
            "target",
            "params",
            "result",
            "error",
            "cancel_requested",
            "can_cancel",
            "can_retry",
            "attempts",
            "created_at",
            "queued_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def to_representation(self, job: Job) -> dict:
        data = super().to_representation(job)
        # Keys starting with "_" are working data (an image…), not for clients or websockets.
        data["params"] = {key: value for key, value in (job.params or {}).items() if not key.startswith("_")}
        return data

    def get_kind_label(self, job: Job) -> str:
        return kind_label(job.kind)

    def get_target(self, job: Job) -> dict | None:
        target_type = job.target_type
        if target_type is None:
            return None
        return {"type": f"{target_type.app_label}.{target_type.model}", "id": job.target_id}

    def get_can_cancel(self, job: Job) -> bool:
        return job.is_active and not job.cancel_requested


class WorkerCheckInputSerializer(serializers.Serializer):
    steps = serializers.IntegerField(min_value=1, max_value=50, default=5)
    step_seconds = serializers.FloatField(min_value=0.0, max_value=5.0, default=0.5)
