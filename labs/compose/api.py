"""POST /api/labs/environments/<id>/compose/: run a compose file in one's own Docker environment."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from panel.accounts.access import get_visible_or_404
from panel.jobs.serializers import JobSerializer
from panel.jobs.services import start_job

from labs.compose.jobs import MAX_COMPOSE_BYTES
from labs.models import Environment


class ComposeBody(serializers.Serializer):
    compose = serializers.CharField(max_length=MAX_COMPOSE_BYTES, trim_whitespace=False, help_text="The compose file (YAML).")
    filename = serializers.CharField(max_length=100, required=False, default="compose.yaml")


class ComposeResponse(serializers.Serializer):
    job = JobSerializer()


class EnvironmentCompose(APIView):
    """Validate the file against the lab's guardrails and start a `lab-compose` job (202), or 400 with every problem."""

    @extend_schema(request=ComposeBody, responses={202: ComposeResponse})
    def post(self, request, pk):
        environment = get_visible_or_404(Environment, request.user, pk=pk)
        if environment.owner_id != request.user.pk and not request.user.is_admin:
            raise PermissionDenied("Only the student who owns this environment can run files in it.")
        body = ComposeBody(data=request.data)
        body.is_valid(raise_exception=True)
        job = start_job("lab-compose", dict(body.validated_data), request.user, target=environment)
        return Response({"job": JobSerializer(job).data}, status=status.HTTP_202_ACCEPTED)
