"""The backend interface: one class per cluster kind, chosen through BACKENDS.

A backend is opened for one cluster inside a job (`with backend_for(cluster, ctx) as
backend:`) and offers the same verbs on every kind. Each verb writes its story through
`ctx`, raises `clusters.drivers.base` errors (JobFailed) with a message a person can act
on, and never touches the database except through the objects it is given; the job
kinds in deployments/jobs.py record the outcome.

To add a kind (kubernetes): subclass Backend, implement the verbs, add its dotted path to
BACKENDS.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from django.utils.module_loading import import_string

from clusters.drivers.base import DriverError


@dataclass
class Observation:
    """What a backend sees of one service: desired, running and healthy replicas, per replica rows."""

    desired: int
    running: int = 0
    healthy: int = 0
    replicas: list = field(default_factory=list)  # dicts: name, state, health, image, release, ports
    extra: dict = field(default_factory=dict)

    def as_dict(self):
        return {"desired": self.desired, "running": self.running, "healthy": self.healthy, "replicas": self.replicas, **self.extra}


class Backend(ABC):
    kind = ""

    def __init__(self, cluster, ctx, on_change=None):
        self.cluster = cluster
        self.ctx = ctx
        # Called with the service whenever replicas changed during a rollout, so the job can
        # refresh the observed state that the service page shows live.
        self.on_change = on_change

    def changed(self, service):
        if self.on_change is not None:
            self.on_change(service)

    # Opening and closing the connection to the cluster.
    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()

    @abstractmethod
    def open(self):
        """Connect to the cluster (raises HostUnreachable, AuthFailed...)."""

    @abstractmethod
    def close(self):
        """Release the connection."""

    # The verbs.
    @abstractmethod
    def deploy(self, release, previous=None):
        """Make the cluster run `release`, replacing `previous` with a health-gated rolling update.

        On a failed health check with failure_action=rollback, restore `previous` and raise
        JobFailed saying why; the previous release keeps serving.
        """

    @abstractmethod
    def scale(self, service, replicas):
        """Run `replicas` copies of the service's current release."""

    def rollback(self, release, previous=None):
        """Re-apply an earlier release's spec (as the new revision `release`)."""
        return self.deploy(release, previous)

    @abstractmethod
    def restart(self, service):
        """Restart every replica, `update.parallelism` at a time, health-gated."""

    @abstractmethod
    def stop(self, service):
        """Stop every replica but keep the service's definition and data."""

    @abstractmethod
    def remove(self, service):
        """Remove everything of the service: replicas, its volumes, secrets, an emptied project network."""

    @abstractmethod
    def logs(self, service, tail=100, follow_seconds=0):
        """Write the last `tail` lines of each replica through ctx, then follow for `follow_seconds`."""

    @abstractmethod
    def stats(self, service):
        """One sample of CPU, memory and network per replica: a list of dicts."""

    @abstractmethod
    def observe(self, service):
        """An Observation of the service, from one list call."""


# Cluster kind -> backend class, imported on first use (a kind's SDK loads only when needed).
BACKENDS = {
    "docker": "deployments.backends.docker.DockerBackend",
    "swarm": "deployments.backends.swarm.SwarmBackend",
    "kubernetes": "deployments.backends.kubernetes.backend.KubernetesBackend",
}


def backend_for(cluster, ctx, on_change=None):
    """The backend of this cluster's kind (not yet opened: use it in a `with`)."""
    try:
        path = BACKENDS[cluster.kind]
    except KeyError:
        raise DriverError(f"Cluster {cluster.name} is of kind {cluster.kind}, which has no deploy backend yet.") from None
    return import_string(path)(cluster, ctx, on_change=on_change)
