"""Job kinds of the teaching lab and the expiry sweep.

- lab-launch: choose the course's cluster for the target, allocate ports, `provider.create()`,
  store the access encrypted; on failure, destroy whatever was half-created.
- lab-check: run the exercise's checks from outside (`provider.check_target()`), record an Attempt.
- lab-reset, lab-destroy (idempotent; a failed teardown is retried by the sweep), lab-extend.
- sweep_expired_environments (periodic): queue lab-destroy for every expired environment.

The target of every kind is the Environment. Who may start them: the environment's owner
or a teacher of its course (extend: teachers only); the scheduler starts them as nobody.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from panel.jobs.errors import JobFailed
from panel.jobs.kinds import JobKind, register
from panel.jobs.models import ACTIVE_STATUSES, Job
from panel.jobs.periodic import every

from .checks.runner import run_checks
from .errors import LabSetupError, student_message
from .exercise_file import MAX_TTL
from .metrics import record_checks, record_environments_running
from .models import Attempt, Environment, EnvironmentState
from .ports import release_ports
from .providers import provider_for

logger = logging.getLogger("filrouge.labs")

# lab-compose counts too: no reset or destroy while a student's compose file is being run.
LAB_KINDS = ("lab-launch", "lab-check", "lab-reset", "lab-destroy", "lab-extend", "lab-compose")
# A teardown that failed is tried again by the sweep once this long has passed.
TEARDOWN_RETRY_AFTER = timedelta(seconds=60)
SECRET_KEYS = ("kubeconfig", "token", "password", "private_key", "client_key")


def may_act_on(user, environment, teachers_only=False):
    """The owner (unless teachers_only) or a teacher of the course; the scheduler (no user) always."""
    if user is None or not getattr(user, "pk", None):
        return user is None
    if not Environment.objects.visible_to(user).filter(pk=environment.pk).exists():
        return False
    if environment.exercise.course.is_taught_by(user):
        return True
    return not teachers_only and environment.owner_id == user.pk


def is_secret_key(key):
    key = str(key).lower()
    return key in SECRET_KEYS or any(word in key for word in ("token", "password", "secret", "private"))


def register_secrets(ctx, access):
    """Whatever in the access dict could let someone in never reaches a job line."""
    for key, value in (access or {}).items():
        if isinstance(value, dict):
            register_secrets(ctx, value)
        elif isinstance(value, str) and str(key).lower() == "kubeconfig":
            # Its token and client key, not its whole text (whose lines are ordinary YAML).
            from clusters.inventory.credentials import kubeconfig_secret_values

            for secret in kubeconfig_secret_values(value):
                ctx.add_secret(secret)
        elif isinstance(value, str) and is_secret_key(key) and len(value) >= 6:
            ctx.add_secret(value)


def _set(environment, **fields):
    for name, value in fields.items():
        setattr(environment, name, value)
    Environment.objects.filter(pk=environment.pk).update(**fields)


def _message(exc):
    return str(exc).strip() or type(exc).__name__


def _started_by_a_student(ctx, environment):
    """Whoever started the job reads its error: a student gets their own words (labs/errors.py),
    a teacher of the course or the scheduler the detail."""
    user = ctx.job.user
    return user is not None and not environment.exercise.course.is_taught_by(user)


def _told_to(ctx, environment, exc):
    return student_message(exc) if _started_by_a_student(ctx, environment) else _message(exc)


def _record_failure(environment, exc, **fields):
    """Keep the detail for teachers and operators, show the student their own words."""
    detail = _message(exc)
    logger.warning("Lab environment %s (%s): %s", environment.pk, environment, detail)
    _set(environment, error=student_message(exc), error_detail=detail, **fields)


class LabJob(JobKind):
    queue = "default"
    target_model = Environment
    permission = "is_active"
    teachers_only = False

    def allowed(self, user, target=None):
        return isinstance(target, Environment) and may_act_on(user, target, self.teachers_only)

    def environment(self, ctx):
        environment = Environment.objects.select_related("exercise", "exercise__course", "owner", "cluster").get(pk=ctx.job.target_id)
        register_secrets(ctx, environment.access)
        return environment

    def describe(self, params):
        return ""


def _provider(environment, ctx):
    try:
        return provider_for(environment, ctx)
    except ImportError:
        raise LabSetupError(f"This panel has no provider for {environment.exercise.target} environments yet (an operator's fix).") from None


def _create(environment, ctx):
    """provider.create() with ports allocated first; returns the access dict."""
    exercise = environment.exercise
    cluster = environment.course.cluster_for(exercise.target)
    if cluster is None:
        raise LabSetupError(
            f"The course {environment.course} has no cluster for {exercise.target} exercises. "
            "A teacher or admin adds one (the course's Edit page, load_course --cluster NAME, or Django admin)."
        )
    _set(environment, cluster=cluster)
    ctx.line(f"{environment.name} on {cluster}", task="allocate")
    # Host ports are the provider's to allocate (labs.ports.allocate_ports): it knows which
    # ones the engine already publishes; lab-destroy releases them whatever happens.
    provider = _provider(environment, ctx)
    return provider.create()


def _cleanup_after_failed_create(environment, ctx):
    if environment.cluster_id is None:
        return
    try:
        _provider(environment, ctx).destroy()
        ctx.line("removed what was half-created", task="cleanup")
    except BaseException as exc:  # noqa: BLE001 - the launch's own error is what the student must see
        if not isinstance(exc, Exception):
            raise
        ctx.failed(f"could not remove what was half-created: {_message(exc)}; the expiry sweep will retry", task="cleanup")
        _set(environment, state=EnvironmentState.DESTROYING, expires_at=timezone.now())
        return
    release_ports(environment)


@register
class LabLaunch(LabJob):
    """Build a student's environment on the course's cluster and hand them its access."""

    name = "lab-launch"
    label = _("Launch lab environment")
    timeout = 900

    def run(self, ctx):
        environment = self.environment(ctx)
        if environment.state in (EnvironmentState.DESTROYED, EnvironmentState.DESTROYING):
            raise JobFailed("This environment was destroyed; launch a new one.")
        _set(environment, state=EnvironmentState.LAUNCHING, error="", error_detail="")
        ctx.progress(0, 2)
        try:
            access = _create(environment, ctx)
        except Exception as exc:
            message = _told_to(ctx, environment, exc)
            if not isinstance(exc, JobFailed):
                logger.exception("Launching environment %s raised", environment.pk)
            ctx.failed(message, task="create")
            _record_failure(environment, exc, state=EnvironmentState.FAILED)
            _cleanup_after_failed_create(environment, ctx)
            raise JobFailed(message) from None
        except BaseException:  # cancelled or timed out: nothing half-built may stay
            _set(environment, state=EnvironmentState.FAILED, error="Launch cancelled.")
            _cleanup_after_failed_create(environment, ctx)
            raise
        register_secrets(ctx, access)
        now = timezone.now()
        environment.access = access
        _set(environment, access_encrypted=environment.access_encrypted, state=EnvironmentState.READY, ready_at=now,
             expires_at=now + environment.exercise.ttl, error="", error_detail="")
        ctx.progress(2, 2)
        ctx.ok(f"ready until {environment.expires_at:%Y-%m-%d %H:%M} UTC", task="create")
        return {"environment": environment.pk, "expires_at": environment.expires_at.isoformat()}


def failed_results(checks, message):
    return [
        {"name": c["name"], "type": c["type"], "passed": False, "points": int(c.get("points", 1)), "earned": 0, "detail": message, "hint": c.get("hint", "")}
        for c in checks
    ]


@register
class LabCheck(LabJob):
    """Run the exercise's checks against the environment from outside and record the attempt."""

    name = "lab-check"
    label = _("Check lab work")

    @property
    def timeout(self):
        # a kubernetes.autoscale check may load the student's service for up to FILROUGE_LOADTEST_MAX_SECONDS
        return 300 + settings.LOADTEST_MAX_SECONDS

    def run(self, ctx):
        environment = self.environment(ctx)
        exercise = environment.exercise
        if environment.state != EnvironmentState.READY:
            raise JobFailed(f"The environment is {environment.get_state_display().lower()}, not ready: launch it first.")
        attempt = Attempt.objects.create(environment=environment, requested_by=ctx.job.user, job=ctx.job, max_score=exercise.max_score)
        total = len(exercise.checks)
        ctx.progress(0, total)
        done = []

        def on_result(result):
            done.append(result)
            text = f"{result['earned']}/{result['points']} {result['detail']}".strip()
            (ctx.ok if result["passed"] else ctx.failed)(text, task=result["name"])
            ctx.progress(len(done), total)

        try:
            with _provider(environment, ctx).check_target() as target:
                results, score = run_checks(exercise.checks, target, on_result=on_result)
        except Exception as exc:
            detail = f"Could not observe the environment: {_message(exc)}"
            logger.warning("Checking lab environment %s: %s", environment.pk, detail)
            shown = str(_("Could not observe your environment to check it. Try again in a few minutes; if it keeps failing, tell your teacher.")) \
                if _started_by_a_student(ctx, environment) else detail
            results = done + failed_results(exercise.checks[len(done):], shown)
            _finish_attempt(environment, attempt, results)
            raise JobFailed(shown) from None
        _finish_attempt(environment, attempt, results)
        return {"attempt": attempt.pk, "score": score, "max_score": exercise.max_score}


def _finish_attempt(environment, attempt, results):
    now = timezone.now()
    score = sum(result["earned"] for result in results)
    Attempt.objects.filter(pk=attempt.pk).update(results=results, score=score, finished_at=now)
    attempt.results = results
    record_checks(environment, attempt, now)
    _set(environment, score=score, last_checked_at=now)


@register
class LabReset(LabJob):
    """Tear the environment down and build it again from the exercise's start (same ports, same expiry)."""

    name = "lab-reset"
    label = _("Reset lab environment")
    timeout = 900

    def run(self, ctx):
        environment = self.environment(ctx)
        if environment.state not in (EnvironmentState.READY, EnvironmentState.FAILED):
            raise JobFailed(f"The environment is {environment.get_state_display().lower()}; only a ready or failed one can be reset.")
        if environment.cluster_id is None:
            raise JobFailed("This environment was never built; launch it instead.")
        _set(environment, state=EnvironmentState.LAUNCHING, error="", error_detail="")
        try:
            access = _provider(environment, ctx).reset()
        except Exception as exc:
            _record_failure(environment, exc, state=EnvironmentState.FAILED)
            raise JobFailed(_told_to(ctx, environment, exc)) from None
        register_secrets(ctx, access)
        environment.access = access
        now = timezone.now()
        expires_at = environment.expires_at or now + environment.exercise.ttl
        _set(environment, access_encrypted=environment.access_encrypted, state=EnvironmentState.READY, ready_at=now, expires_at=expires_at, score=None,
             error_detail="")
        ctx.ok("reset to the exercise's start", task="reset")
        return {"environment": environment.pk}


class DestroyParams(serializers.Serializer):
    reason = serializers.ChoiceField(choices=["asked", "expired"], default="asked", required=False)


@register
class LabDestroy(LabJob):
    """Remove everything labelled as the environment's and free its ports. Safe to run twice."""

    name = "lab-destroy"
    label = _("Destroy lab environment")
    queue = "high"  # expiry must not wait behind a class start's launches
    timeout = 600
    Params = DestroyParams

    def run(self, ctx, reason="asked"):
        environment = self.environment(ctx)
        if environment.state == EnvironmentState.DESTROYED:
            ctx.skipped("already destroyed", task="destroy")
            return {"environment": environment.pk, "already": True}
        _set(environment, state=EnvironmentState.DESTROYING)
        if reason == "expired":
            ctx.line("time is up", task="destroy")
        if environment.cluster_id is not None:
            try:
                _provider(environment, ctx).destroy()
            except Exception as exc:
                detail = f"Teardown failed, retried automatically: {_message(exc)}"
                logger.warning("Lab environment %s: %s", environment.pk, detail)
                _set(environment, error=str(_("Removing the environment failed; the panel tries again by itself.")), error_detail=detail)
                raise JobFailed(environment.error if _started_by_a_student(ctx, environment) else detail) from None
        release_ports(environment)
        _set(environment, state=EnvironmentState.DESTROYED, destroyed_at=timezone.now(), access_encrypted="", error="", error_detail="")
        ctx.ok("destroyed", task="destroy")
        return {"environment": environment.pk}


class ExtendParams(serializers.Serializer):
    minutes = serializers.IntegerField(min_value=1, max_value=int(MAX_TTL.total_seconds() // 60), default=60, required=False)


@register
class LabExtend(LabJob):
    """Give an environment more time (from now if it had none left); never past 7 days from now."""

    name = "lab-extend"
    label = _("Extend lab environment")
    queue = "high"
    timeout = 60
    Params = ExtendParams
    teachers_only = True

    def run(self, ctx, minutes=60):
        environment = self.environment(ctx)
        if not environment.is_live:
            raise JobFailed("The environment is destroyed; nothing to extend.")
        expires_at = extended_expiry(environment, minutes)
        _set(environment, expires_at=expires_at)
        if environment.state == EnvironmentState.READY:
            access = _provider(environment, ctx).extended()
            if access is not None:  # e.g. a Kubernetes token renewed to last until the new expiry
                register_secrets(ctx, access)
                environment.access = access
                _set(environment, access_encrypted=environment.access_encrypted)
        ctx.ok(f"now ends {expires_at:%Y-%m-%d %H:%M} UTC", task="extend")
        return {"expires_at": expires_at.isoformat()}


def extended_expiry(environment, minutes):
    now = timezone.now()
    start = max(environment.expires_at or now, now)
    return min(start + timedelta(minutes=minutes), now + MAX_TTL)


def environments_to_tear_down(now=None):
    """Expired live environments, and those whose teardown failed a while ago."""
    now = now or timezone.now()
    expired = list(Environment.objects.expired(now).values_list("pk", flat=True))
    stuck = list(Environment.objects.filter(state=EnvironmentState.DESTROYING).values_list("pk", flat=True))
    busy, retry_later = set(), set()
    if expired or stuck:
        jobs = Job.objects.filter(kind="lab-destroy", target_id__in=[str(pk) for pk in expired + stuck])
        busy = {int(pk) for pk in jobs.filter(status__in=ACTIVE_STATUSES).values_list("target_id", flat=True)}
        retry_later = {int(pk) for pk in jobs.filter(finished_at__gt=now - TEARDOWN_RETRY_AFTER).values_list("target_id", flat=True)}
    return [pk for pk in dict.fromkeys(expired + stuck) if pk not in busy and pk not in retry_later]


@every(settings.LABS_EXPIRY_SWEEP_INTERVAL, queue="high", timeout=120)
def sweep_expired_environments():
    """Queue a lab-destroy job for each environment past its time (and retry failed teardowns)."""
    from panel.audit.context import acting_as
    from panel.jobs.services import start_job

    started = []
    record_environments_running(timezone.now())
    with acting_as(user=None, source="job"):
        for environment in Environment.objects.filter(pk__in=environments_to_tear_down()).select_related("exercise__course"):
            job = start_job("lab-destroy", {"reason": "expired"}, None, target=environment)
            started.append(job.pk)
    if started:
        logger.info("Expiry sweep queued %d teardown(s)", len(started))
    return started


def active_lab_job(environment):
    return Job.objects.for_target(environment).filter(kind__in=LAB_KINDS, status__in=ACTIVE_STATUSES).first()


__all__ = ["LAB_KINDS", "active_lab_job", "environments_to_tear_down", "sweep_expired_environments"]

# Teachers' load tests on environments: a kind of its own, registered on import (labs/loadtest.py).
from . import loadtest  # noqa: E402,F401
