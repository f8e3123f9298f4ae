"""What the panel keeps about raw manifests and isolated namespaces on Kubernetes clusters.

Manifest text may hold Secrets, so it is stored encrypted with the credential keys and
handed to jobs by id: it never appears in job parameters, lines or API responses. The
kubeconfig of an isolated namespace (a bearer token) is stored the same way and only its
owner or an admin may download it.
"""

import json

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from panel.audit.models import Audited
from panel.lib import crypto


class ManifestSetQuerySet(models.QuerySet):
    def visible_to(self, user):
        if getattr(user, "is_operator", False):
            return self
        return self.none()


class ManifestSet(models.Model):
    """Manifests submitted for one cluster and namespace (validate, diff or apply them by id)."""

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="manifest_sets")
    namespace = models.CharField(_("namespace"), max_length=63)
    source_names = models.JSONField(default=list, blank=True)
    text_encrypted = models.TextField(editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    objects = ManifestSetQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"manifests #{self.pk} for {self.namespace}"

    def set_sources(self, sources):
        """[(name, text)]: the files (or the pasted text) of the set."""
        self.source_names = [name for name, _text in sources]
        self.text_encrypted = crypto.encrypt(json.dumps([[name, text] for name, text in sources]))

    def get_sources(self):
        """Decrypt. Only job code calls this."""
        return [(name, text) for name, text in json.loads(crypto.decrypt(self.text_encrypted))] if self.text_encrypted else []


class IsolatedNamespaceQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Operators see every isolated namespace; anyone else, the ones they own."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        if user.is_operator:
            return self
        return self.filter(owner=user)


class IsolatedNamespaceState(models.TextChoices):
    PENDING = "pending", _("Being created")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")
    DELETING = "deleting", _("Being deleted")
    DELETED = "deleted", _("Deleted")


class IsolatedNamespaceRecord(Audited, models.Model):
    """An isolated namespace on a Kubernetes cluster (see clusters/kubernetes/isolation.py)."""

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="isolated_namespaces")
    name = models.CharField(_("namespace"), max_length=63)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="isolated_namespaces", verbose_name=_("owner"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    labels = models.JSONField(_("labels"), default=dict, blank=True)
    quota = models.JSONField(_("quota"), default=dict, blank=True)
    limits = models.JSONField(_("container limits"), default=dict, blank=True)
    token_seconds = models.PositiveIntegerField(_("token lifetime (seconds)"), default=3600)
    workspace = models.BooleanField(_("workspace pod"), default=False,
                                    help_text=_("A pod with kubectl that runs as the namespace's service account, for a terminal in the browser."))
    state = models.CharField(_("state"), max_length=16, choices=IsolatedNamespaceState.choices, default=IsolatedNamespaceState.PENDING)
    service_account = models.CharField(max_length=253, blank=True)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    kubeconfig_encrypted = models.TextField(editable=False, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = IsolatedNamespaceQuerySet.as_manager()
    audit_exclude = {"updated_at"}

    class Meta:
        ordering = ["cluster", "name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="isolated_namespace_unique")]

    def __str__(self):
        return f"{self.name} on {self.cluster_id and self.cluster.name}"

    def set_kubeconfig(self, kubeconfig: dict):
        self.kubeconfig_encrypted = crypto.encrypt(json.dumps(kubeconfig)) if kubeconfig else ""

    def get_kubeconfig(self) -> dict:
        """Decrypt. Only the audited download and job code call this."""
        return json.loads(crypto.decrypt(self.kubeconfig_encrypted)) if self.kubeconfig_encrypted else {}

    @property
    def token_valid(self):
        return bool(self.token_expires_at and self.token_expires_at > timezone.now() and self.kubeconfig_encrypted)

    def can_download(self, user):
        return bool(getattr(user, "is_authenticated", False) and (user.is_admin or (self.owner_id and self.owner_id == user.pk)))
