"""The desired spec of a Service, validated in one place for forms, the API, compose
import and releases. Backends (docker, swarm, kubernetes) read the validated dict.

Memory is in MiB and CPU in cores (0.5 = half a core) everywhere inside the panel;
importers convert "256M" / "500m" on the way in.
"""

import re

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def validate_dns_label(value):
    if not DNS_LABEL.match(value or ""):
        raise serializers.ValidationError(_("Use at most 63 lower-case letters, digits and dashes, starting and ending with a letter or digit."))
    return value


class PortSpec(serializers.Serializer):
    container = serializers.IntegerField(min_value=1, max_value=65535)
    published = serializers.IntegerField(min_value=1, max_value=65535, required=False, allow_null=True, default=None)
    protocol = serializers.ChoiceField(choices=["tcp", "udp"], default="tcp")
    host_ip = serializers.IPAddressField(required=False, default="0.0.0.0")
    # Swarm only: "ingress" (the routing mesh, every node answers) or "host" (the node running the task).
    mode = serializers.ChoiceField(choices=["ingress", "host"], default="ingress")


class ConfigFileSpec(serializers.Serializer):
    path = serializers.CharField(max_length=500)
    content = serializers.CharField(allow_blank=True, max_length=1_000_000, trim_whitespace=False)
    mode = serializers.CharField(default="0644", max_length=4)

    def validate_path(self, value):
        if not value.startswith("/"):
            raise serializers.ValidationError(_("Give an absolute path inside the container."))
        return value


class SecretUseSpec(serializers.Serializer):
    """How a secret reaches the containers: as an environment variable or as a file."""

    name = serializers.RegexField(ENV_NAME, max_length=100)
    env = serializers.RegexField(ENV_NAME, max_length=100, required=False, allow_null=True, default=None)
    path = serializers.CharField(max_length=500, required=False, allow_null=True, default=None)

    def validate(self, data):
        if not data.get("env") and not data.get("path"):
            data["env"] = data["name"]
        return data


class VolumeSpec(serializers.Serializer):
    source = serializers.CharField(max_length=300, help_text=_("A named volume, or an absolute host path (bind mount)."))
    target = serializers.CharField(max_length=500)
    read_only = serializers.BooleanField(default=False)
    size_mib = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None, help_text=_("Kubernetes claim size."))


class HealthCheckSpec(serializers.Serializer):
    type = serializers.ChoiceField(choices=["none", "http", "command"], default="none")
    path = serializers.CharField(default="/", max_length=500)
    port = serializers.IntegerField(min_value=1, max_value=65535, required=False, allow_null=True, default=None)
    command = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    interval = serializers.FloatField(min_value=0.1, default=5)
    timeout = serializers.FloatField(min_value=0.1, default=3)
    retries = serializers.IntegerField(min_value=1, default=3)
    start_period = serializers.FloatField(min_value=0, default=0)

    def validate(self, data):
        if data["type"] == "command" and not data["command"]:
            raise serializers.ValidationError({"command": _("A command health check needs a command.")})
        return data


class ResourcesSpec(serializers.Serializer):
    cpu = serializers.FloatField(min_value=0.001, required=False, allow_null=True, default=None, help_text=_("Cores, e.g. 0.5"))
    memory_mib = serializers.IntegerField(min_value=4, required=False, allow_null=True, default=None)
    cpu_request = serializers.FloatField(min_value=0.001, required=False, allow_null=True, default=None)
    memory_request_mib = serializers.IntegerField(min_value=4, required=False, allow_null=True, default=None)


class UpdateSpec(serializers.Serializer):
    parallelism = serializers.IntegerField(min_value=1, default=1)
    delay = serializers.FloatField(min_value=0, default=0, help_text=_("Seconds between batches."))
    failure_action = serializers.ChoiceField(choices=["rollback", "pause", "continue"], default="rollback")
    order = serializers.ChoiceField(choices=["start-first", "stop-first"], default="start-first")
    monitor = serializers.FloatField(min_value=0, default=30, help_text=_("Seconds a new replica has to become healthy."))


class AutoscalingSpec(serializers.Serializer):
    min_replicas = serializers.IntegerField(min_value=1)
    max_replicas = serializers.IntegerField(min_value=1)
    cpu_target_percent = serializers.IntegerField(min_value=1, max_value=100, default=70)

    def validate(self, data):
        if data["max_replicas"] < data["min_replicas"]:
            raise serializers.ValidationError({"max_replicas": _("Must be at least min_replicas.")})
        return data


class IngressSpec(serializers.Serializer):
    host = serializers.CharField(max_length=253)
    path = serializers.CharField(default="/", max_length=500)
    port = serializers.IntegerField(min_value=1, max_value=65535, required=False, allow_null=True, default=None)
    tls_secret = serializers.CharField(max_length=253, required=False, allow_blank=True, default="")


class BuildSpec(serializers.Serializer):
    """A service built from source (compose `build:`): its stored context and build options.
    The image is built on the target engine at deploy (deployments/builds.py)."""

    context = serializers.RegexField(r"^sha256:[0-9a-f]{64}$", help_text=_("Digest of the stored build context archive."))
    dockerfile = serializers.CharField(max_length=500, default="Dockerfile")
    args = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict)
    target = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class ServiceSpec(serializers.Serializer):
    image = serializers.CharField(max_length=500, help_text=_("Repository, e.g. registry.example/app/web"))
    tag = serializers.RegexField(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", max_length=128, default="latest",
                                 error_messages={"invalid": _("A tag is letters, digits, '_', '.' and '-' (at most 128), not starting with '.' or '-'.")})
    command = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    replicas = serializers.IntegerField(min_value=0, max_value=1000, default=1)
    ports = PortSpec(many=True, required=False, default=list)
    env = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict)
    config_files = ConfigFileSpec(many=True, required=False, default=list)
    secrets = SecretUseSpec(many=True, required=False, default=list)
    volumes = VolumeSpec(many=True, required=False, default=list)
    health_check = HealthCheckSpec(required=False, default=dict)
    resources = ResourcesSpec(required=False, default=dict)
    restart_policy = serializers.ChoiceField(choices=["no", "always", "on-failure", "unless-stopped"], default="unless-stopped")
    update = UpdateSpec(required=False, default=dict)
    autoscaling = AutoscalingSpec(required=False, allow_null=True, default=None)
    ingress = IngressSpec(required=False, allow_null=True, default=None)
    service_type = serializers.ChoiceField(choices=["ClusterIP", "NodePort"], default="ClusterIP")
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict)
    depends_on = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    build = BuildSpec(required=False, allow_null=True, default=None)

    def validate_env(self, value):
        bad = [name for name in value if not ENV_NAME.match(name)]
        if bad:
            raise serializers.ValidationError(_("Not valid variable names: %(names)s") % {"names": ", ".join(bad)})
        return value


def normalize_spec(data):
    """Validate and fill defaults; raises rest_framework ValidationError with field paths."""
    spec = ServiceSpec(data=data)
    spec.is_valid(raise_exception=True)
    return _plain(spec.validated_data)


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
