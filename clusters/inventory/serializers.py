"""Inventory API serializers. Secrets are write-only; only the public part is ever returned."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from clusters.inventory.credentials import SECRET_FIELDS
from clusters.inventory.forms import build_secret, parse_mapping
from clusters.models import Credential, CredentialKind, Group, Server


class CredentialSerializer(serializers.ModelSerializer):
    secret = serializers.DictField(child=serializers.CharField(allow_blank=True, trim_whitespace=False), write_only=True, required=False,
                                   help_text="Write-only. ssh-key: private_key, passphrase, become_password; password: password, "
                                             "become_password; kubeconfig: kubeconfig; kube-token: token, ca_cert; docker-tls: "
                                             "client_cert, client_key, ca_cert; registry: server, password.")
    public = serializers.JSONField(read_only=True)
    server_count = serializers.SerializerMethodField()

    class Meta:
        model = Credential
        fields = ["id", "name", "kind", "username", "description", "public", "secret", "server_count", "created_at", "updated_at"]
        read_only_fields = ["public", "created_at", "updated_at"]

    def get_server_count(self, credential) -> int:
        return credential.servers.count() if not hasattr(credential, "server_count") else credential.server_count

    def validate(self, data):
        kind = data.get("kind") or (self.instance.kind if self.instance else None)
        if self.instance is not None and data.get("kind") and data["kind"] != self.instance.kind:
            raise serializers.ValidationError({"kind": ["The kind of a credential cannot change; create a new one."]})
        secret = data.get("secret")
        if self.instance is None and secret is None:
            raise serializers.ValidationError({"secret": [f"Required. Fields for {kind}: {', '.join(name for name, *_ in SECRET_FIELDS.get(kind, []))}."]})
        if secret is not None:
            unknown = sorted(set(secret) - {name for name, *_ in SECRET_FIELDS.get(kind, [])})
            if unknown:
                raise serializers.ValidationError({"secret": {name: ["Unknown field for this kind."] for name in unknown}})
            try:
                data["secret"] = build_secret(kind, secret, self.instance.get_secret() if self.instance else None)
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"secret": exc.message_dict}) from None
        return data

    def create(self, validated):
        secret = validated.pop("secret")
        credential = Credential(**validated)
        credential.set_secret(secret)
        credential.save()
        return credential

    def update(self, credential, validated):
        secret = validated.pop("secret", None)
        for key, value in validated.items():
            setattr(credential, key, value)
        if secret is not None:
            credential.set_secret(secret)
        credential.save()
        return credential


class GroupSerializer(serializers.ModelSerializer):
    children = serializers.SlugRelatedField(slug_field="name", many=True, queryset=Group.objects.all(), required=False)
    server_count = serializers.SerializerMethodField()

    class Meta:
        model = Group
        fields = ["id", "name", "description", "variables", "children", "server_count"]

    def get_server_count(self, group) -> int:
        return group.server_count if hasattr(group, "server_count") else group.servers.count()

    def validate_variables(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("A mapping of variable names to values.")
        return value

    def validate_children(self, children):
        if self.instance is not None:
            ancestors, frontier = set(), {self.instance.pk}
            links = list(Group.children.through.objects.values_list("from_group_id", "to_group_id"))
            while frontier:
                frontier = {parent for parent, child in links if child in frontier} - ancestors
                ancestors |= frontier
            looping = [child.name for child in children if child.pk in ancestors | {self.instance.pk}]
            if looping:
                raise serializers.ValidationError(f"{', '.join(looping)} would make a loop of groups.")
        return children


class ServerSerializer(serializers.ModelSerializer):
    credential = serializers.SlugRelatedField(slug_field="name", queryset=Credential.objects.filter(kind__in=[CredentialKind.SSH_KEY, CredentialKind.PASSWORD]),
                                              required=False, allow_null=True)
    jump_host = serializers.SlugRelatedField(slug_field="name", queryset=Server.objects.all(), required=False, allow_null=True)
    groups = serializers.SlugRelatedField(slug_field="name", many=True, queryset=Group.objects.all(), required=False)
    host_key = serializers.SerializerMethodField()
    state = serializers.SerializerMethodField()

    class Meta:
        model = Server
        fields = ["id", "name", "address", "port", "user", "credential", "become", "jump_host", "groups", "labels", "variables",
                  "host_key", "state", "facts", "facts_at", "created_at"]
        read_only_fields = ["facts", "facts_at", "created_at"]

    def get_host_key(self, server) -> dict:
        return {"pinned": server.pinned_fingerprint, "type": server.pinned_host_key.split()[0] if server.pinned_host_key else "",
                "pinned_at": server.host_key_pinned_at, "refused": server.offered_fingerprint, "refused_at": server.offered_host_key_at}

    def get_state(self, server) -> dict:
        return {"reachable": server.reachable, "load_1m": server.load_1m, "memory_available_bytes": server.memory_available_bytes,
                "disk_free_bytes": server.disk_free_bytes, "last_seen_at": server.last_seen_at, "probed_at": server.probed_at,
                "error": server.probe_error}

    def validate_labels(self, value):
        if not isinstance(value, dict) or not all(isinstance(v, (str, int, float, bool)) for v in value.values()):
            raise serializers.ValidationError("A mapping of label names to plain values.")
        return {str(key): str(item) for key, item in value.items()}

    def validate_variables(self, value):
        if isinstance(value, str):
            try:
                return parse_mapping(value, "variables")
            except DjangoValidationError as exc:
                raise serializers.ValidationError(exc.messages) from None
        if not isinstance(value, dict):
            raise serializers.ValidationError("A mapping of variable names to values.")
        return value

    def validate_jump_host(self, jump):
        seen = {self.instance.pk} if self.instance else set()
        current = jump
        while current is not None:
            if current.pk in seen:
                raise serializers.ValidationError("This jump host leads back to this server (a loop).")
            seen.add(current.pk)
            current = current.jump_host
        return jump


class ServerListSerializer(ServerSerializer):
    """The list omits facts (large); GET /api/servers/<id>/ has them."""

    class Meta(ServerSerializer.Meta):
        fields = [name for name in ServerSerializer.Meta.fields if name not in ("facts",)]


class ImportSerializer(serializers.Serializer):
    text = serializers.CharField(trim_whitespace=False, max_length=5_000_000, help_text="The inventory file's content.")
    format = serializers.ChoiceField(choices=["ini", "yaml"], required=False, help_text="Guessed from the content when absent.")
    source = serializers.CharField(required=False, default="inventory", help_text="A file name, used in error messages.")
    dry_run = serializers.BooleanField(required=False, default=False, help_text="Preview only: change nothing.")
    credential = serializers.SlugRelatedField(slug_field="name", queryset=Credential.objects.all(), required=False, allow_null=True,
                                              help_text="Credential for servers the inventory gives none.")


class RecipeInfoSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    tasks = serializers.IntegerField()
    variables = serializers.DictField()
