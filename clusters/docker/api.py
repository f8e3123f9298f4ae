"""REST endpoints for Docker and Swarm clusters: list/create/read/update, and the actions
that start jobs (connect test, probe, node availability). Secrets never appear here."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from panel.accounts.access import HasRole, get_visible_or_404
from panel.jobs.serializers import JobSerializer
from panel.jobs.services import start_job

from clusters.docker.forms import ClusterForm
from clusters.models import Cluster, Credential, Server


# The global permissions (authenticated, token scope) plus the role: a view that sets its own
# permission_classes replaces the defaults, so they are listed again here.
OPERATORS = [*api_settings.DEFAULT_PERMISSION_CLASSES, HasRole.for_("is_operator")]

class ClusterSerializer(serializers.ModelSerializer):
    credential = serializers.SlugRelatedField(slug_field="name", queryset=Credential.objects.all(), required=False, allow_null=True)
    server = serializers.SlugRelatedField(slug_field="name", queryset=Server.objects.all(), required=False, allow_null=True)
    observed_age_seconds = serializers.SerializerMethodField()

    class Meta:
        model = Cluster
        fields = ["id", "name", "kind", "endpoint", "credential", "server", "context", "default_namespace", "labels", "reachable", "version", "observed", "observed_at", "observed_age_seconds", "observe_error", "created_at"]
        read_only_fields = ["reachable", "version", "observed", "observed_at", "observe_error", "created_at"]

    def validate_labels(self, value):
        # A form field "labels=null" reaches here as None (DRF parses form JSON itself), past allow_null.
        if not isinstance(value, dict) or not all(isinstance(v, (str, int, float, bool)) for v in value.values()):
            raise serializers.ValidationError("A mapping of label names to plain values.")
        return {str(key): str(item) for key, item in value.items()}

    def get_observed_age_seconds(self, cluster) -> float | None:
        from django.utils import timezone

        return round((timezone.now() - cluster.observed_at).total_seconds(), 1) if cluster.observed_at else None

    def validate(self, data):
        # The page's form holds the rules on how each endpoint is reached: use them here too.
        instance = self.instance
        merged = {
            "name": data.get("name", getattr(instance, "name", "")),
            "kind": data.get("kind", getattr(instance, "kind", "")),
            "endpoint": data.get("endpoint", getattr(instance, "endpoint", "")),
            "credential": (data.get("credential") if "credential" in data else getattr(instance, "credential", None)),
            "server": (data.get("server") if "server" in data else getattr(instance, "server", None)),
        }
        form = ClusterForm({**merged, "credential": getattr(merged["credential"], "pk", None), "server": getattr(merged["server"], "pk", None)}, instance=instance)
        if merged["kind"] in ("docker", "swarm") and not form.is_valid():
            raise serializers.ValidationError({field: [str(e) for e in errors] for field, errors in form.errors.items()})
        if merged["kind"] in ("docker", "swarm"):
            data["endpoint"] = form.cleaned_data["endpoint"]
        if merged["kind"] == "kubernetes" and data.get("context"):
            contexts = (getattr(merged["credential"], "public", None) or {}).get("contexts") or []
            if data["context"] not in contexts:
                raise serializers.ValidationError({"context": [f"The kubeconfig has no context {data['context']!r}; it has: {', '.join(contexts) or 'none'}."]})
        return data


class ClusterListCreate(generics.ListCreateAPIView):
    """Clusters you can see; operators create Docker hosts and Swarms here."""

    serializer_class = ClusterSerializer
    permission_classes = OPERATORS

    def get_queryset(self):
        return Cluster.objects.visible_to(self.request.user).select_related("credential", "server")


class ClusterDetail(generics.RetrieveUpdateAPIView):
    serializer_class = ClusterSerializer
    permission_classes = OPERATORS

    def get_object(self):
        return get_visible_or_404(Cluster, self.request.user, pk=self.kwargs["pk"])


class ClusterJob(APIView):
    """POST /api/clusters/<id>/test/ or /probe/: start the connect test or a probe (202, the job).

    On a Kubernetes cluster they are kube-connect-test and kube-observe."""

    permission_classes = OPERATORS
    kinds = {"test": "engine-connect-test", "probe": "engine-probe"}

    @extend_schema(request=None, responses={202: JobSerializer})
    def post(self, request, pk, action):
        cluster = get_visible_or_404(Cluster, request.user, pk=pk)
        kinds = self.kinds if cluster.kind in ("docker", "swarm") else {}
        if cluster.kind == "kubernetes":
            from clusters.kubernetes.views import JOB_KINDS as kinds
        if action not in kinds:
            return Response({"detail": f"No {action!r} action for a {cluster.kind} cluster."}, status=status.HTTP_404_NOT_FOUND)
        job = start_job(kinds[action], {}, request.user, target=cluster)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class NodeAvailabilitySerializer(serializers.Serializer):
    availability = serializers.ChoiceField(choices=["active", "pause", "drain"])
    wait_seconds = serializers.IntegerField(min_value=0, max_value=600, default=60)


class NodeAvailability(APIView):
    """POST {"availability": "drain"|"pause"|"active"}: change a Swarm node (202, the job)."""

    permission_classes = OPERATORS

    @extend_schema(request=NodeAvailabilitySerializer, responses={202: JobSerializer})
    def post(self, request, pk, node):
        cluster = get_visible_or_404(Cluster, request.user, pk=pk)
        if cluster.kind != "swarm":
            return Response({"detail": "Only Swarm clusters have nodes."}, status=status.HTTP_409_CONFLICT)
        body = NodeAvailabilitySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = start_job("swarm-node-availability", {"node": node, **body.validated_data}, request.user, target=cluster)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

