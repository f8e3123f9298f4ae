"""The teaching lab: courses, exercises, student environments and their check attempts.

Who sees what is decided here, once, by each QuerySet's `visible_to(user)`:
- admins see everything;
- a teacher sees the courses they teach and everything inside them;
- a student sees the courses they are enrolled in, their exercises, and only their own
  environments and attempts — never another student's.

What a student is handed to reach their environment (kubeconfig, ports, ssh host) is
stored encrypted in `Environment.access_encrypted`, like credentials.
"""

import json
import re
from datetime import timedelta

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from panel.audit.models import Audited
from panel.lib import crypto

slug_validator = RegexValidator(r"^[a-z0-9][a-z0-9-]{0,62}$", _("Use lowercase letters, digits and dashes."))


class Target(models.TextChoices):
    DOCKER = "docker", _("Docker")
    KUBERNETES = "kubernetes", _("Kubernetes")
    SSH = "ssh", _("SSH host")


class CourseQuerySet(models.QuerySet):
    def visible_to(self, user):
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        if user.is_admin:
            return self
        return self.filter(Q(teachers=user) | Q(enrolments__student=user)).distinct()

    def taught_by(self, user):
        if getattr(user, "is_admin", False):
            return self
        if not getattr(user, "is_teacher", False):
            return self.none()
        return self.filter(teachers=user)


class Course(Audited, models.Model):
    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=63, unique=True, validators=[slug_validator])
    description = models.TextField(_("description"), blank=True)
    code = models.CharField(_("enrolment code"), max_length=32, unique=True, help_text=_("Students enrol with this code."))
    teachers = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="taught_courses", blank=True)
    clusters = models.ManyToManyField("clusters.Cluster", related_name="courses", blank=True, help_text=_("Where its environments run."))
    created_at = models.DateTimeField(default=timezone.now)

    objects = CourseQuerySet.as_manager()

    class Meta:
        ordering = ["title"]

    def __str__(self):
        return self.title

    def is_taught_by(self, user):
        return getattr(user, "is_admin", False) or (getattr(user, "is_teacher", False) and self.teachers.filter(pk=user.pk).exists())

    def targets_without_cluster(self):
        """{target: [exercise slugs]} for the exercises that none of this course's clusters can run."""
        missing = {}
        for target in sorted(set(self.exercises.values_list("target", flat=True))):
            if self.cluster_for(target) is None:
                missing[target] = list(self.exercises.filter(target=target).order_by("position", "slug").values_list("slug", flat=True))
        return missing

    def cluster_for(self, target):
        """The cluster an exercise of this target kind runs on (the course's first of that kind)."""
        kinds = {Target.DOCKER: ["docker"], Target.SSH: ["docker"], Target.KUBERNETES: ["kubernetes"]}[target]
        return self.clusters.filter(kind__in=kinds).order_by("name").first()


class Enrolment(Audited, models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="enrolments")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrolments")
    ssh_public_key = models.TextField(_("SSH public key"), blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "student"], name="one_enrolment_per_student")]
        ordering = ["student__username"]

    def __str__(self):
        return f"{self.student} in {self.course}"


class ExerciseQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(course__in=Course.objects.visible_to(user))


class Exercise(Audited, models.Model):
    """One exercise of a course, loaded from its YAML file (`source` keeps that file for export)."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="exercises")
    slug = models.CharField(_("slug"), max_length=63, validators=[slug_validator])
    title = models.CharField(_("title"), max_length=200)
    target = models.CharField(_("target"), max_length=16, choices=Target.choices)
    instructions = models.TextField(_("instructions"), blank=True, help_text=_("Markdown."))
    ttl = models.DurationField(_("time to live"), default=timedelta(hours=2))
    quota = models.JSONField(_("quota"), default=dict, blank=True)
    start = models.JSONField(_("what to create at start"), default=dict, blank=True)
    checks = models.JSONField(_("checks"), default=list, blank=True)
    source = models.TextField(_("exercise file"), blank=True)
    position = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ExerciseQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "slug"], name="exercise_slug_unique_in_course")]
        ordering = ["course", "position", "slug"]

    def __str__(self):
        return self.title

    @property
    def max_score(self):
        return sum(int(check.get("points", 1)) for check in self.checks)


class EnvironmentState(models.TextChoices):
    PENDING = "pending", _("Pending")
    LAUNCHING = "launching", _("Launching")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")
    DESTROYING = "destroying", _("Destroying")
    DESTROYED = "destroyed", _("Destroyed")


LIVE_STATES = [EnvironmentState.PENDING, EnvironmentState.LAUNCHING, EnvironmentState.READY, EnvironmentState.FAILED]


class EnvironmentQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Admins: all. Teachers: environments of the courses they teach. Students: their own."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        if user.is_admin:
            return self
        if user.is_teacher:
            return self.filter(Q(exercise__course__teachers=user) | Q(owner=user)).distinct()
        return self.filter(owner=user)

    def live(self):
        return self.filter(state__in=LIVE_STATES)

    def expired(self, now=None):
        return self.live().filter(expires_at__lte=now or timezone.now())


class Environment(Audited, models.Model):
    """One student's instance of an exercise: where it lives, what they were given, when it ends."""

    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="environments")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lab_environments")
    cluster = models.ForeignKey("clusters.Cluster", null=True, blank=True, on_delete=models.PROTECT, related_name="lab_environments")
    state = models.CharField(_("state"), max_length=16, choices=EnvironmentState.choices, default=EnvironmentState.PENDING, db_index=True)
    access_encrypted = models.TextField(blank=True)
    error = models.TextField(blank=True)  # what the student reads (labs/errors.py)
    # What a teacher or an operator needs to fix it (a missing cluster, a setting); never shown to students.
    error_detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    ready_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)
    score = models.IntegerField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)

    objects = EnvironmentQuerySet.as_manager()
    audit_exclude = {"access_encrypted"}

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["exercise", "owner"], condition=~Q(state="destroyed"), name="one_live_environment_per_student_and_exercise"
            )
        ]
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.exercise} / {self.owner}"

    @property
    def course(self):
        return self.exercise.course

    @property
    def name(self):
        """A DNS-safe name for what the environment creates: lab-<id>-<username>."""
        user = re.sub(r"[^a-z0-9-]+", "-", self.owner.username.lower()).strip("-")[:24] or "student"
        return f"lab-{self.pk}-{user}".strip("-")[:40].rstrip("-")

    def labels(self):
        return {
            "filrouge.lab": settings.LABS_INSTANCE,
            "filrouge.env": str(self.pk),
            "filrouge.owner": str(self.owner_id),
            "filrouge.exercise": self.exercise.slug,
        }

    @property
    def student_ssh_key(self):
        enrolment = Enrolment.objects.filter(course_id=self.exercise.course_id, student_id=self.owner_id).first()
        return enrolment.ssh_public_key if enrolment else ""

    @property
    def ports(self):
        return list(self.allocated_ports.order_by("name").values_list("port", flat=True))

    def port_map(self):
        """{port name: host port} for the ports allocated to this environment."""
        return dict(self.allocated_ports.values_list("name", "port"))

    @property
    def access(self):
        return json.loads(crypto.decrypt(self.access_encrypted)) if self.access_encrypted else {}

    @access.setter
    def access(self, value):
        self.access_encrypted = crypto.encrypt(json.dumps(value)) if value else ""

    @property
    def is_live(self):
        return self.state in LIVE_STATES

    @property
    def time_left(self):
        if not self.expires_at or not self.is_live:
            return None
        return max(self.expires_at - timezone.now(), timedelta(0))


class AllocatedPort(models.Model):
    """A host port given to one environment on one Docker host; unique per host."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="allocated_ports")
    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="lab_ports")
    name = models.CharField(max_length=63)
    port = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cluster", "port"], name="one_environment_per_host_port")]

    def __str__(self):
        return f"{self.name}={self.port}"


class AttemptQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(environment__in=Environment.objects.visible_to(user))


class Attempt(models.Model):
    """One "check my work": each check's outcome, points and hint, run by a job."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="attempts")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    score = models.IntegerField(null=True, blank=True)
    max_score = models.IntegerField(default=0)
    # [{name, type, passed, points, earned, detail, hint}] in the exercise's order.
    results = models.JSONField(default=list, blank=True)

    objects = AttemptQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
