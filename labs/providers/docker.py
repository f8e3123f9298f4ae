"""Docker environments: a project per student on a lab Docker host (the environment's cluster).

create(): the project's own bridge network (labelled, small subnet), the host ports named
in `exercise.start.ports` (allocated in the database, re-drawn when the engine already
publishes one), and whatever `exercise.start.compose` asks to run (a compose file written
by the teacher, guarded exactly like a student's). The student gets:
    {"docker": {"project": <project>, "network": <network>, "subnet": ...},
     "ports": {name: host port}, "host": <where the ports answer>}
destroy(): every container, network and volume labelled filrouge.env=<id> and
filrouge.lab=<LABS_INSTANCE>, then the port allocations. Safe twice.
"""

from django.utils.translation import gettext as _

from clusters.drivers import docker as driver

from labs.providers import docker_project as project
from ..checks.base import CheckTarget
from labs.compose.guard import ComposeRefused, guard_compose
from labs.providers.docker_images import ensure_lab_image
from ..errors import LabSetupError
from ..ports import allocate_ports, release_ports
from .base import Provider

PORT_REDRAWS = 20


def allowed_registries(exercise):
    """Registries whose images a student may pull: the exercise's `start.registries` plus the operator's list."""
    from django.conf import settings

    start = exercise.start or {}
    named = start.get("registries") or ([start["registry"]] if start.get("registry") else [])
    return tuple(named) + tuple(getattr(settings, "LABS_DOCKER_ALLOWED_REGISTRIES", ()))


class DockerProvider(Provider):
    target = "docker"

    @property
    def cluster(self):
        cluster = self.environment.cluster
        if cluster is None:
            raise LabSetupError(_("This environment has no Docker host. Add a Docker cluster to the course, then launch again."))
        return cluster

    def connect(self):
        return driver.connect(self.cluster, ctx=self.ctx)

    def create(self):
        environment, exercise = self.environment, self.environment.exercise
        start = exercise.start or {}
        with self.connect() as connection:
            self.ctx.line(_("Docker host: %(where)s") % {"where": connection.description}, task="connect")
            for image in start.get("images") or []:
                ensure_lab_image(connection, str(image), self.ctx)
            network = project.ensure_network(connection, environment, self.ctx)
            ports = self._allocate(connection, [str(name) for name in start.get("ports") or []])
            if ports:
                self.ctx.ok(_("ports: %(ports)s") % {"ports": ", ".join(f"{name}={port}" for name, port in ports.items())}, task="ports")
            if start.get("compose"):
                try:
                    plan = guard_compose(start["compose"], ports, exercise.quota, allowed_registries(exercise), filename=f"{exercise.slug} (start.compose)")
                except (ComposeRefused, ValueError) as exc:
                    raise LabSetupError(_("The exercise's start.compose cannot run: %(error)s") % {"error": exc}) from None
                project.run_plan(connection, environment, plan, allowed_registries(exercise), self.ctx)
        return {
            "docker": {"project": project.project_name(environment), "network": network["name"], "subnet": network["subnet"]},
            "ports": ports,
            "host": project.access_host(self.cluster),
        }

    def _allocate(self, connection, names):
        """{name: port}; a port the engine already publishes (or that is bound on a local host) is dropped and re-drawn."""
        if not names:
            return {}
        in_use = project.engine_ports_in_use(connection)
        local = connection.description.startswith("unix://")
        for _attempt in range(PORT_REDRAWS):
            ports = allocate_ports(self.environment, self.cluster, names)
            busy = [name for name, port in ports.items() if port in in_use or (local and not project.host_port_free(project.publish_ip(), port))]
            if not busy:
                return ports
            for name in busy:
                self.ctx.line(_("port %(port)s is already in use on the host; taking another") % {"port": ports[name]}, task="ports")
                # Keep the busy port's row under a placeholder name so the next draw cannot pick it again.
                self.environment.allocated_ports.filter(name=name).update(name=f"busy-{ports[name]}")
        raise LabSetupError(_("Could not find free host ports on %(where)s after %(n)d tries. Widen FILROUGE_LABS_PORT_RANGE.") % {"where": connection.description, "n": PORT_REDRAWS})

    def destroy(self):
        environment = self.environment
        if environment.cluster_id is not None:
            with self.connect() as connection:
                project.teardown(connection, environment, self.ctx)
        release_ports(environment)

    def reset(self):
        # Keep the same ports across a reset, so the student's notes stay right.
        if self.environment.cluster_id is not None:
            with self.connect() as connection:
                project.teardown(connection, self.environment, self.ctx)
        return self.create()

    def check_target(self):
        connection = self.connect()
        host = project.access_host(self.cluster)
        return CheckTarget(
            environment=self.environment,
            docker=connection,
            http_base=f"http://{host}",
            labels=self.environment.labels(),
            cleanup=[connection.close],
        )
