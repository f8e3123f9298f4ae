"""REST endpoints for what runs of a service: its pods (replicas), the events about it,
and its logs. Pods and events come from the last observation stored on the service
(with its age); logs and a fresh observation are jobs, whose lines are read from
/api/jobs/<id>/events/ like any job's."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from panel.accounts.access import get_visible_or_404
from panel.jobs.serializers import JobSerializer

from . import releases
from .api import OPERATORS
from .jobs import LogsParams
from .models import Service


def _age(service):
    return round((timezone.now() - service.observed_at).total_seconds(), 1) if service.observed_at else None


class ServicePods(APIView):
    """GET: the service's pods (Kubernetes) or containers/tasks (Docker, Swarm) as last observed."""

    permission_classes = OPERATORS

    @extend_schema(responses={200: inline_serializer("ServicePods", {
        "observed_at": serializers.DateTimeField(allow_null=True), "observed_age_seconds": serializers.FloatField(allow_null=True),
        "desired": serializers.IntegerField(), "running": serializers.IntegerField(), "healthy": serializers.IntegerField(),
        "pods": serializers.ListField(child=serializers.DictField())})})
    def get(self, request, pk):
        service = get_visible_or_404(Service, request.user, pk=pk)
        observed = service.observed or {}
        return Response({"observed_at": service.observed_at, "observed_age_seconds": _age(service), "desired": observed.get("desired", 0),
                         "running": observed.get("running", 0), "healthy": observed.get("healthy", 0), "pods": observed.get("replicas", [])})


class ServiceEvents(APIView):
    """GET: recent events about the service's objects and pods (Kubernetes), as last observed."""

    permission_classes = OPERATORS

    @extend_schema(responses={200: inline_serializer("ServiceEvents", {
        "observed_at": serializers.DateTimeField(allow_null=True), "observed_age_seconds": serializers.FloatField(allow_null=True),
        "events": serializers.ListField(child=serializers.DictField())})})
    def get(self, request, pk):
        service = get_visible_or_404(Service, request.user, pk=pk)
        return Response({"observed_at": service.observed_at, "observed_age_seconds": _age(service), "events": (service.observed or {}).get("events", [])})


class ServiceLogs(APIView):
    """POST {"tail": 100, "follow_seconds": 0}: a job that writes the last lines of every pod
    (then follows them); read them from /api/jobs/<id>/events/."""

    permission_classes = OPERATORS

    @extend_schema(request=LogsParams, responses={202: JobSerializer})
    def post(self, request, pk):
        service = get_visible_or_404(Service, request.user, pk=pk)
        body = LogsParams(data=request.data)
        body.is_valid(raise_exception=True)
        job = releases.act(service, request.user, "service-logs", dict(body.validated_data))
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ServiceObserve(APIView):
    """POST: refresh the service's pods and events now (a job)."""

    permission_classes = OPERATORS

    @extend_schema(request=None, responses={202: JobSerializer})
    def post(self, request, pk):
        service = get_visible_or_404(Service, request.user, pk=pk)
        job = releases.act(service, request.user, "service-observe")
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
