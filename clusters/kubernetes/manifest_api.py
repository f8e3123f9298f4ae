"""REST endpoints for Kubernetes namespaces, raw manifests and isolated namespaces.

Every write starts a job and answers 202 with it (GET /api/jobs/<id>/ for the result);
nothing here talks to a cluster. Manifest text is stored encrypted and referred to by
id, and a kubeconfig leaves the panel only through the audited download, for the
namespace's owner or an admin.
"""

import yaml
from django.db import transaction
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from panel.accounts.access import get_visible_or_404
from panel.accounts.models import User
from panel.audit.models import Action
from panel.audit.recorder import record
from panel.jobs.models import Job
from panel.jobs.serializers import JobSerializer
from panel.jobs.services import start_job

from clusters.docker.api import OPERATORS
from clusters.kubernetes.records import IsolatedNamespaceRecord, IsolatedNamespaceState, ManifestSet
from clusters.models import Cluster

NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
MANIFEST_ACTIONS = {"validate": "kube-manifests-validate", "diff": "kube-manifests-diff", "apply": "kube-manifests-apply"}
MAX_MANIFEST_BYTES = 2 * 1024 * 1024


def kube_cluster_or_404(user, pk):
    cluster = get_visible_or_404(Cluster, user, pk=pk)
    if cluster.kind != "kubernetes":
        from django.http import Http404

        raise Http404("Not a Kubernetes cluster")
    return cluster


def known_namespaces(cluster):
    """(names, where from, job id): the probe's observed list, else the last namespaces job."""
    observed = (cluster.observed or {}).get("namespaces")
    if isinstance(observed, list) and observed:
        names = [item if isinstance(item, str) else item.get("name", "") for item in observed]
        return sorted(n for n in names if n), "observed", None
    job = Job.objects.for_target(cluster).filter(kind="kube-namespaces", status="succeeded").order_by("-finished_at").first()
    if job is not None:
        return sorted(row["name"] for row in (job.result or {}).get("namespaces", [])), "job", job.pk
    return [], "none", None


class ManifestFileSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    text = serializers.CharField(trim_whitespace=False, allow_blank=False)


class ManifestRequestSerializer(serializers.Serializer):
    namespace = serializers.RegexField(NAMESPACE_PATTERN, max_length=63)
    manifests = serializers.CharField(required=False, trim_whitespace=False, help_text="Multi-document YAML.")
    files = ManifestFileSerializer(many=True, required=False)
    force = serializers.BooleanField(default=False)
    rollout_timeout = serializers.IntegerField(min_value=10, max_value=3600, default=600)

    def validate(self, data):
        sources = [(item["name"], item["text"]) for item in data.get("files") or []]
        if data.get("manifests"):
            sources.insert(0, ("pasted.yaml", data["manifests"]))
        if not sources:
            raise serializers.ValidationError({"manifests": [_("Give the manifests (YAML text) or files.")]})
        if sum(len(text) for _name, text in sources) > MAX_MANIFEST_BYTES:
            raise serializers.ValidationError({"manifests": [_("The manifests are larger than 2 MB.")]})
        data["sources"] = sources
        return data


def start_manifest_job(user, cluster, action, namespace, sources, force=False, rollout_timeout=600):
    """Store the manifests (encrypted) and start the job for `action`; the Job."""
    with transaction.atomic():
        stored = ManifestSet(cluster=cluster, namespace=namespace, created_by=user)
        stored.set_sources(sources)
        stored.save()
        params = {"manifest_set": stored.pk}
        if action == "apply":
            params.update(force=force, rollout_timeout=rollout_timeout)
        return start_job(MANIFEST_ACTIONS[action], params, user, target=cluster)


class NamespaceListSerializer(serializers.Serializer):
    namespaces = serializers.ListField(child=serializers.CharField())
    source = serializers.ChoiceField(choices=["observed", "job", "none"])
    job = serializers.IntegerField(allow_null=True)


class ClusterNamespaces(APIView):
    """GET: the cluster's namespaces as last seen. POST: read them now (202, the job)."""

    permission_classes = OPERATORS

    @extend_schema(responses={200: NamespaceListSerializer})
    def get(self, request, pk):
        cluster = kube_cluster_or_404(request.user, pk)
        names, source, job_id = known_namespaces(cluster)
        return Response({"namespaces": names, "source": source, "job": job_id})

    @extend_schema(request=None, responses={202: JobSerializer})
    def post(self, request, pk):
        cluster = kube_cluster_or_404(request.user, pk)
        job = start_job("kube-namespaces", {}, request.user, target=cluster)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ClusterManifests(APIView):
    """POST /api/clusters/<id>/manifests/<validate|diff|apply>/ with {namespace, manifests | files}: 202, the job."""

    permission_classes = OPERATORS

    @extend_schema(request=ManifestRequestSerializer, responses={202: JobSerializer})
    def post(self, request, pk, action):
        cluster = kube_cluster_or_404(request.user, pk)
        if action not in MANIFEST_ACTIONS:
            return Response({"detail": _("No manifests action %(action)r; use validate, diff or apply.") % {"action": action}}, status=status.HTTP_404_NOT_FOUND)
        body = ManifestRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        job = start_manifest_job(request.user, cluster, action, data["namespace"], data["sources"], data["force"], data["rollout_timeout"])
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


# ---- isolated namespaces ------------------------------------------------------------------

class IsolatedNamespaceSerializer(serializers.ModelSerializer):
    cluster = serializers.SlugRelatedField(slug_field="name", read_only=True)
    owner = serializers.SlugRelatedField(slug_field="username", queryset=User.objects.all(), required=False, allow_null=True)
    name = serializers.RegexField(NAMESPACE_PATTERN, max_length=63)
    token_seconds = serializers.IntegerField(min_value=600, max_value=7 * 24 * 3600, default=3600)
    token_valid = serializers.BooleanField(read_only=True)

    class Meta:
        model = IsolatedNamespaceRecord
        fields = ["id", "cluster", "name", "owner", "labels", "quota", "limits", "token_seconds", "workspace", "state", "service_account", "token_expires_at", "token_valid", "last_error", "created_at"]
        read_only_fields = ["state", "service_account", "token_expires_at", "last_error", "created_at"]

    def validate_quota(self, value):
        if not isinstance(value, dict) or not all(isinstance(v, (str, int)) for v in value.values()):
            raise serializers.ValidationError(_("A mapping of resource name to quantity, e.g. {\"pods\": \"10\", \"requests.cpu\": \"2\"}."))
        return {key: str(item) for key, item in value.items()}

    def validate_labels(self, value):
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise serializers.ValidationError(_("A mapping of label name to string value."))
        return value


class IsolatedNamespaceJobSerializer(serializers.Serializer):
    """What the isolated-namespace actions answer: the namespace and the job that acts on it."""

    namespace = IsolatedNamespaceSerializer()
    job = JobSerializer()


def _job_response(record_obj, job, code=status.HTTP_202_ACCEPTED):
    return Response({"namespace": IsolatedNamespaceSerializer(record_obj).data, "job": JobSerializer(job).data}, status=code)


class IsolatedNamespaceListCreate(APIView):
    """GET: the cluster's isolated namespaces. POST {name, owner?, quota?, limits?, labels?, token_seconds?, workspace?}: create (202)."""

    permission_classes = OPERATORS

    @extend_schema(responses={200: IsolatedNamespaceSerializer(many=True)})
    def get(self, request, pk):
        cluster = kube_cluster_or_404(request.user, pk)
        rows = IsolatedNamespaceRecord.objects.visible_to(request.user).filter(cluster=cluster).select_related("cluster", "owner")
        return Response(IsolatedNamespaceSerializer(rows, many=True).data)

    @extend_schema(request=IsolatedNamespaceSerializer, responses={202: IsolatedNamespaceJobSerializer})
    def post(self, request, pk):
        cluster = kube_cluster_or_404(request.user, pk)
        body = IsolatedNamespaceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return create_isolated(request.user, cluster, body.validated_data)


def create_isolated(user, cluster, data):
    with transaction.atomic():
        existing = IsolatedNamespaceRecord.objects.filter(cluster=cluster, name=data["name"]).first()
        if existing is not None and existing.state != IsolatedNamespaceState.DELETED:
            message = _("%(name)s is already an isolated namespace on %(cluster)s (%(state)s).") % {"name": data["name"], "cluster": cluster.name, "state": existing.get_state_display()}
            return Response({"name": [message]}, status=status.HTTP_409_CONFLICT)
        record_obj = existing or IsolatedNamespaceRecord(cluster=cluster, name=data["name"])
        for field in ("owner", "labels", "quota", "limits", "token_seconds", "workspace"):
            if field in data:
                setattr(record_obj, field, data[field])
        record_obj.owner = data.get("owner") or user
        record_obj.created_by = user
        record_obj.state = IsolatedNamespaceState.PENDING
        record_obj.last_error = ""
        record_obj.save()
        job = start_job("kube-isolated-namespace-create", {}, user, target=record_obj)
    return _job_response(record_obj, job)


class IsolatedNamespaceDetail(APIView):
    """GET one isolated namespace (its owner or an operator). DELETE: remove it from the cluster (202)."""

    @extend_schema(responses={200: IsolatedNamespaceSerializer})
    def get(self, request, pk):
        record_obj = get_visible_or_404(IsolatedNamespaceRecord, request.user, pk=pk)
        return Response(IsolatedNamespaceSerializer(record_obj).data)

    @extend_schema(request=None, responses={202: IsolatedNamespaceJobSerializer})
    def delete(self, request, pk):
        record_obj = get_visible_or_404(IsolatedNamespaceRecord, request.user, pk=pk)
        if not request.user.is_operator:
            raise PermissionDenied(_("Only operators delete isolated namespaces."))
        job = start_job("kube-isolated-namespace-delete", {}, request.user, target=record_obj)
        return _job_response(record_obj, job)


class IsolatedNamespaceRenew(APIView):
    """POST: a fresh token for the namespace's service account (its owner or an operator; 202)."""

    @extend_schema(request=None, responses={202: IsolatedNamespaceJobSerializer})
    def post(self, request, pk):
        record_obj = get_visible_or_404(IsolatedNamespaceRecord, request.user, pk=pk)
        job = start_job("kube-isolated-namespace-renew", {}, request.user, target=record_obj)
        return _job_response(record_obj, job)


class IsolatedNamespaceKubeconfig(APIView):
    """GET: the kubeconfig (YAML) for the namespace's service account. Owner or admin only; audited."""

    @extend_schema(responses={(200, "application/yaml"): OpenApiTypes.OBJECT})
    def get(self, request, pk):
        record_obj = get_visible_or_404(IsolatedNamespaceRecord, request.user, pk=pk)
        return kubeconfig_download(request, record_obj)


def kubeconfig_download(request, record_obj):
    if not record_obj.can_download(request.user):
        raise PermissionDenied(_("Only the namespace's owner or an admin may download its kubeconfig."))
    if not record_obj.token_valid:
        return Response({"detail": _("No valid token: renew it first.")}, status=status.HTTP_409_CONFLICT)
    record(Action.OTHER, record_obj, message=f"Kubeconfig of isolated namespace {record_obj.name} downloaded", user=request.user)
    response = HttpResponse(yaml.safe_dump(record_obj.get_kubeconfig(), sort_keys=False), content_type="application/yaml")
    response["Content-Disposition"] = f'attachment; filename="{record_obj.name}.kubeconfig.yaml"'
    response["Cache-Control"] = "no-store"
    return response
