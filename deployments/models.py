"""Services (what should run), Releases (immutable snapshots of it), on a Cluster."""

import json

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clusters.models import Cluster
from panel.audit.models import Audited
from panel.lib import crypto

from .spec import validate_dns_label


class ServiceQuerySet(models.QuerySet):
    def visible_to(self, user):
        if getattr(user, "is_operator", False):
            return self
        return self.none()


class ServiceStatus(models.TextChoices):
    NEW = "new", _("Not deployed yet")
    DEPLOYING = "deploying", _("Deploying")
    DEPLOYED = "deployed", _("Deployed")
    FAILED = "failed", _("Last deploy failed")
    STOPPED = "stopped", _("Stopped")
    REMOVED = "removed", _("Removed")


class Service(Audited, models.Model):
    """The desired state of one application on one cluster.

    `project` groups services deployed together (a compose project / Swarm stack, or a
    Kubernetes namespace). `spec` is validated by deployments.spec.ServiceSpec; secret
    values are kept apart, encrypted, in `secrets_encrypted` ({name: value}).
    """

    name = models.CharField(_("name"), max_length=63, validators=[validate_dns_label])
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="services")
    project = models.CharField(_("project / namespace"), max_length=63, default="default", validators=[validate_dns_label])
    spec = models.JSONField(_("spec"), default=dict)
    secrets_encrypted = models.TextField(blank=True, editable=False)
    status = models.CharField(max_length=16, choices=ServiceStatus.choices, default=ServiceStatus.NEW)
    registry_credential = models.ForeignKey(
        "clusters.Credential", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        limit_choices_to={"kind": "registry"}, verbose_name=_("registry credential"), help_text=_("Used to pull the image from a private registry."),
    )
    current_release = models.ForeignKey("Release", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Observed state, refreshed by probes: replicas desired/running/healthy and per-replica rows.
    observed = models.JSONField(default=dict, blank=True)
    observed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ServiceQuerySet.as_manager()
    audit_exclude = {"observed", "observed_at"}

    class Meta:
        ordering = ["cluster__name", "project", "name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "project", "name"], name="service_unique_per_project")]

    def __str__(self):
        return f"{self.project}/{self.name}" if self.project != "default" else self.name

    @property
    def image_ref(self):
        return f"{self.spec.get('image')}:{self.spec.get('tag', 'latest')}"

    def get_secrets(self) -> dict:
        """Decrypt. Only job code (backends) calls this."""
        return json.loads(crypto.decrypt(self.secrets_encrypted)) if self.secrets_encrypted else {}

    def set_secrets(self, values: dict):
        self.secrets_encrypted = crypto.encrypt(json.dumps(values)) if values else ""


class ReleaseStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DEPLOYED = "deployed", _("Deployed")
    FAILED = "failed", _("Failed")
    SUPERSEDED = "superseded", _("Superseded")


class Release(models.Model):
    """An immutable snapshot of a Service spec, numbered per service. Deploy creates one;
    rollback re-applies an earlier one's spec as a new revision."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="releases")
    revision = models.PositiveIntegerField()
    spec = models.JSONField()
    status = models.CharField(max_length=16, choices=ReleaseStatus.choices, default=ReleaseStatus.PENDING)
    note = models.CharField(max_length=300, blank=True, help_text=_("e.g. 'rollback to revision 3'"))
    rollback_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["service", "-revision"]
        constraints = [models.UniqueConstraint(fields=["service", "revision"], name="release_revision_unique")]

    def __str__(self):
        return f"{self.service} r{self.revision}"

    def save(self, *args, **kwargs):
        if self.pk and "update_fields" not in kwargs:
            raise ValueError("A release is immutable; only its status may change (save(update_fields=['status']))")
        super().save(*args, **kwargs)


class BuildContext(models.Model):
    """The build context of a service built from source (compose `build:`), kept so that a
    redeploy or a rollback can build the same image again on any engine.

    Content-addressed: `digest` is the sha256 of the (deterministic) tar archive, which a
    release's spec names in `build.context`. The archive is encrypted at rest with the
    credential keys (a context may hold configuration a team considers private) and bounded
    by FILROUGE_BUILD_CONTEXT_MAX_BYTES. Contexts that neither the service's spec nor any of
    its releases name are deleted when a new one is stored (deployments.builds.store_context).
    """

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="build_contexts")
    digest = models.CharField(max_length=71)  # "sha256:<64 hex>"
    size = models.PositiveBigIntegerField()
    archive_encrypted = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["service", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["service", "digest"], name="build_context_unique_per_service")]

    def __str__(self):
        return f"{self.service} {self.digest[:19]}"
