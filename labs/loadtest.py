"""Teachers' load tests on their lab environments: the `lab-load-test` job kind.

What is loaded is always the environment's own, taken from what the panel stored about it,
never a URL someone types:
- docker: one of its allocated host ports (`start.ports`, by name) on the lab Docker host, and
  only while a running container of the environment publishes it (the job asks the engine,
  and every few seconds during the load counts those containers for the chart);
- ssh: a port of the student's Debian host. The host publishes only its SSH ports, so the load
  goes through an SSH tunnel (`ssh -L`) over the panel's own sshd on that host, with the
  environment's pinned key: the figures include the tunnel (benchmarks/bench_loadtest.py);
- kubernetes: a Service of the student's namespace through the API server's service proxy,
  with the namespace's own credentials (the kubeconfig handed to the student): the load goes
  only where the student's rights go. The ready replicas of the Deployment(s) behind the
  Service and their HPA's current/desired replicas are read with the same credentials every
  few seconds (deployments.loadtest.jobs.ReplicaReader) and charted beside the load.

Who: teachers of the environment's course and admins (`Course.is_taught_by`). Never a student,
not even on their own environment: a load test takes a share of a host the whole class uses,
so the teacher decides when. Bounds: FILROUGE_LOADTEST_MAX_* and the lower
FILROUGE_LABS_LOADTEST_MAX_*, one load test at a time per environment.

The engine, the per-second log lines and samples are deployments.loadtest's (`run_load_test`);
the series point at the environment, so that its page charts them.
"""

import re

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from deployments.loadtest.jobs import LoadShapeParams, PeriodicReader, ReplicaReader, run_load_test
from panel.jobs.errors import JobFailed
from panel.jobs.kinds import JobKind, register
from panel.jobs.models import ACTIVE_STATUSES, Job

from .models import Environment, EnvironmentState
from .providers.ssh_image import PANEL_SSH_PORT

KIND = "lab-load-test"
SERVICE_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")  # a Service name (DNS-1035 label)
SERVICE_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$")  # a named port (IANA_SVC_NAME)
SSH_PORTS = (22, PANEL_SSH_PORT)


def docker_ports(environment):
    """{name: host port} of the environment's allocated ports (not the placeholders of busy ones)."""
    return {name: port for name, port in environment.port_map().items() if not name.startswith("busy-")}


class PublishingContainers(PeriodicReader):
    """Docker: how many running containers of the environment publish the loaded host port,
    every few seconds beside the load, as `filrouge_service_replicas_running`."""

    def __init__(self, ctx, connection, environment, port, **kwargs):
        super().__init__(ctx, **kwargs)
        self.connection, self.environment, self.port = connection, environment, port

    def read(self):
        from .providers.docker_project import label_filters

        try:
            containers = self.connection.api.containers(all=False, filters=label_filters(self.environment))
        except Exception as exc:  # noqa: BLE001 - the engine did not answer: no replicas line this time
            self._tell("replicas", exc)
            return {}
        count = sum(1 for container in containers if any(item.get("PublicPort") == self.port for item in container.get("Ports") or []))
        return {"filrouge_service_replicas_running": count}


def active_load_test(environment):
    return Job.objects.filter(kind=KIND, status__in=ACTIVE_STATUSES, params__environment=environment.pk).order_by("pk").first()


def describe_load_test(job):
    """What a lab load-test job loaded, for its row on the environment's page."""
    params = job.params or {}
    where = f"service/{params.get('service')}:{params.get('port')}" if params.get("service") else gettext("port %(port)s") % {"port": params.get("port")}
    return f"{params.get('method', 'GET')} {where} {params.get('path', '/')} · {params.get('concurrency')} × {params.get('duration')} s"


def summarize_load_test(job):
    """Its figures in one line (requests/s, p95, errors), or "" while it has none."""
    result = job.result if isinstance(job.result, dict) else {}
    if "rps" not in result:
        return ""
    p95 = f"{result['p95'] * 1000:.1f} ms" if result.get("p95") is not None else "–"
    return gettext("%(rps).1f req/s, p95 %(p95)s, %(errors)d errors of %(requests)d") % {
        "rps": result["rps"], "p95": p95, "errors": result.get("errors", 0), "requests": result.get("requests", 0)}


def resolve_target(environment, port, service):
    """What the load goes to: {"kind": ..., "port": ..., "service": ..., "shown": text}; or a
    ValidationError naming the field. Reads the database only (pages and the job share it)."""
    target = environment.exercise.target
    if target == "docker":
        ports = docker_ports(environment)
        if port not in ports:
            names = ", ".join(sorted(ports)) or gettext("none")
            raise serializers.ValidationError({"port": gettext("Give the name of one of this environment's ports (%(names)s).") % {"names": names}})
        return {"kind": "docker", "port": int(ports[port]), "name": port, "shown": f"{port} ({ports[port]})"}
    if target == "ssh":
        try:
            number = int(port)
        except (TypeError, ValueError):
            number = 0
        if not 1 <= number <= 65535:
            raise serializers.ValidationError({"port": gettext("Give a port number (1-65535) of the student's host.")})
        if number in SSH_PORTS:
            raise serializers.ValidationError({"port": gettext("Port %(port)d is an SSH server of the host, not a web application.") % {"port": number}})
        return {"kind": "ssh", "port": number, "shown": gettext("port %(port)d of the student's host") % {"port": number}}
    if target == "kubernetes":
        if not SERVICE_NAME.match(service or ""):
            raise serializers.ValidationError({"service": gettext("Give the name of a Service of the student's namespace.")})
        if str(port).isdigit():
            if not 1 <= int(port) <= 65535:
                raise serializers.ValidationError({"port": gettext("Give the Service's port: a number (1-65535) or its name.")})
        elif not SERVICE_PORT_NAME.match(str(port or "")):
            raise serializers.ValidationError({"port": gettext("Give the Service's port: a number (1-65535) or its name.")})
        return {"kind": "kubernetes", "port": str(port), "service": service, "shown": f"service/{service}:{port}"}
    raise serializers.ValidationError({"environment": gettext("This environment's kind cannot be load-tested.")})


class LabLoadTestParams(LoadShapeParams):
    environment = serializers.IntegerField(required=False, allow_null=True, default=None, help_text=_("A lab environment of a course you teach."))
    port = serializers.CharField(max_length=63, help_text=_(
        "Docker: the name of one of the environment's ports; SSH: a port number on the student's host; Kubernetes: the Service's port."))
    service = serializers.CharField(max_length=63, required=False, allow_blank=True, default="", help_text=_("Kubernetes: a Service of the student's namespace."))

    def to_internal_value(self, data):
        # Nothing but these fields: in particular no URL, whatever a client sends.
        if hasattr(data, "keys"):
            unknown = sorted(str(key) for key in data.keys() if key not in self.fields)
            if unknown:
                raise serializers.ValidationError({key: [gettext(
                    "Not a parameter of a lab load test: it loads the environment's own ports only (environment, port, service).")] for key in unknown})
        return super().to_internal_value(data)

    def validate_concurrency(self, value):
        value = super().validate_concurrency(value)
        if value > settings.LABS_LOADTEST_MAX_CONCURRENCY:
            raise serializers.ValidationError(gettext("At most %(n)d concurrent clients on a lab environment (FILROUGE_LABS_LOADTEST_MAX_CONCURRENCY).")
                                              % {"n": settings.LABS_LOADTEST_MAX_CONCURRENCY})
        return value

    def validate_rate(self, value):
        value = super().validate_rate(value)
        if value is not None and value > settings.LABS_LOADTEST_MAX_RATE:
            raise serializers.ValidationError(gettext("At most %(n)d requests per second on a lab environment (FILROUGE_LABS_LOADTEST_MAX_RATE).")
                                              % {"n": settings.LABS_LOADTEST_MAX_RATE})
        return value

    def validate_duration(self, value):
        value = super().validate_duration(value)
        if value > settings.LABS_LOADTEST_MAX_SECONDS:
            raise serializers.ValidationError(gettext("At most %(n)d seconds on a lab environment (FILROUGE_LABS_LOADTEST_MAX_SECONDS).")
                                              % {"n": settings.LABS_LOADTEST_MAX_SECONDS})
        return value

    def validate(self, data):
        user, target = self.context.get("user"), self.context.get("target")
        if isinstance(target, Environment):
            if data["environment"] not in (None, target.pk):
                raise serializers.ValidationError({"environment": gettext("This is not the environment the load test was started on.")})
            data["environment"] = target.pk
        if data["environment"] is None:
            raise serializers.ValidationError({"environment": gettext("Give the lab environment to load.")})
        environment = (Environment.objects.visible_to(user).select_related("exercise__course", "cluster", "owner")
                       .filter(pk=data["environment"]).first() if user is not None else None)
        if environment is None:
            raise serializers.ValidationError({"environment": gettext("No such environment.")})
        if not environment.course.is_taught_by(user):
            # Its owner sees it, but loading it is the teacher's decision.
            raise PermissionDenied(gettext("Only a teacher of this environment's course can load it."))
        if environment.state != EnvironmentState.READY:
            raise serializers.ValidationError({"environment": gettext("The environment is %(state)s: only a ready environment can be loaded.")
                                               % {"state": environment.get_state_display().lower()}})
        running = active_load_test(environment)
        if running is not None:
            raise serializers.ValidationError({"environment": gettext("Load test #%(job)d is still running on this environment; wait for it or cancel it.")
                                               % {"job": running.pk}})
        resolve_target(environment, data["port"], data["service"])
        return data


@register
class LabLoadTest(JobKind):
    """Put one of a lab environment's own ports (or Services) under HTTP load and chart it on the environment."""

    name = KIND
    label = _("Lab load test")
    description = _("A teacher sends HTTP requests to a student's environment for a while and charts requests/s, latency and errors.")
    queue = "default"
    permission = "is_teacher"
    target_model = Environment
    Params = LabLoadTestParams

    @property
    def timeout(self):
        return min(settings.LOADTEST_MAX_SECONDS, settings.LABS_LOADTEST_MAX_SECONDS) + 120

    def allowed(self, user, target=None):
        if not getattr(user, "is_teacher", False):
            return False
        return target is None or (isinstance(target, Environment) and target.course.is_taught_by(user))

    def describe(self, params):
        where = f"service/{params['service']}:{params.get('port')}" if params.get("service") else params.get("port", "")
        return f"{params.get('method', 'GET')} {where}{params.get('path', '')}"

    def run(self, ctx, environment, port, service, path, method, concurrency, rate, duration, expected_status):
        environment = Environment.objects.select_related("exercise__course", "cluster", "owner").get(pk=environment)
        if environment.state != EnvironmentState.READY:
            raise JobFailed(f"The environment is {environment.state} now: only a ready environment can be loaded.")
        try:
            target = resolve_target(environment, port, service)
        except serializers.ValidationError as exc:
            raise JobFailed(" ".join(str(message) for messages in exc.detail.values() for message in messages)) from None
        shape = {"method": method, "concurrency": concurrency, "rate": rate, "duration": duration, "expected_status": expected_status}
        common = {"labels": {"environment": environment.name}, "owner": {"obj": environment}, **shape}
        ctx.line(f"{environment} ({environment.exercise.target}): {target['shown']}", task="target")
        if target["kind"] == "docker":
            return self._docker(ctx, environment, target, path, common)
        if target["kind"] == "ssh":
            return self._ssh(ctx, environment, target, path, common)
        return self._kubernetes(ctx, environment, target, path, common)

    def _docker(self, ctx, environment, target, path, common):
        from clusters.drivers import docker as driver

        from .providers.docker_project import access_host, label_filters

        if environment.cluster is None:
            raise JobFailed("This environment has no Docker host any more.")
        with driver.connect(environment.cluster, ctx=ctx) as connection:
            with driver.docker_errors(f"the lab Docker host {connection.description}"):
                containers = connection.api.containers(all=False, filters=label_filters(environment))
            published = {item.get("PublicPort") for container in containers for item in container.get("Ports") or []}
            if target["port"] not in published:
                raise JobFailed(f"No running container of this environment publishes port {target['port']} ({target['name']}): "
                                "the student has not started what answers there.")
            host = access_host(environment.cluster)
            url = f"http://{host}:{target['port']}{path}"
            replicas = PublishingContainers(ctx, connection, environment, target["port"], owner=common["owner"], ctx_lines=True, host=host)
            return run_load_test(ctx, url, host=host, extra_samples=replicas.samples, **common)

    def _ssh(self, ctx, environment, target, path, common):
        from .providers import provider_for

        provider = provider_for(environment, ctx)
        connection = provider.panel_connection()
        try:
            with connection.forward_local("127.0.0.1", target["port"]) as forward:
                forward.check()
                local_host, local_port = forward.address
                ctx.line(f"through the panel's SSH tunnel ({connection.target.address}:{connection.target.port}) to port {target['port']} "
                         "of the host: the figures include the tunnel", task="target")
                result = run_load_test(ctx, f"http://{local_host}:{local_port}{path}", host=environment.name,
                                       shown_url=f"http://{environment.name}:{target['port']}{path}", **common)
                result["tunnel_refused"] = forward.refused
                return result
        finally:
            connection.close()

    def _kubernetes(self, ctx, environment, target, path, common):
        from clusters.drivers import kubernetes as kube_driver

        from .jobs import register_secrets

        access = environment.access
        register_secrets(ctx, access)
        kubeconfig, namespace = access.get("kubeconfig"), access.get("namespace") or environment.name
        if not kubeconfig:
            raise JobFailed("This environment has no kubeconfig: launch or reset it first.")
        # The namespace's own credentials: the proxy answers only what the student's rights allow.
        base_url, headers, ssl_context = kube_driver.service_proxy_target(kubeconfig, namespace, target["service"], target["port"], ctx=ctx)
        for value in (headers or {}).values():
            ctx.add_secret(str(value).split(" ", 1)[-1])
        url = f"{base_url.rstrip('/')}{path}"
        # The Deployment(s) behind the Service and their HPA, every few seconds, with the same
        # credentials: what the student's Role does not let them read is just not charted.
        replicas = ReplicaReader(ctx, lambda: kube_driver.connect_kubeconfig(kubeconfig, ctx=ctx), namespace, owner=common["owner"],
                                 service_name=target["service"], ctx_lines=True, host=namespace)
        return run_load_test(ctx, url, host=namespace, shown_url=f"service/{target['service']}:{target['port']} in {namespace}{path}",
                             headers=headers, ssl_context=ssl_context, engine="aiohttp", extra_samples=replicas.samples, **common)
