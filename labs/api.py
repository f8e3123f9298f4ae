"""REST endpoints of the teaching lab, under /api/labs/.

Same rules as the pages: objects come through `visible_to` (another student's environment
is a 404), teacher actions check `is_taught_by` (403), users without a lab role get 403.
Actions answer 202 with the job; poll /api/jobs/<id>/ or the environment.

The owner reads their environment's access (ports, ssh host...) in `access`; secrets in it
(the kubeconfig, tokens, passwords) are never returned: the kubeconfig is downloaded from
the environment page.
"""

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from panel.accounts.access import get_visible_or_404
from panel.jobs.serializers import JobSerializer

from . import environments as actions
from .enrolment import EnrolmentError, enrol_by_code
from .grid import grid_as_data
from .models import Attempt, Course, Environment, EnvironmentState, Exercise
from .views import shown_access


class HasLabRole(BasePermission):
    message = "The teaching lab is for teachers and students."

    def has_permission(self, request, view):
        user = request.user
        return bool(getattr(user, "is_teacher", False) or getattr(user, "is_student", False))


LAB_USERS = [*api_settings.DEFAULT_PERMISSION_CLASSES, HasLabRole]


def _require_teacher(course, user):
    if not course.is_taught_by(user):
        raise ApiPermissionDenied("Only a teacher of this course can do this.")


class CourseSerializer(serializers.ModelSerializer):
    teachers = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)
    code = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Course
        fields = ["id", "url", "slug", "title", "description", "teachers", "code", "created_at"]
        read_only_fields = fields

    def get_code(self, course) -> str | None:
        """The enrolment code, for its teachers only."""
        return course.code if course.is_taught_by(self.context["request"].user) else None

    def get_url(self, course) -> str:
        return f"/labs/courses/{course.pk}/"


class ExerciseSerializer(serializers.ModelSerializer):
    course = serializers.PrimaryKeyRelatedField(read_only=True)
    ttl_seconds = serializers.SerializerMethodField()
    max_score = serializers.IntegerField(read_only=True)
    checks = serializers.SerializerMethodField()

    class Meta:
        model = Exercise
        fields = ["id", "course", "slug", "title", "target", "instructions", "ttl_seconds", "quota", "start", "checks", "max_score", "position"]
        read_only_fields = fields

    def get_ttl_seconds(self, exercise) -> int:
        return int(exercise.ttl.total_seconds())

    def get_checks(self, exercise) -> list:
        """Names and points for everyone; types and parameters for the course's teachers."""
        if exercise.course.is_taught_by(self.context["request"].user):
            return exercise.checks
        return [{"name": check["name"], "points": check.get("points", 1)} for check in exercise.checks]


class EnvironmentSerializer(serializers.ModelSerializer):
    exercise = serializers.PrimaryKeyRelatedField(read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    name = serializers.CharField(read_only=True)
    access = serializers.SerializerMethodField()
    time_left_seconds = serializers.SerializerMethodField()
    error_detail = serializers.SerializerMethodField()

    class Meta:
        model = Environment
        fields = ["id", "exercise", "owner", "name", "state", "error", "error_detail", "access", "score", "last_checked_at", "created_at",
                  "ready_at", "expires_at", "destroyed_at", "time_left_seconds"]
        read_only_fields = fields

    def get_error_detail(self, environment) -> str | None:
        """What a teacher needs to fix a failure (a missing cluster...); null for students."""
        if not environment.exercise.course.is_taught_by(self.context["request"].user):
            return None
        return environment.error_detail

    def get_access(self, environment) -> dict | None:
        if environment.state != EnvironmentState.READY or environment.owner_id != self.context["request"].user.pk:
            return None
        access = shown_access(environment)
        if access.pop("kubeconfig", None):
            access["kubeconfig_download"] = f"/labs/environments/{environment.pk}/kubeconfig/"
        return access

    def get_time_left_seconds(self, environment) -> int | None:
        left = environment.time_left
        return int(left.total_seconds()) if left is not None else None


class AttemptSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username", default=None, read_only=True)

    class Meta:
        model = Attempt
        fields = ["id", "environment", "requested_by", "job", "created_at", "finished_at", "score", "max_score", "results"]
        read_only_fields = fields


class CourseList(generics.ListAPIView):
    serializer_class = CourseSerializer
    permission_classes = LAB_USERS

    def get_queryset(self):
        return Course.objects.visible_to(self.request.user).prefetch_related("teachers")


class CourseDetail(generics.RetrieveAPIView):
    serializer_class = CourseSerializer
    permission_classes = LAB_USERS

    def get_object(self):
        return get_visible_or_404(Course, self.request.user, pk=self.kwargs["pk"])


class CourseGrid(APIView):
    """Students × exercises: state, last score, best score, last check, expiry (teachers)."""

    permission_classes = LAB_USERS

    @extend_schema(responses={200: dict})
    def get(self, request, pk):
        course = get_visible_or_404(Course, request.user, pk=pk)
        _require_teacher(course, request.user)
        return Response(grid_as_data(course))


class EnrolBody(serializers.Serializer):
    code = serializers.CharField(max_length=32)


class Enrol(APIView):
    """A student enrols with a course's code."""

    permission_classes = LAB_USERS

    @extend_schema(request=EnrolBody, responses={201: CourseSerializer, 200: CourseSerializer})
    def post(self, request):
        body = EnrolBody(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            course, created = enrol_by_code(request.user, body.validated_data["code"])
        except EnrolmentError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        data = CourseSerializer(course, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ExerciseList(generics.ListAPIView):
    serializer_class = ExerciseSerializer
    permission_classes = LAB_USERS
    filterset_fields = ["course", "target", "slug"]

    def get_queryset(self):
        return Exercise.objects.visible_to(self.request.user).select_related("course")


class ExerciseDetail(generics.RetrieveAPIView):
    serializer_class = ExerciseSerializer
    permission_classes = LAB_USERS

    def get_object(self):
        return get_visible_or_404(Exercise.objects.select_related("course"), self.request.user, pk=self.kwargs["pk"])


class LaunchResponse(serializers.Serializer):
    environment = EnvironmentSerializer()
    job = JobSerializer()


class ExerciseLaunch(APIView):
    """Launch (or relaunch a failed) environment of this exercise for yourself."""

    permission_classes = LAB_USERS

    @extend_schema(request=None, responses={202: LaunchResponse})
    def post(self, request, pk):
        exercise = get_visible_or_404(Exercise.objects.select_related("course"), request.user, pk=pk)
        try:
            environment, job = actions.launch(exercise, request.user, request.user)
        except actions.EnvironmentBusy as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except PermissionDenied as exc:
            raise ApiPermissionDenied(str(exc)) from None
        context = {"request": request}
        return Response({"environment": EnvironmentSerializer(environment, context=context).data, "job": JobSerializer(job).data}, status=status.HTTP_202_ACCEPTED)


class ClassStart(APIView):
    """Launch this exercise for every enrolled student: one job each (teachers)."""

    permission_classes = LAB_USERS

    @extend_schema(request=None, responses={202: dict})
    def post(self, request, pk):
        exercise = get_visible_or_404(Exercise.objects.select_related("course"), request.user, pk=pk)
        _require_teacher(exercise.course, request.user)
        jobs, skipped = actions.class_start(exercise, request.user)
        return Response({"jobs": [job.pk for job in jobs], "skipped": skipped}, status=status.HTTP_202_ACCEPTED)


class EnvironmentList(generics.ListAPIView):
    """Your environments (students), or those of the courses you teach (teachers)."""

    serializer_class = EnvironmentSerializer
    permission_classes = LAB_USERS
    filterset_fields = ["exercise", "state", "exercise__course"]

    def get_queryset(self):
        return Environment.objects.visible_to(self.request.user).select_related("exercise", "owner")


class EnvironmentDetail(generics.RetrieveAPIView):
    serializer_class = EnvironmentSerializer
    permission_classes = LAB_USERS

    def get_object(self):
        return get_visible_or_404(Environment.objects.select_related("exercise__course", "owner"), self.request.user, pk=self.kwargs["pk"])


class ExtendBody(serializers.Serializer):
    minutes = serializers.IntegerField(min_value=1, max_value=7 * 24 * 60, default=60)


class EnvironmentAction(APIView):
    """check / reset / destroy (owner or teacher), extend / expire (teacher): 202 with the job."""

    permission_classes = LAB_USERS

    @extend_schema(request=ExtendBody, responses={202: JobSerializer})
    def post(self, request, pk, action):
        environment = get_visible_or_404(Environment.objects.select_related("exercise__course", "owner"), request.user, pk=pk)
        if action not in ("check", "reset", "destroy", "extend", "expire"):
            return Response({"detail": "No such action."}, status=status.HTTP_404_NOT_FOUND)
        if action in ("extend", "expire"):
            _require_teacher(environment.exercise.course, request.user)
        try:
            if action == "extend":
                body = ExtendBody(data=request.data)
                body.is_valid(raise_exception=True)
                job = actions.extend(environment, request.user, body.validated_data["minutes"])
            elif action == "expire":
                job = actions.act(environment, "lab-destroy", request.user, {"reason": "expired"})
            else:
                job = {"check": actions.check, "reset": actions.reset, "destroy": actions.destroy}[action](environment, request.user)
        except actions.EnvironmentBusy as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except PermissionDenied as exc:
            raise ApiPermissionDenied(str(exc)) from None
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class AttemptList(generics.ListAPIView):
    serializer_class = AttemptSerializer
    permission_classes = LAB_USERS
    filterset_fields = ["environment"]

    def get_queryset(self):
        return Attempt.objects.visible_to(self.request.user).select_related("requested_by")


class AttemptDetail(generics.RetrieveAPIView):
    serializer_class = AttemptSerializer
    permission_classes = LAB_USERS

    def get_object(self):
        return get_visible_or_404(Attempt, self.request.user, pk=self.kwargs["pk"])
