"""Inventory: credentials, servers, groups and clusters.

Secrets live only in `Credential.secret_encrypted` (Fernet, the dedicated credential
keys). Everything else here may be shown on pages and in API responses.
"""

import json

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from panel.audit.models import Audited
from panel.lib import crypto

name_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$", _("Use letters, digits, dots, dashes and underscores.")
)


class InventoryQuerySet(models.QuerySet):
    def visible_to(self, user):
        """The inventory is for operators (and admins). Other roles reach machines through
        what is given to them (a lab environment), never through the inventory."""
        if getattr(user, "is_operator", False):
            return self
        return self.none()


class CredentialKind(models.TextChoices):
    SSH_KEY = "ssh-key", _("SSH private key")
    PASSWORD = "password", _("Password")
    KUBECONFIG = "kubeconfig", _("Kubeconfig")
    KUBE_TOKEN = "kube-token", _("Kubernetes bearer token")
    DOCKER_TLS = "docker-tls", _("Docker TLS client certificate")
    REGISTRY = "registry", _("Registry login")


class Credential(Audited, models.Model):
    """A secret used to reach something. The secret is a small dict, stored encrypted;
    `public` holds what may be shown (fingerprint, key type, certificate subject...)."""

    name = models.CharField(_("name"), max_length=200, unique=True, validators=[name_validator])
    kind = models.CharField(_("kind"), max_length=16, choices=CredentialKind.choices)
    username = models.CharField(_("username"), max_length=200, blank=True)
    description = models.TextField(_("description"), blank=True)
    secret_encrypted = models.TextField(editable=False)
    public = models.JSONField(default=dict, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = InventoryQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_secret(self) -> dict:
        """Decrypt. Only job code (drivers) calls this; never a view or serializer."""
        return json.loads(crypto.decrypt(self.secret_encrypted)) if self.secret_encrypted else {}

    def set_secret(self, secret: dict):
        from clusters.inventory.credentials import describe_public

        self.secret_encrypted = crypto.encrypt(json.dumps(secret))
        self.public = describe_public(self.kind, secret)

    def secret_values(self):
        """The secret strings, for job-line redaction. A kubeconfig gives the values that
        log in (tokens, client key, passwords), not its whole text: its structural lines
        (`namespace: default`, server URLs) are not secret and must stay readable."""
        from clusters.inventory.credentials import kubeconfig_secret_values

        secret = self.get_secret()
        values = []
        for key, value in secret.items():
            if not isinstance(value, str) or not value:
                continue
            if self.kind == "kubeconfig" and key == "kubeconfig":
                values += kubeconfig_secret_values(value)
            else:
                values.append(value)
        return values


class Group(Audited, models.Model):
    """An Ansible-style group: variables, and child groups (a group may have several parents)."""

    name = models.CharField(_("name"), max_length=200, unique=True, validators=[name_validator])
    description = models.TextField(_("description"), blank=True)
    variables = models.JSONField(_("variables"), default=dict, blank=True)
    children = models.ManyToManyField("self", symmetrical=False, related_name="parents", blank=True)

    objects = InventoryQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Server(Audited, models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True, validators=[name_validator])
    address = models.CharField(_("address"), max_length=255, help_text=_("Host name or IP address."))
    port = models.PositiveIntegerField(_("SSH port"), default=22, validators=[MinValueValidator(1), MaxValueValidator(65535)])
    user = models.CharField(_("SSH user"), max_length=100, default="root")
    credential = models.ForeignKey(Credential, null=True, blank=True, on_delete=models.PROTECT, related_name="servers")
    jump_host = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="jumped_servers", verbose_name=_("jump host"))
    groups = models.ManyToManyField(Group, related_name="servers", blank=True)
    labels = models.JSONField(_("labels"), default=dict, blank=True)
    variables = models.JSONField(_("host variables"), default=dict, blank=True)
    # "ssh-ed25519 AAAA..." as the host presented it at first contact; a different key is refused.
    pinned_host_key = models.TextField(_("pinned host key"), blank=True)
    host_key_pinned_at = models.DateTimeField(null=True, blank=True)
    # A different key the host presented and we refused; an operator may accept it (audited).
    offered_host_key = models.TextField(_("refused host key"), blank=True)
    offered_host_key_at = models.DateTimeField(null=True, blank=True)
    become = models.BooleanField(_("become root with sudo"), default=False, help_text=_("Run recipe tasks that need root through sudo (for a non-root SSH user)."))
    facts = models.JSONField(default=dict, blank=True)
    facts_at = models.DateTimeField(null=True, blank=True)
    # Observed state, refreshed by the periodic probe.
    reachable = models.BooleanField(null=True)
    load_1m = models.FloatField(null=True, blank=True)
    memory_available_bytes = models.BigIntegerField(null=True, blank=True)
    disk_free_bytes = models.BigIntegerField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    probed_at = models.DateTimeField(null=True, blank=True)
    probe_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = InventoryQuerySet.as_manager()
    audit_exclude = {"facts", "facts_at", "offered_host_key_at", "reachable", "load_1m", "memory_available_bytes", "disk_free_bytes", "last_seen_at", "probed_at", "probe_error"}

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["reachable"])]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("clusters:server_detail", args=[self.pk])

    @property
    def pinned_fingerprint(self):
        from .drivers.ssh import fingerprint

        return fingerprint(self.pinned_host_key) if self.pinned_host_key else ""

    @property
    def offered_fingerprint(self):
        from .drivers.ssh import fingerprint

        return fingerprint(self.offered_host_key) if self.offered_host_key else ""

    @property
    def memory_total_bytes(self):
        return (self.facts or {}).get("memory", {}).get("total_bytes")


class ServerJob(models.Model):
    """Which jobs touched which server, and how that server fared (its recap line)."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="job_links")
    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="server_links")
    recap = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["server", "job"], name="server_job_unique")]
        indexes = [models.Index(fields=["server", "-job"])]

    def __str__(self):
        return f"{self.server_id}:{self.job_id}"


class ClusterKind(models.TextChoices):
    KUBERNETES = "kubernetes", _("Kubernetes")
    DOCKER = "docker", _("Docker host")
    SWARM = "swarm", _("Docker Swarm")


class Cluster(Audited, models.Model):
    """Something services are deployed onto: a Docker engine, a Swarm, or a Kubernetes API.

    `endpoint` is how to reach it: unix:///var/run/docker.sock, tcp://host:2376 (TLS),
    ssh://<server> (through `server` and its credential), or https://api:6443.
    """

    name = models.CharField(_("name"), max_length=200, unique=True, validators=[name_validator])
    kind = models.CharField(_("kind"), max_length=16, choices=ClusterKind.choices)
    endpoint = models.CharField(_("endpoint"), max_length=500, blank=True)
    credential = models.ForeignKey(Credential, null=True, blank=True, on_delete=models.PROTECT, related_name="clusters")
    server = models.ForeignKey(Server, null=True, blank=True, on_delete=models.PROTECT, related_name="engines", help_text=_("For ssh:// Docker engines."))
    context = models.CharField(_("kubeconfig context"), max_length=200, blank=True)
    default_namespace = models.CharField(_("default namespace"), max_length=63, blank=True, default="default")
    members = models.ManyToManyField(Server, related_name="clusters", blank=True)
    labels = models.JSONField(_("labels"), default=dict, blank=True)
    # Observed state, refreshed by the periodic probe.
    reachable = models.BooleanField(null=True)
    version = models.CharField(max_length=100, blank=True)
    observed = models.JSONField(default=dict, blank=True)
    observed_at = models.DateTimeField(null=True, blank=True)
    observe_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = InventoryQuerySet.as_manager()
    audit_exclude = {"reachable", "version", "observed", "observed_at", "observe_error"}

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


# Kubernetes manifests and isolated namespaces have their own module.
from clusters.kubernetes.records import IsolatedNamespaceRecord, ManifestSet  # noqa: E402,F401
