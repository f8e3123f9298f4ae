from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from panel.audit.models import Audited


class Status(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")  # the work said no (host down, health check failed...)
    ERRORED = "errored", _("Errored")  # our code broke
    CANCELLED = "cancelled", _("Cancelled")
    LOST = "lost", _("Lost")  # its worker died


ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
FINISHED_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.ERRORED, Status.CANCELLED, Status.LOST)


class Outcome(models.TextChoices):
    NONE = "", _("Info")
    OK = "ok", _("ok")
    CHANGED = "changed", _("changed")
    FAILED = "failed", _("failed")
    SKIPPED = "skipped", _("skipped")


class JobQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Operators see every job; everyone else sees the jobs they started."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        if user.is_operator:
            return self
        return self.filter(user=user)

    def active(self):
        return self.filter(status__in=ACTIVE_STATUSES)

    def for_target(self, obj):
        return self.filter(target_type=ContentType.objects.get_for_model(obj), target_id=str(obj.pk))


class Job(Audited, models.Model):
    """One run of a job kind. This row is the source of truth; the RQ job only carries it to a worker."""

    kind = models.CharField(_("kind"), max_length=64, db_index=True)
    queue = models.CharField(max_length=16, default="default")
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    target_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(_("target"), max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    timeout = models.PositiveIntegerField(help_text=_("seconds"))
    worker_name = models.CharField(max_length=200, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    line_count = models.PositiveIntegerField(default=0)
    # The client's Idempotency-Key header (API): a retried request returns this job.
    idempotency_key = models.CharField(max_length=200, blank=True, default="")

    objects = JobQuerySet.as_manager()
    audit_exclude = {"heartbeat_at", "progress_done", "line_count", "worker_name", "idempotency_key"}

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["target_type", "target_id", "-created_at"]),
            models.Index(fields=["status", "heartbeat_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="job_idempotency_key_unique_per_user",
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.kind}"

    @property
    def rq_id(self):
        return f"filrouge-job-{self.pk}"

    @property
    def is_finished(self):
        return self.status in FINISHED_STATUSES

    @property
    def duration(self):
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    @property
    def progress_percent(self):
        if not self.progress_total:
            return 100 if self.status == Status.SUCCEEDED else None
        return min(100, round(100 * self.progress_done / self.progress_total))

    @property
    def target(self):
        if not self.target_type_id:
            return None
        model = self.target_type.model_class()
        return model._base_manager.filter(pk=self.target_id).first() if model else None


class JobEvent(models.Model):
    """One line of a job's story, in order (seq). The last one is the end marker."""

    # No index of its own: the (job, seq) unique index serves "lines of this job" and
    # "the last 200 lines" alike, so the planner cannot pick a worse one.
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events", db_index=False)
    seq = models.PositiveIntegerField()
    time = models.DateTimeField()
    host = models.CharField(max_length=200, blank=True)
    task = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, blank=True)
    text = models.TextField(blank=True)
    is_end = models.BooleanField(default=False)

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="job_event_seq_unique")]

    def __str__(self):
        return f"{self.job_id}:{self.seq} {self.text[:60]}"
