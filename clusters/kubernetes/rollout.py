"""Follow a Deployment's rollout and say how it goes, or why it stopped.

`follow_rollout()` watches one Deployment (a watch with resourceVersion and
timeoutSeconds, falling back to reading it again when the watch cannot be used) and
writes "updated u/d, ready r/d, available a/d" plus the job's progress as soon as the
API reports a change. When the rollout cannot finish it raises RolloutFailed with the
reason read from the pods: one list of the Deployment's pods by its label selector,
never one request per pod.

Only job code calls this (through deployments/backends/kubernetes/backend.py or the manifests
jobs): it talks to the cluster.
"""

import time

from kubernetes import client as kube_client
from kubernetes import watch as kube_watch
from kubernetes.client.rest import ApiException

from clusters.drivers.base import CommandTimeout, DriverError, NotFound
from clusters.drivers.kubernetes import CONNECT_TIMEOUT, QuotaExceeded, api_errors, describe

# Pod waiting reasons that mean the rollout will not finish by itself.
BAD_WAITING_REASONS = ("ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff", "InvalidImageName",
                       "CreateContainerConfigError", "CreateContainerError", "RunContainerError")
# How long one watch request lasts before we read the pods and watch again.
WATCH_SLICE_SECONDS = 5


class RolloutFailed(DriverError):
    """A rollout stopped: bad image, crashing container, unschedulable pods, progress deadline."""


class RolloutTimedOut(RolloutFailed, CommandTimeout):
    """The rollout did not finish within the job's time."""


def rollout_status(deployment):
    """(updated, ready, available, desired, current, complete) of a V1Deployment."""
    spec, status, meta = deployment.spec, deployment.status, deployment.metadata
    desired = spec.replicas if spec.replicas is not None else 1
    updated = (status.updated_replicas or 0) if status else 0
    ready = (status.ready_replicas or 0) if status else 0
    available = (status.available_replicas or 0) if status else 0
    current = (status.replicas or 0) if status else 0
    observed = (status.observed_generation or 0) if status else 0
    complete = observed >= (meta.generation or 0) and updated >= desired and current <= updated and available >= updated
    return updated, ready, available, desired, current, complete


def deadline_exceeded(deployment):
    for condition in (deployment.status.conditions if deployment.status else None) or []:
        if condition.type == "Progressing" and condition.status == "False" and condition.reason == "ProgressDeadlineExceeded":
            return condition.message or "ProgressDeadlineExceeded"
    return None


def replica_failure(deployment):
    """The ReplicaFailure condition's message (pods refused: quota, admission), or None."""
    for condition in (deployment.status.conditions if deployment.status else None) or []:
        if condition.type == "ReplicaFailure" and condition.status == "True":
            return condition.message or condition.reason or "ReplicaFailure"
    return None


def pod_problems(api_client, namespace, deployment):
    """Why the Deployment's pods are not becoming ready, from one pod list: a list of sentences."""
    selector = ",".join(f"{key}={value}" for key, value in sorted(((deployment.spec.selector.match_labels) or {}).items()))
    with api_errors(f"the Kubernetes API at {describe(api_client)}"):
        pods = kube_client.CoreV1Api(api_client).list_namespaced_pod(namespace, label_selector=selector).items
    problems = []
    for pod in pods:
        name = pod.metadata.name
        status = pod.status
        if status is None:
            continue
        for condition in status.conditions or []:
            if condition.type == "PodScheduled" and condition.status == "False" and condition.reason == "Unschedulable":
                problems.append(f"pod {name} is Unschedulable: {condition.message or 'no node fits'}")
        for container in (status.init_container_statuses or []) + (status.container_statuses or []):
            waiting = container.state.waiting if container.state else None
            if waiting is None or waiting.reason not in BAD_WAITING_REASONS:
                continue
            if waiting.reason in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName"):
                problems.append(f"pod {name}: {waiting.reason} for image {container.image}" + (f" ({waiting.message})" if waiting.message else ""))
            elif waiting.reason == "CrashLoopBackOff":
                problems.append(f"pod {name}: container {container.name} is in CrashLoopBackOff (restarted {container.restart_count or 0} times); read its logs")
            else:
                problems.append(f"pod {name}: container {container.name} {waiting.reason}" + (f" ({waiting.message})" if waiting.message else ""))
    # The same reason on many pods says nothing more: keep the first three distinct ones.
    unique = []
    for problem in problems:
        key = problem.split(": ", 1)[-1]
        if key not in [item.split(": ", 1)[-1] for item in unique]:
            unique.append(problem)
    return unique[:3]


class _Follower:
    def __init__(self, api_client, namespace, name, ctx, timeout, stuck_after, on_change=None):
        self.api_client = api_client
        self.apps = kube_client.AppsV1Api(api_client)
        self.namespace, self.name, self.ctx = namespace, name, ctx
        self.what = f"the Kubernetes API at {describe(api_client)}"
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.stuck_after = stuck_after
        self.on_change = on_change
        self.last_report = None
        self.last_change = time.monotonic()

    def read(self):
        with api_errors(self.what):
            try:
                return self.apps.read_namespaced_deployment(self.name, self.namespace)
            except ApiException as exc:
                if exc.status == 404:
                    raise NotFound(f"Deployment {self.namespace}/{self.name} does not exist (any more) on {self.what}.") from None
                raise

    def report(self, deployment):
        """Write a line and the progress when the figures changed; True when the rollout is complete."""
        updated, ready, available, desired, current, complete = rollout_status(deployment)
        figures = (updated, ready, available, desired, current)
        if figures != self.last_report:
            self.last_report = figures
            self.last_change = time.monotonic()
            self.ctx.line(f"updated {updated}/{desired}, ready {ready}/{desired}, available {available}/{desired}", host=self.name, task="rollout")
            total = max(desired, 1) * 3
            done = min(updated, desired) + min(ready, desired) + min(available, desired) if desired else total
            self.ctx.progress(min(done, total), total)
            if self.on_change is not None:
                self.on_change()
        return complete

    def check(self, deployment):
        """Raise RolloutFailed when the rollout cannot finish."""
        message = deadline_exceeded(deployment)
        if message:
            problems = pod_problems(self.api_client, self.namespace, deployment)
            raise RolloutFailed(f"Deployment {self.namespace}/{self.name} exceeded its progress deadline (ProgressDeadlineExceeded: {message})"
                                + (": " + "; ".join(problems) if problems else "") + ". The previous pods keep serving.")
        refused = replica_failure(deployment)
        if refused and (self.stuck_after is None or time.monotonic() - self.last_change >= min(self.stuck_after, 5)):
            if "exceeded quota" in refused:
                raise QuotaExceeded(f"Deployment {self.namespace}/{self.name} cannot create its pods: {refused}. Lower the service's resources or replicas, or ask for a larger quota.")
            raise RolloutFailed(f"Deployment {self.namespace}/{self.name} cannot create its pods (ReplicaFailure): {refused}.")
        if self.stuck_after is not None and time.monotonic() - self.last_change >= self.stuck_after:
            problems = pod_problems(self.api_client, self.namespace, deployment)
            if problems:
                raise RolloutFailed(f"Deployment {self.namespace}/{self.name} is not progressing: " + "; ".join(problems) + ". The previous pods keep serving.")

    def timed_out(self, deployment):
        problems = pod_problems(self.api_client, self.namespace, deployment)
        return RolloutTimedOut(f"Deployment {self.namespace}/{self.name} did not finish rolling out within {self.timeout:g} s"
                               + (": " + "; ".join(problems) if problems else " (pods are still starting)") + ".")

    def slice_seconds(self):
        remaining = self.deadline - time.monotonic()
        seconds = min(remaining, WATCH_SLICE_SECONDS)
        if self.stuck_after is not None:
            # Wake up when the rollout would count as stuck, to read the pods then.
            seconds = min(seconds, max(1.0, self.stuck_after - (time.monotonic() - self.last_change) + 0.2))
        return max(1, int(round(seconds)))

    def run(self):
        deployment = self.read()
        if self.report(deployment):
            return
        self.check(deployment)
        resource_version = deployment.metadata.resource_version
        watching = True
        while True:
            if time.monotonic() >= self.deadline:
                raise self.timed_out(deployment)
            if watching:
                try:
                    deployment, resource_version, finished = self.watch_slice(deployment, resource_version)
                except _WatchUnusable:
                    watching = False
                    continue
                if finished:
                    return
                if resource_version is None:  # history expired (410): read again
                    deployment = self.read()
                    resource_version = deployment.metadata.resource_version
                    if self.report(deployment):
                        return
            else:
                # Fallback: read the Deployment twice a second.
                time.sleep(min(0.5, max(0.0, self.deadline - time.monotonic())))
                deployment = self.read()
                if self.report(deployment):
                    return
            self.check(deployment)

    def watch_slice(self, deployment, resource_version):
        """One watch request; returns (deployment, resourceVersion or None when expired, complete)."""
        watcher = kube_watch.Watch()
        seconds = self.slice_seconds()
        try:
            with api_errors(self.what):
                try:
                    for event in watcher.stream(
                        self.apps.list_namespaced_deployment, self.namespace,
                        field_selector=f"metadata.name={self.name}", resource_version=resource_version,
                        timeout_seconds=seconds, allow_watch_bookmarks=True, _request_timeout=(CONNECT_TIMEOUT, seconds + 10),
                    ):
                        kind = event.get("type")
                        item = event.get("object")
                        if kind == "ERROR":
                            return deployment, None, False
                        if kind == "BOOKMARK":
                            resource_version = item.metadata.resource_version if hasattr(item, "metadata") else resource_version
                            continue
                        if kind == "DELETED":
                            raise NotFound(f"Deployment {self.namespace}/{self.name} was deleted during its rollout.")
                        deployment = item
                        resource_version = item.metadata.resource_version
                        if self.report(deployment):
                            return deployment, resource_version, True
                        self.check(deployment)
                except ApiException as exc:
                    if exc.status == 410:
                        return deployment, None, False
                    if exc.status in (403, 405):
                        # Allowed to read but not to watch: read instead.
                        self.ctx.line(f"cannot watch the Deployment ({exc.status}); reading it every half second instead", host=self.name, task="rollout")
                        raise _WatchUnusable() from None
                    raise
        finally:
            watcher.stop()
        return deployment, resource_version, False


class _WatchUnusable(Exception):
    pass


def follow_rollout(api_client, namespace, name, ctx, *, timeout, stuck_after=None, on_change=None):
    """Follow Deployment `namespace/name` until its rollout is complete.

    Writes "updated u/d, ready r/d, available a/d" lines and ctx.progress(done, total) on
    every change the API reports. Raises RolloutFailed with the pods' reason
    (ImagePullBackOff with the image, CrashLoopBackOff with the container, Unschedulable
    with the scheduler's message) when the Deployment reports ProgressDeadlineExceeded or,
    when `stuck_after` is given, when nothing changed for that many seconds while a pod
    shows such a reason; RolloutTimedOut after `timeout` seconds; other driver errors
    (unreachable, 401, 403...) as they come. `on_change()`, when given, is called after
    each progress line (the deploy job refreshes the service's pods there).
    """
    _Follower(api_client, namespace, name, ctx, timeout, stuck_after, on_change).run()
