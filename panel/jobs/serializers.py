from rest_framework import serializers

from .kinds import REGISTRY
from .models import Job, JobEvent


class JobSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", default=None, read_only=True, allow_null=True)
    target = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    duration_seconds = serializers.SerializerMethodField()
    retry_of = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "url", "kind", "status", "params", "progress", "user", "target", "queue",
            "created_at", "started_at", "finished_at", "duration_seconds", "timeout",
            "error", "result", "line_count", "retry_of", "cancel_requested_at",
        ]
        read_only_fields = fields

    def get_target(self, job) -> dict | None:
        if not job.target_type_id:
            return None
        return {"type": job.target_type.model, "id": job.target_id, "name": job.target_repr}

    def get_progress(self, job) -> dict:
        return {"done": job.progress_done, "total": job.progress_total, "percent": job.progress_percent}

    def get_duration_seconds(self, job) -> float | None:
        return round(job.duration.total_seconds(), 3) if job.duration is not None else None

    def get_url(self, job) -> str:
        return f"/jobs/{job.pk}/"


class JobStartSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="A job kind, see GET /api/job-kinds/.")
    params = serializers.DictField(required=False, default=dict)

    def validate_kind(self, value):
        if value not in REGISTRY:
            raise serializers.ValidationError(f"Unknown job kind {value!r}. Known kinds: {', '.join(sorted(REGISTRY))}.")
        return value


class JobEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobEvent
        fields = ["seq", "time", "host", "task", "outcome", "text", "is_end"]


class JobKindSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    description = serializers.CharField()
    queue = serializers.CharField()
    timeout = serializers.IntegerField()
    params = serializers.DictField()
