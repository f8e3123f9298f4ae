import re

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from panel.accounts.access import get_visible_or_404

from .errors import UnknownJobKind
from .filters import JobFilter
from .kinds import REGISTRY
from .models import Job
from .serializers import JobEventSerializer, JobKindSerializer, JobSerializer, JobStartSerializer
from .services import JobStateError, cancel_job, find_idempotent, retry_job, start_job

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII, no spaces


class JobListCreate(generics.ListCreateAPIView):
    """List the jobs you can see (filter by status, kind, user, target), or start one."""

    serializer_class = JobSerializer
    filterset_class = JobFilter

    def get_queryset(self):
        return Job.objects.visible_to(self.request.user).select_related("user", "target_type")

    @extend_schema(
        request=JobStartSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
                description="Any unique string (up to 200 printable ASCII characters). A request repeated "
                "with the same key by the same user returns the job the first one created (200) and "
                "never starts a second one.",
            )
        ],
        responses={
            201: JobSerializer,
            200: OpenApiResponse(JobSerializer, description="The job an earlier request with the same Idempotency-Key created."),
            422: OpenApiResponse(description="The Idempotency-Key was already used for a different kind or parameters."),
        },
    )
    def post(self, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key", "")
        if key and not IDEMPOTENCY_KEY.match(key):
            raise ValidationError({"Idempotency-Key": ["Use 1 to 200 printable ASCII characters, without spaces."]})
        start = JobStartSerializer(data=request.data)
        start.is_valid(raise_exception=True)
        earlier = find_idempotent(request.user, key)
        if earlier is not None:
            return self._replay(earlier, start.validated_data)
        try:
            job = start_job(start.validated_data["kind"], start.validated_data["params"], request.user, idempotency_key=key)
        except UnknownJobKind as exc:
            raise ValidationError({"kind": [str(exc)]}) from None
        except ValidationError as exc:
            raise ValidationError({"params": exc.detail}) from None
        except PermissionDenied as exc:
            raise ApiPermissionDenied(str(exc)) from None
        except IntegrityError:
            earlier = find_idempotent(request.user, key)
            if earlier is None:
                raise
            return self._replay(earlier, start.validated_data)  # a concurrent request with the same key won
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    def _replay(self, job, requested):
        if job.kind != requested["kind"]:
            return Response(
                {"detail": f"This Idempotency-Key was already used for job #{job.pk} of kind {job.kind}; use a new key for a different request."},
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        response = Response(JobSerializer(job).data, status=status.HTTP_200_OK)
        response["Idempotent-Replayed"] = "true"
        return response


class JobDetail(generics.RetrieveAPIView):
    serializer_class = JobSerializer

    def get_object(self):
        return get_visible_or_404(Job, self.request.user, pk=self.kwargs["pk"])


class JobEvents(APIView):
    """The job's lines after `after` (a seq), at most `limit`; `is_end` marks the last one."""

    @extend_schema(
        parameters=[OpenApiParameter("after", int), OpenApiParameter("limit", int)],
        responses=inline_serializer("JobEventPage", {"status": serializers.CharField(), "events": JobEventSerializer(many=True)}),
    )
    def get(self, request, pk):
        job = get_visible_or_404(Job, request.user, pk=pk)
        try:
            after = int(request.query_params.get("after", 0))
            limit = min(int(request.query_params.get("limit", 1000)), 5000)
        except ValueError:
            raise ValidationError({"after": ["after and limit must be integers."]}) from None
        events = job.events.filter(seq__gt=after).order_by("seq")[: max(limit, 1)]
        return Response({"status": job.status, "events": JobEventSerializer(events, many=True).data})


class _JobAction(APIView):
    def post(self, request, pk):
        job = get_visible_or_404(Job, request.user, pk=pk)
        if not (request.user.is_operator or job.user_id == request.user.pk):
            raise ApiPermissionDenied("Only the job's owner or an operator can do this.")
        try:
            result = self.act(job, request.user)
        except JobStateError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(JobSerializer(result).data, status=self.success_status)


class JobCancel(_JobAction):
    success_status = status.HTTP_202_ACCEPTED

    @extend_schema(request=None, responses={202: JobSerializer})
    def post(self, request, pk):
        return super().post(request, pk)

    def act(self, job, user):
        return cancel_job(job, user)


class JobRetry(_JobAction):
    success_status = status.HTTP_201_CREATED

    @extend_schema(request=None, responses={201: JobSerializer})
    def post(self, request, pk):
        return super().post(request, pk)

    def act(self, job, user):
        return retry_job(job, user)


class JobKinds(APIView):
    @extend_schema(responses=JobKindSerializer(many=True))
    def get(self, request):
        kinds = []
        for kind in sorted(REGISTRY.values(), key=lambda k: k.name):
            fields = {
                name: {"type": type(field).__name__.removesuffix("Field").lower(), "required": field.required, "help": str(field.help_text or "")}
                for name, field in kind.Params().get_fields().items()
            }
            kinds.append({"name": kind.name, "label": str(kind.label), "description": str(kind.description), "queue": kind.queue, "timeout": kind.timeout, "params": fields})
        return Response(kinds)
