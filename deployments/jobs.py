"""Job kinds that act on services, and the periodic refresh of their observed state.

Each kind opens the backend of the service's cluster (deployments/backends), lets it do
the work, and records the outcome on the Service and Release rows.
"""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from clusters.models import Cluster
from panel.jobs.errors import JobFailed
from panel.jobs.kinds import JobKind, register

from .backends.base import backend_for
from .models import Release, ReleaseStatus, Service, ServiceStatus
from .releases import create_release, mark


def store_observation(service, backend):
    observation = backend.observe(service)
    Service.objects.filter(pk=service.pk).update(observed=observation.as_dict(), observed_at=timezone.now())
    return observation


class ServiceJob(JobKind):
    queue = "default"
    permission = "is_operator"
    target_model = Service

    def service(self, ctx):
        service = Service.objects.select_related("cluster", "cluster__credential", "cluster__server", "current_release", "registry_credential").get(pk=ctx.job.target_id)
        # Any line of any service job may echo a secret (a container printing its env): redact them all.
        for value in service.get_secrets().values():
            ctx.add_secret(value)
        return service


class DeployParams(serializers.Serializer):
    release = serializers.IntegerField(help_text=_("Id of the release to deploy (made by the deploy action)."))

    def validate_release(self, value):
        target = self.context.get("target")
        if not Release.objects.filter(pk=value, service=target).exists():
            raise serializers.ValidationError(_("No such release for this service."))
        return value


@register
class Deploy(ServiceJob):
    """Roll a release out: health-gated batches, automatic rollback on failure."""

    name = "service-deploy"
    label = _("Deploy")
    timeout = 1800
    Params = DeployParams

    def run(self, ctx, release):
        release = Release.objects.select_related("service").get(pk=release)
        service = self.service(ctx)
        release.service = service
        previous = service.current_release
        if previous is not None and previous.pk == release.pk:
            previous = None
        Service.objects.filter(pk=service.pk).update(status=ServiceStatus.DEPLOYING)
        ctx.line(f"deploying {service} revision {release.revision} ({release.spec['image']}:{release.spec['tag']}) on {service.cluster}", task="deploy")
        try:
            with backend_for(service.cluster, ctx, on_change=lambda changed: store_observation(changed, backend)) as backend:
                try:
                    backend.deploy(release, previous)
                finally:
                    store_observation(service, backend)
        except JobFailed:
            mark(release, ReleaseStatus.FAILED)
            Service.objects.filter(pk=service.pk).update(status=ServiceStatus.FAILED)
            raise
        mark(release, ReleaseStatus.DEPLOYED)
        if previous is not None:
            mark(previous, ReleaseStatus.SUPERSEDED)
        Service.objects.filter(pk=service.pk).update(status=ServiceStatus.DEPLOYED, current_release=release)
        return {"revision": release.revision, "replicas": release.spec["replicas"]}


class ScaleParams(serializers.Serializer):
    replicas = serializers.IntegerField(min_value=0, max_value=1000)


@register
class Scale(ServiceJob):
    """Change the number of replicas of the current release."""

    name = "service-scale"
    label = _("Scale")
    timeout = 900
    Params = ScaleParams

    def run(self, ctx, replicas):
        service = self.service(ctx)
        if service.current_release is None:
            raise JobFailed(f"{service} has never been deployed; deploy it before scaling.")
        with backend_for(service.cluster, ctx) as backend:
            try:
                backend.scale(service, replicas)
            finally:
                store_observation(service, backend)
        # The desired count is part of the spec: the next deploy keeps it.
        service.spec = {**service.spec, "replicas": replicas}
        Service.objects.filter(pk=service.pk).update(spec=service.spec, status=ServiceStatus.DEPLOYED if replicas else ServiceStatus.STOPPED)
        return {"replicas": replicas}


class _SimpleServiceJob(ServiceJob):
    verb = ""
    final_status = None

    def run(self, ctx):
        service = self.service(ctx)
        with backend_for(service.cluster, ctx) as backend:
            try:
                getattr(backend, self.verb)(service)
            finally:
                if self.verb != "remove":
                    store_observation(service, backend)
        if self.final_status:
            Service.objects.filter(pk=service.pk).update(status=self.final_status)
        if self.verb == "remove":
            Service.objects.filter(pk=service.pk).update(observed={"desired": 0, "running": 0, "healthy": 0, "replicas": []}, observed_at=timezone.now())
        return {"service": str(service)}


@register
class Restart(_SimpleServiceJob):
    """Restart every replica, a batch at a time."""

    name = "service-restart"
    label = _("Restart")
    timeout = 900
    verb = "restart"


@register
class Stop(_SimpleServiceJob):
    """Stop every replica; the spec and data stay."""

    name = "service-stop"
    label = _("Stop")
    timeout = 600
    verb = "stop"
    final_status = ServiceStatus.STOPPED


@register
class Remove(_SimpleServiceJob):
    """Remove the service from its cluster: replicas, volumes, secrets, an emptied network."""

    name = "service-remove"
    label = _("Remove")
    timeout = 600
    verb = "remove"
    final_status = ServiceStatus.REMOVED


class LogsParams(serializers.Serializer):
    tail = serializers.IntegerField(min_value=0, max_value=10000, default=100)
    follow_seconds = serializers.IntegerField(min_value=0, max_value=3600, default=0, help_text=_("Keep following new lines this long (0: do not follow)."))


@register
class Logs(ServiceJob):
    """The last lines of every replica, then new lines live for a while."""

    name = "service-logs"
    label = _("Logs")
    timeout = 3700
    Params = LogsParams

    def run(self, ctx, tail, follow_seconds):
        service = self.service(ctx)
        with backend_for(service.cluster, ctx) as backend:
            count = backend.logs(service, tail=tail, follow_seconds=follow_seconds)
        return {"lines": count}


@register
class Stats(ServiceJob):
    """One sample of CPU, memory and network per replica, kept on the service."""

    name = "service-stats"
    label = _("Container stats")
    timeout = 300

    def run(self, ctx):
        service = self.service(ctx)
        with backend_for(service.cluster, ctx) as backend:
            rows = backend.stats(service)
        for row in rows:
            ctx.ok(
                f"cpu {row['cpu_percent']:.1f}%  memory {row['memory_bytes'] / 1048576:.1f} MiB"
                f"{' of ' + format(row['memory_limit_bytes'] / 1048576, '.0f') + ' MiB' if row['memory_limit_bytes'] else ''}"
                f"  rx {row['rx_bytes']} B  tx {row['tx_bytes']} B",
                host=row["name"], task="stats",
            )
        observed = dict(Service.objects.get(pk=service.pk).observed or {})
        observed["stats"] = {"at": timezone.now().isoformat(), "rows": rows}
        Service.objects.filter(pk=service.pk).update(observed=observed)
        return {"containers": len(rows)}


@register
class Observe(ServiceJob):
    """Read the service's replicas (and, on Kubernetes, its events) now and keep them on the service."""

    name = "service-observe"
    label = _("Observe")
    timeout = 120

    def run(self, ctx):
        service = self.service(ctx)
        with backend_for(service.cluster, ctx) as backend:
            observation = store_observation(service, backend)
        ctx.ok(f"{observation.healthy}/{observation.desired} healthy, {observation.running} running", task="observe")
        return {"desired": observation.desired, "running": observation.running, "healthy": observation.healthy}


class StackParams(serializers.Serializer):
    project = serializers.CharField(max_length=63)


@register
class StackDeploy(JobKind):
    """Deploy every service of a project on a cluster, dependencies first (a compose stack)."""

    name = "stack-deploy"
    label = _("Deploy a project")
    queue = "default"
    timeout = 3600
    permission = "is_operator"
    target_model = Cluster
    Params = StackParams

    def run(self, ctx, project):
        cluster = Cluster.objects.select_related("credential", "server").get(pk=ctx.job.target_id)
        services = {s.name: s for s in Service.objects.filter(cluster=cluster, project=project).select_related("current_release", "registry_credential")}
        if not services:
            raise JobFailed(f"Project {project} has no services on {cluster}. Import a compose file first.")
        order = dependency_order({name: s.spec.get("depends_on") or [] for name, s in services.items()})
        ctx.line(f"deploying project {project} on {cluster}: {', '.join(order)}", task="stack")
        ctx.progress(0, len(order))
        deployed = []
        with backend_for(cluster, ctx, on_change=lambda changed: store_observation(changed, backend)) as backend:
            for step, name in enumerate(order, start=1):
                service = services[name]
                service.cluster = cluster
                for value in service.get_secrets().values():
                    ctx.add_secret(value)
                release = create_release(service, ctx.user, note=f"project {project} deploy (job #{ctx.job.pk})")
                Release.objects.filter(pk=release.pk).update(job=ctx.job)
                release.service = service
                previous = service.current_release
                Service.objects.filter(pk=service.pk).update(status=ServiceStatus.DEPLOYING)
                ctx.line(f"{name}: revision {release.revision}", task="stack")
                try:
                    backend.deploy(release, previous)
                except JobFailed as exc:
                    mark(release, ReleaseStatus.FAILED)
                    Service.objects.filter(pk=service.pk).update(status=ServiceStatus.FAILED)
                    store_observation(service, backend)
                    raise JobFailed(f"Service {name} failed: {exc} Deployed before it: {', '.join(deployed) or 'none'}.") from None
                mark(release, ReleaseStatus.DEPLOYED)
                if previous is not None:
                    mark(previous, ReleaseStatus.SUPERSEDED)
                Service.objects.filter(pk=service.pk).update(status=ServiceStatus.DEPLOYED, current_release=release)
                service.current_release = release
                store_observation(service, backend)
                deployed.append(name)
                ctx.progress(step, len(order))
        return {"project": project, "services": deployed}


def dependency_order(depends_on):
    """Services sorted so that each comes after what it depends on; a cycle is refused."""
    order, state = [], {}

    def visit(name, path):
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise JobFailed(f"depends_on forms a cycle: {' -> '.join([*path, name])}. Break it in the compose file.")
        state[name] = "visiting"
        for dependency in depends_on.get(name, []):
            if dependency in depends_on:
                visit(dependency, [*path, name])
        state[name] = "done"
        order.append(name)

    for name in sorted(depends_on):
        visit(name, [])
    return order
