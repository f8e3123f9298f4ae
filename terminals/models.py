"""One row per terminal session: who opened a shell into what, when, for how long, and
where its recording is. The live shell itself is held by a web process (live.py)."""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class TerminalSessionQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Admins see every session; others their own, plus what a kind opens to them
        (a teacher: the sessions in their courses' lab environments)."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        if user.is_admin:
            return self
        from .kinds import extra_visible_sessions

        return self.filter(models.Q(user=user) | extra_visible_sessions(user)).distinct()

    def live(self):
        return self.filter(ended_at__isnull=True)


class TerminalSession(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="terminal_sessions")
    username = models.CharField(max_length=150, blank=True)
    kind = models.CharField(_("kind"), max_length=32, db_index=True)
    target_label = models.CharField(_("target"), max_length=300)
    target_ref = models.JSONField(default=dict, blank=True)
    # The object the terminal opened into (a Server, a Cluster, a lab Environment).
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    audit_event = models.ForeignKey("audit.AuditEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_input_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True, db_index=True)
    end_reason = models.CharField(max_length=300, blank=True)  # English, as the audit log has it
    # What pages show, in each reader's language: a code of terminals.reasons.MESSAGES and its parameters.
    reason_code = models.CharField(max_length=32, blank=True)
    reason_params = models.JSONField(default=dict, blank=True)
    ended_by = models.CharField(max_length=150, blank=True)
    exit_status = models.IntegerField(null=True, blank=True)
    cols = models.PositiveIntegerField(default=80)
    rows = models.PositiveIntegerField(default=24)
    process = models.CharField(max_length=100, blank=True, help_text="host:pid of the web process holding the shell")
    recording_path = models.CharField(max_length=500, blank=True)
    recording_bytes = models.BigIntegerField(default=0)
    output_bytes = models.BigIntegerField(default=0)
    input_bytes = models.BigIntegerField(default=0)
    recording_truncated = models.BooleanField(default=False)
    recording_deleted_at = models.DateTimeField(null=True, blank=True)

    objects = TerminalSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.username or '?'} → {self.target_label}"

    def get_absolute_url(self):
        return reverse("terminals:replay", args=[self.pk])

    @property
    def is_live(self):
        return self.ended_at is None

    @property
    def duration(self):
        end = self.ended_at or timezone.now()
        return end - self.started_at

    @property
    def reason_text(self):
        """Why it ended, in the active language."""
        from .reasons import describe

        return describe(self)

    @property
    def has_recording(self):
        return bool(self.recording_path) and self.recording_deleted_at is None
