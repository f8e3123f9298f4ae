"""What pages and the API do to environments: find or create one, and start its jobs.

Nothing here talks to a remote machine; every action is a job (labs/jobs.py). Callers have
already fetched the objects through `visible_to`; the job kinds check again who may act.
"""

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from panel.jobs.services import start_job

from .jobs import active_lab_job
from .models import Enrolment, Environment, EnvironmentState


class EnvironmentBusy(Exception):
    """Another lab job is running on this environment."""


def current_environment(exercise, owner):
    """The student's live (not destroyed) environment of this exercise, or None."""
    return Environment.objects.filter(exercise=exercise, owner=owner).exclude(state=EnvironmentState.DESTROYED).first()


def _ensure_free(environment):
    job = active_lab_job(environment)
    if job is not None:
        raise EnvironmentBusy(_("Job #%(job)s (%(kind)s) is still running on this environment; wait for it to finish.") % {"job": job.pk, "kind": job.kind})


def launch(exercise, owner, user):
    """(environment, job): build the student's environment, or rebuild a failed one."""
    if not (exercise.course.is_taught_by(user) or (user.pk == owner.pk and Enrolment.objects.filter(course=exercise.course, student=owner).exists())):
        raise PermissionDenied(_("Only an enrolled student or a teacher of the course can launch this exercise."))
    with transaction.atomic():
        environment = current_environment(exercise, owner)
        if environment is None:
            try:
                with transaction.atomic():
                    environment = Environment.objects.create(exercise=exercise, owner=owner)
            except IntegrityError:  # a double click: the other request created it
                environment = current_environment(exercise, owner)
        _ensure_free(environment)
        # Launching with no job running means its job was lost (a killed worker): launch again.
        if environment.state not in (EnvironmentState.PENDING, EnvironmentState.FAILED, EnvironmentState.LAUNCHING):
            raise EnvironmentBusy(_("This environment is already %(state)s.") % {"state": environment.get_state_display().lower()})
        job = start_job("lab-launch", {}, user, target=environment)
    return environment, job


def class_start(exercise, user):
    """Launch every enrolled student's environment of an exercise: one job each, queued at once.

    Returns (jobs, skipped) where skipped counts students whose environment is already up or busy.
    """
    if not exercise.course.is_taught_by(user):
        raise PermissionDenied(_("Only a teacher of the course can start the class."))
    jobs, skipped = [], 0
    with transaction.atomic():  # every job is enqueued when this commits
        for enrolment in exercise.course.enrolments.select_related("student"):
            try:
                _environment, job = launch(exercise, enrolment.student, user)
            except EnvironmentBusy:
                skipped += 1
                continue
            jobs.append(job)
    return jobs, skipped


def act(environment, kind, user, params=None):
    """Start lab-check / lab-reset / lab-destroy / lab-extend on one environment."""
    _ensure_free(environment)
    return start_job(kind, params or {}, user, target=environment)


def check(environment, user):
    if environment.state != EnvironmentState.READY:
        raise EnvironmentBusy(_("The environment is not ready yet."))
    return act(environment, "lab-check", user)


def reset(environment, user):
    return act(environment, "lab-reset", user)


def destroy(environment, user):
    if environment.state == EnvironmentState.DESTROYED:
        raise EnvironmentBusy(_("This environment is already destroyed."))
    return act(environment, "lab-destroy", user)


def extend(environment, user, minutes=60):
    return act(environment, "lab-extend", user, {"minutes": minutes})


def live_environments(course, exercise=None):
    queryset = Environment.objects.live().filter(exercise__course=course)
    return queryset.filter(exercise=exercise) if exercise is not None else queryset


def for_all(environments, action, user, **kwargs):
    """Apply an action to many environments; (jobs, skipped busy ones)."""
    jobs, skipped = [], 0
    with transaction.atomic():
        for environment in environments:
            try:
                jobs.append(action(environment, user, **kwargs))
            except EnvironmentBusy:
                skipped += 1
    return jobs, skipped
