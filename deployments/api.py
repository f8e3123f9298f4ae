"""REST endpoints for services and releases, and the deploy / scale / rollback / restart /
stop / remove actions. A CI pipeline deploys a new tag with one request:

    POST /api/services/<id>/deploy/  {"tag": "1.4.3"}   -> 202 {"release": ..., "job": ...}

Secret values are write-only (`secrets` on create/update) and never returned.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from clusters.models import Cluster, Credential
from panel.accounts.access import HasRole, get_visible_or_404
from panel.jobs.serializers import JobSerializer

from . import releases
from .models import Release, Service
from .spec import normalize_spec


# The global permissions (authenticated, token scope) plus the role: a view that sets its own
# permission_classes replaces the defaults, so they are listed again here.
OPERATORS = [*api_settings.DEFAULT_PERMISSION_CLASSES, HasRole.for_("is_operator")]

class ServiceSerializer(serializers.ModelSerializer):
    cluster = serializers.SlugRelatedField(slug_field="name", queryset=Cluster.objects.all())
    registry_credential = serializers.SlugRelatedField(slug_field="name", queryset=Credential.objects.filter(kind="registry"), required=False, allow_null=True)
    secrets = serializers.DictField(child=serializers.CharField(allow_blank=True), write_only=True, required=False,
                                    help_text="Secret values by name; stored encrypted, never returned.")
    secret_names = serializers.SerializerMethodField()
    # A method field: a `default` is skipped in a PATCH response, and the field would vanish from it.
    current_revision = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Service
        fields = ["id", "url", "name", "project", "cluster", "spec", "registry_credential", "secrets", "secret_names", "status",
                  "current_revision", "observed", "observed_at", "created_at", "updated_at"]
        read_only_fields = ["status", "observed", "observed_at", "created_at", "updated_at"]

    def get_current_revision(self, service) -> int | None:
        return service.current_release.revision if service.current_release_id else None

    def get_secret_names(self, service) -> list[str]:
        return sorted(service.get_secrets())

    def get_url(self, service) -> str:
        return f"/services/{service.pk}/"

    def validate_spec(self, value):
        try:
            return normalize_spec(value)
        except ValidationError as exc:
            raise ValidationError(exc.detail) from None

    def create(self, validated_data):
        secrets = validated_data.pop("secrets", None)
        service = Service(**validated_data)
        if secrets:
            service.set_secrets(secrets)
        service.save()
        return service

    def update(self, service, validated_data):
        secrets = validated_data.pop("secrets", None)
        for name, value in validated_data.items():
            setattr(service, name, value)
        if secrets is not None:
            service.set_secrets({**service.get_secrets(), **secrets})
        service.save()
        return service


class ReleaseSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True, allow_null=True)
    rollback_of = serializers.IntegerField(source="rollback_of.revision", default=None, read_only=True, allow_null=True)

    class Meta:
        model = Release
        fields = ["id", "revision", "spec", "status", "note", "rollback_of", "job", "created_by", "created_at"]
        read_only_fields = fields


class ServiceListCreate(generics.ListCreateAPIView):
    serializer_class = ServiceSerializer
    permission_classes = OPERATORS
    filterset_fields = ["cluster__name", "project", "status"]

    def get_queryset(self):
        return Service.objects.visible_to(self.request.user).select_related("cluster", "current_release", "registry_credential")

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)


class ServiceDetail(generics.RetrieveUpdateAPIView):
    """Read or change a service's desired spec (the change runs at the next deploy)."""

    serializer_class = ServiceSerializer
    permission_classes = OPERATORS

    def get_object(self):
        return get_visible_or_404(Service, self.request.user, pk=self.kwargs["pk"])


class ReleaseList(generics.ListAPIView):
    serializer_class = ReleaseSerializer
    permission_classes = OPERATORS

    def get_queryset(self):
        service = get_visible_or_404(Service, self.request.user, pk=self.kwargs["pk"])
        return service.releases.select_related("created_by", "rollback_of")


class DeployBody(serializers.Serializer):
    tag = serializers.CharField(max_length=128, required=False, allow_blank=True, help_text="New image tag; empty deploys the current spec.")


class ScaleBody(serializers.Serializer):
    replicas = serializers.IntegerField(min_value=0, max_value=1000)


class RollbackBody(serializers.Serializer):
    revision = serializers.IntegerField(min_value=1)


class ActionResponse(serializers.Serializer):
    release = ReleaseSerializer(required=False)
    job = JobSerializer()


class _ServiceAction(APIView):
    permission_classes = OPERATORS
    body = None

    def post(self, request, pk):
        service = get_visible_or_404(Service, request.user, pk=pk)
        data = {}
        if self.body is not None:
            body = self.body(data=request.data)
            body.is_valid(raise_exception=True)
            data = body.validated_data
        try:
            release, job = self.act(service, request.user, data)
        except releases.ServiceBusy as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        payload = {"job": JobSerializer(job).data}
        if release is not None:
            payload["release"] = ReleaseSerializer(release).data
        return Response(payload, status=status.HTTP_202_ACCEPTED)


class ServiceDeploy(_ServiceAction):
    """Deploy (optionally a new tag): a new release and its job."""

    body = DeployBody

    @extend_schema(request=DeployBody, responses={202: ActionResponse})
    def post(self, request, pk):
        return super().post(request, pk)

    def act(self, service, user, data):
        try:
            return releases.deploy(service, user, tag=data.get("tag") or None)
        except ValidationError as exc:
            raise ValidationError({"tag": exc.detail.get("tag", exc.detail)}) from None


class ServiceRollback(_ServiceAction):
    """Re-deploy an earlier revision's spec as a new release."""

    body = RollbackBody

    @extend_schema(request=RollbackBody, responses={202: ActionResponse})
    def post(self, request, pk):
        return super().post(request, pk)

    def act(self, service, user, data):
        if not service.releases.filter(revision=data["revision"]).exists():
            raise ValidationError({"revision": [f"{service} has no revision {data['revision']}."]})
        return releases.rollback(service, user, data["revision"])


class ServiceScale(_ServiceAction):
    body = ScaleBody

    @extend_schema(request=ScaleBody, responses={202: ActionResponse})
    def post(self, request, pk):
        return super().post(request, pk)

    def act(self, service, user, data):
        return None, releases.act(service, user, "service-scale", {"replicas": data["replicas"]})


def _simple_action(kind, doc):
    class Action(_ServiceAction):
        __doc__ = doc

        @extend_schema(request=None, responses={202: ActionResponse})
        def post(self, request, pk):
            return super().post(request, pk)

        def act(self, service, user, data):
            return None, releases.act(service, user, kind)

    Action.__name__ = Action.__qualname__ = f"Service{kind.split('-')[1].title()}"
    return Action


ServiceRestart = _simple_action("service-restart", "Restart every replica, a batch at a time.")
ServiceStop = _simple_action("service-stop", "Stop every replica; spec and data stay.")
ServiceRemove = _simple_action("service-remove", "Remove everything of the service from its cluster.")
