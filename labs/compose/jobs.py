"""The `lab-compose` job: run a student's compose file inside their own Docker environment.

The file is guarded twice: when the job is asked for (the Params serializer, so a refused
file is a form error or a 400 and nothing is queued) and again on the worker, right before
anything starts (the exercise or the allocation may have changed in between).
"""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from clusters.drivers import docker as driver
from panel.jobs.errors import JobFailed
from panel.jobs.kinds import JobKind, register
from panel.jobs.models import ACTIVE_STATUSES, Job

from labs.providers import docker_project
from labs.compose.guard import ComposeRefused, guard_compose
from labs.models import Environment, EnvironmentState
from labs.providers.docker import allowed_registries

MAX_COMPOSE_BYTES = 64 * 1024


def environment_ports(environment):
    """{name: host port} of the ports the exercise names (placeholders of busy ports left out)."""
    names = [str(name) for name in (environment.exercise.start or {}).get("ports") or []]
    held = environment.port_map()
    return {name: held[name] for name in names if name in held}


def guard_for(environment, text, filename="compose.yaml"):
    return guard_compose(text, environment_ports(environment), environment.exercise.quota, allowed_registries(environment.exercise), filename=filename)


class ComposeParams(serializers.Serializer):
    compose = serializers.CharField(
        max_length=MAX_COMPOSE_BYTES, trim_whitespace=False,
        help_text=gettext_lazy("The compose file to run in the environment (YAML)."),
    )
    filename = serializers.CharField(max_length=100, required=False, default="compose.yaml")

    def validate(self, data):
        environment = self.context.get("target")
        if environment is None:
            raise serializers.ValidationError(_("No environment was given."))
        if environment.exercise.target != "docker":
            raise serializers.ValidationError(_("Only Docker environments run compose files."))
        if environment.state != EnvironmentState.READY:
            raise serializers.ValidationError(_("The environment is %(state)s; it must be ready.") % {"state": environment.get_state_display()})
        from labs.jobs import active_lab_job

        busy = active_lab_job(environment) or Job.objects.for_target(environment).filter(kind="lab-compose", status__in=ACTIVE_STATUSES).first()
        if busy is not None:
            raise serializers.ValidationError(_("Job #%(job)s (%(kind)s) is still running on this environment; wait for it to finish.") % {"job": busy.pk, "kind": busy.kind})
        try:
            guard_for(environment, data["compose"], data.get("filename") or "compose.yaml")
        except ComposeRefused as exc:
            raise serializers.ValidationError({"compose": exc.problems}) from None
        except ValueError as exc:  # ComposeError: unreadable YAML, with its line and column
            raise serializers.ValidationError({"compose": [str(exc)]}) from None
        return data


@register
class LabCompose(JobKind):
    name = "lab-compose"
    label = gettext_lazy("Run a compose file in a lab environment")
    description = gettext_lazy("Starts the services of a student's compose file inside their own Docker project.")
    queue = "default"
    timeout = 600
    Params = ComposeParams
    target_model = Environment

    def allowed(self, user, target=None):
        # Only the environment's owner works in it (admins may, to help).
        if target is None or not getattr(user, "is_authenticated", False):
            return False
        return target.owner_id == user.pk or bool(getattr(user, "is_admin", False))

    def describe(self, params):
        return params.get("filename") or "compose.yaml"

    def run(self, ctx, compose, filename="compose.yaml"):
        environment = Environment.objects.select_related("exercise", "exercise__course", "cluster", "owner").get(pk=ctx.job.target_id)
        if environment.state != EnvironmentState.READY:
            raise JobFailed(_("The environment is %(state)s; launch it again before running a compose file.") % {"state": environment.get_state_display()})
        if environment.cluster is None:
            raise JobFailed(_("This environment has no Docker host."))
        try:
            plan = guard_for(environment, compose, filename)
        except ComposeRefused as exc:
            for problem in exc.problems:
                ctx.failed(problem, task="guard")
            raise JobFailed(_("The compose file was refused (%(count)d problem(s)); nothing was started.") % {"count": len(exc.problems)}) from None
        except ValueError as exc:
            raise JobFailed(str(exc)) from None
        ctx.ok(_("%(count)d service(s) accepted: %(names)s") % {"count": len(plan.services), "names": ", ".join(s.name for s in plan.services)}, task="guard")
        for note in plan.notes:
            ctx.line(note, task="guard")
        ctx.progress(0, len(plan.services))
        with driver.engine(environment.cluster, ctx=ctx) as connection:
            docker_project.run_plan(connection, environment, plan, allowed_registries(environment.exercise), ctx)
        return {
            "services": [s.name for s in plan.services],
            "ports": {p["name"]: p["published"] for s in plan.services for p in s.ports},
        }
