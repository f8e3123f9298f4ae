"""REST endpoint that adds a Kubernetes cluster (kubeconfig + context, or URL + token + CA).

The secret goes into a new Credential and is never returned; the answer is the cluster
(as GET /api/clusters/<id>/ shows it) and the connect test job that was started.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from panel.jobs.serializers import JobSerializer
from panel.jobs.services import start_job

from clusters.docker.api import OPERATORS, ClusterSerializer
from clusters.kubernetes.cluster_input import create_kube_cluster


class KubeClusterCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    kubeconfig = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, write_only=True,
                                       help_text="Kubeconfig YAML. Or give endpoint + token (+ ca_cert).")
    context = serializers.CharField(required=False, allow_blank=True, max_length=200, help_text="Context of the kubeconfig (its current context when empty).")
    endpoint = serializers.CharField(required=False, allow_blank=True, max_length=500, help_text="API URL, https://api.example:6443")
    token = serializers.CharField(required=False, allow_blank=True, write_only=True)
    ca_cert = serializers.CharField(required=False, allow_blank=True, write_only=True, trim_whitespace=False)
    allow_insecure_http = serializers.BooleanField(required=False, default=False)
    default_namespace = serializers.CharField(required=False, allow_blank=True, max_length=63)


class KubeClusterCreate(APIView):
    """POST /api/clusters/kubernetes/: add a Kubernetes cluster; 201 with the cluster and its connect test job."""

    permission_classes = OPERATORS

    @extend_schema(request=KubeClusterCreateSerializer, responses={201: inline_serializer("KubeClusterCreated", {"cluster": ClusterSerializer(), "job": JobSerializer()})})
    def post(self, request):
        body = KubeClusterCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            cluster = create_kube_cluster(request.user, **body.validated_data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({("non_field_errors" if key == "__all__" else key): value for key, value in exc.message_dict.items()}) from None
        job = start_job("kube-connect-test", {}, request.user, target=cluster)
        return Response({"cluster": ClusterSerializer(cluster).data, "job": JobSerializer(job).data}, status=status.HTTP_201_CREATED)
