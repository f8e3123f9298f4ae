"""Deploying services onto a Kubernetes cluster through its API.

How a release runs here (see deployments/backends/kubernetes/render.py for the objects):
- deploy renders the release and applies every object with server-side apply under the
  panel's field manager (`filrouge`, application/apply-patch+yaml, never forced: a field
  another manager owns is a failed job that names that manager), then follows the
  Deployment's rollout (clusters/kubernetes/rollout.py) and, once it is complete, removes the
  objects of earlier releases that this one no longer renders (by label);
- the rolling update keeps old pods serving (maxUnavailable 0 by default). A rollout
  that cannot finish (bad image, crash loop, unschedulable, progress deadline) fails the
  job with the pods' reason; with `update.failure_action: rollback` the previous
  release is applied again first, so the cluster's desired state matches what serves;
- rollback is a deploy of an earlier release's spec; scale re-applies the current
  release with another replica count; restart sets the pod template's restartedAt
  annotation as `kubectl rollout restart` does (its own field manager, so the next
  apply does not fight it); remove deletes every object labelled with the service and
  nothing else; stop scales to 0 (an autoscaled service loses its HPA first, and its
  replica count is then taken over from the autoscaler: the only forced apply).

Pods, events and logs are read with one list call each (pods by label selector, the
namespace's events filtered here), never one request per pod (except a log stream,
which is per pod by nature).
"""

import json
import threading
import time

from kubernetes import client as kube_client
from kubernetes.client.rest import ApiException

from clusters.drivers import kubernetes as driver
from clusters.drivers.base import Conflict, DriverError, PermissionRefused
from clusters.kubernetes.rollout import RolloutFailed, follow_rollout

from deployments.backends.kubernetes import render as kube_render
from deployments.backends.kubernetes.probe import observation_from_pods, pod_row
from deployments.backends.base import Backend

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
RESTART_MANAGER = f"{driver.FIELD_MANAGER}-restart"
ROLLOUT_TIMEOUT = 900
EVENTS_KEPT = 30


class _Kind:
    def __init__(self, api, singular, list_name=None):
        self.api, self.singular = api, singular
        self.list_name = list_name or singular

    def client(self, api_client):
        return getattr(kube_client, self.api)(api_client)

    def patch(self, api_client):
        return getattr(self.client(api_client), f"patch_namespaced_{self.singular}")

    def list(self, api_client):
        return getattr(self.client(api_client), f"list_namespaced_{self.list_name}")

    def delete(self, api_client):
        return getattr(self.client(api_client), f"delete_namespaced_{self.singular}")


KINDS = {
    "Deployment": _Kind("AppsV1Api", "deployment"),
    "Service": _Kind("CoreV1Api", "service"),
    "ConfigMap": _Kind("CoreV1Api", "config_map"),
    "Secret": _Kind("CoreV1Api", "secret"),
    "Ingress": _Kind("NetworkingV1Api", "ingress"),
    "HorizontalPodAutoscaler": _Kind("AutoscalingV2Api", "horizontal_pod_autoscaler"),
    "PersistentVolumeClaim": _Kind("CoreV1Api", "persistent_volume_claim"),
}


class KubernetesBackend(Backend):
    kind = "kubernetes"

    def open(self):
        self.api_client = driver.connect(self.cluster, ctx=self.ctx)
        self.where = f"the Kubernetes API at {driver.describe(self.api_client)}"
        self.core = kube_client.CoreV1Api(self.api_client)
        self.apps = kube_client.AppsV1Api(self.api_client)

    def close(self):
        self.api_client.close()

    def errors(self):
        return driver.api_errors(self.where)

    # ---- applying ------------------------------------------------------------------

    def render(self, service, spec, revision, replicas=None):
        registry_login = None
        credential = service.registry_credential
        if credential is not None:
            secret = credential.get_secret()
            self.ctx.add_secret(secret.get("password", ""))
            registry_login = (credential.username, secret.get("password", ""))
        try:
            return kube_render.render(service, spec, revision, secrets=service.get_secrets(), registry_login=registry_login, replicas=replicas)
        except ValueError as exc:
            raise DriverError(f"{service}: {exc}") from None

    def apply(self, item, force=False):
        """Server-side apply as the panel's field manager; `force` only where the module doc says."""
        kind, name, namespace = item["kind"], item["metadata"]["name"], item["metadata"]["namespace"]
        with self.errors():
            try:
                KINDS[kind].patch(self.api_client)(name, namespace, item, field_manager=driver.FIELD_MANAGER, force=force or None, _content_type=APPLY_CONTENT_TYPE)
            except ApiException as exc:
                if exc.status == 409:
                    raise Conflict(
                        f"Another field manager owns fields of {kind} {namespace}/{name} on {self.where}: {driver.status_message(exc)}. "
                        f"Change them with the tool that owns them (or stop it managing them), or let the panel take them over once with "
                        f"`kubectl apply --server-side --force-conflicts --field-manager={driver.FIELD_MANAGER}`, then deploy again."
                    ) from None
                raise
        self.ctx.changed(f"applied {kind} {namespace}/{name}", task="apply")

    def apply_all(self, objects):
        for item in objects:
            self.apply(item)

    def ensure_namespace(self, namespace):
        with self.errors():
            try:
                self.core.read_namespace(namespace)
                return
            except ApiException as exc:
                if exc.status == 403:
                    return  # not allowed to read namespaces: applying into it says the rest
                if exc.status != 404:
                    raise
            self.core.patch_namespace(namespace, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {kube_render.MANAGED_BY: kube_render.MANAGER_NAME}}},
                                      field_manager=driver.FIELD_MANAGER, _content_type=APPLY_CONTENT_TYPE)
        self.ctx.changed(f"created namespace {namespace}", task="apply")

    def follow(self, service, spec):
        monitor = (spec.get("update") or {}).get("monitor", 30)
        follow_rollout(self.api_client, service.project, service.name, self.ctx, timeout=ROLLOUT_TIMEOUT, stuck_after=max(1.0, float(monitor)),
                       on_change=lambda: self.changed(service))

    # ---- the verbs ---------------------------------------------------------------------

    def deploy(self, release, previous=None):
        service, spec = release.service, release.spec
        if spec.get("build"):
            raise DriverError(f"{service} is built from source (compose `build:`), which the panel builds on Docker and Swarm clusters only. "
                              "Build and push the image, then name it in the service's image and tag.")
        objects = self.render(service, spec, release.revision)
        self.ctx.line(f"applying {len(objects)} object(s) to namespace {service.project} as field manager {driver.FIELD_MANAGER}", task="apply")
        self.ensure_namespace(service.project)
        self.apply_all(objects)
        try:
            self.follow(service, spec)
        except RolloutFailed as failure:
            self.after_failure(release, previous, failure)
            raise
        self.prune(service, objects)

    def after_failure(self, release, previous, failure):
        action = (release.spec.get("update") or {}).get("failure_action", "rollback")
        self.ctx.failed(str(failure), task="rollout")
        if action != "rollback" or previous is None:
            self.ctx.line("the previous pods keep serving; the failed revision stays applied (failure_action is not rollback, or there is no earlier release)", task="rollout")
            return
        self.ctx.line(f"rolling back to revision {previous.revision}", task="rollback")
        try:
            self.apply_all(self.render(release.service, previous.spec, previous.revision))
            follow_rollout(self.api_client, release.service.project, release.service.name, self.ctx, timeout=120)
            self.ctx.ok(f"revision {previous.revision} is serving again", task="rollback")
        except DriverError as exc:
            self.ctx.failed(f"rolling back to revision {previous.revision} did not complete: {exc}", task="rollback")

    def prune(self, service, objects):
        """Delete this service's objects that the applied release no longer renders."""
        keep = {(item["kind"], item["metadata"]["name"]) for item in objects}
        for kind, name in self.labelled(service):
            if (kind, name) not in keep:
                self.delete(kind, service.project, name)

    def labelled(self, service):
        """[(kind, name)] of every object labelled with the service (one list per kind)."""
        found = []
        with self.errors():
            for kind, spec in KINDS.items():
                for item in spec.list(self.api_client)(service.project, label_selector=kube_render.service_selector(service)).items:
                    found.append((kind, item.metadata.name))
        return found

    def delete(self, kind, namespace, name):
        with self.errors():
            try:
                KINDS[kind].delete(self.api_client)(name, namespace, propagation_policy="Background")
            except ApiException as exc:
                if exc.status != 404:
                    raise
        self.ctx.changed(f"deleted {kind} {namespace}/{name}", task="delete")

    def current(self, service):
        release = service.current_release
        if release is None:
            raise DriverError(f"{service} has no deployed release on {self.cluster}; deploy it first.")
        return release

    def scale(self, service, replicas):
        release = self.current(service)
        if release.spec.get("autoscaling") and replicas:
            raise DriverError(f"{service} is autoscaled ({release.spec['autoscaling']['min_replicas']}..{release.spec['autoscaling']['max_replicas']} replicas by its HorizontalPodAutoscaler); change its autoscaling bounds instead of scaling it.")
        self.ctx.line(f"scaling {service} to {replicas} replica(s)", task="scale")
        stopping_autoscaled = bool(release.spec.get("autoscaling")) and not replicas
        if stopping_autoscaled:
            # Its autoscaler would bring the pods back: remove it first (the next deploy makes it
            # again), then take the replica count over from it. That is the one forced apply.
            self.delete("HorizontalPodAutoscaler", service.project, service.name)
        for item in self.render(service, release.spec, release.revision, replicas=replicas):
            if item["kind"] in ("Deployment", "HorizontalPodAutoscaler"):
                self.apply(item, force=stopping_autoscaled and item["kind"] == "Deployment")
        self.follow(service, release.spec)

    def restart(self, service):
        release = self.current(service)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        patch = {"spec": {"template": {"metadata": {"annotations": {kube_render.RESTARTED_AT: stamp}}}}}
        with self.errors():
            self.apps.patch_namespaced_deployment(service.name, service.project, patch, field_manager=RESTART_MANAGER,
                                                  _content_type="application/strategic-merge-patch+json")
        self.ctx.changed(f"restart requested at {stamp} (pods are replaced as in a rollout)", task="restart")
        self.follow(service, release.spec)

    def stop(self, service):
        self.scale(service, 0)

    def remove(self, service):
        found = self.labelled(service)
        order = {kind: index for index, kind in enumerate(reversed(kube_render.KINDS))}
        for kind, name in sorted(found, key=lambda pair: order.get(pair[0], 0)):
            self.delete(kind, service.project, name)
        self.ctx.ok(f"removed {len(found)} object(s) labelled {kube_render.service_selector(service)}", task="delete")

    # ---- reading ---------------------------------------------------------------------

    def pods(self, service):
        """The service's pods as raw dicts (one list call, by label selector)."""
        selector = ",".join(f"{key}={value}" for key, value in kube_render.pod_selector(service).items())
        with self.errors():
            response = self.core.list_namespaced_pod(service.project, label_selector=selector, _preload_content=False)
            try:
                return json.loads(response.data)["items"]
            finally:
                response.release_conn()

    def events(self, service, pods=None):
        """Recent events about the service's objects and pods, newest last (one list call)."""
        with self.errors():
            items = self.core.list_namespaced_event(service.project).items
        prefix = f"{service.name}-"
        names = {service.name, f"{service.name}-config", f"{service.name}-secrets"}
        rows = []
        for event in items:
            involved = event.involved_object
            if involved is None or not (involved.name in names or (involved.name or "").startswith(prefix)):
                continue
            when = event.last_timestamp or event.event_time or event.first_timestamp or event.metadata.creation_timestamp
            rows.append({
                "time": when.isoformat() if when else "", "type": event.type or "", "reason": event.reason or "",
                "object": f"{involved.kind}/{involved.name}", "message": event.message or "", "count": event.count or 1,
            })
        rows.sort(key=lambda row: row["time"])
        return rows[-EVENTS_KEPT:]

    def observe(self, service):
        rows = [pod_row(pod) for pod in self.pods(service)]
        desired = None
        with self.errors():
            try:
                deployment = self.apps.read_namespaced_deployment(service.name, service.project)
                desired = deployment.spec.replicas
                status = deployment.status
                rollout = {"updated": status.updated_replicas or 0, "ready": status.ready_replicas or 0, "available": status.available_replicas or 0,
                           "generation": deployment.metadata.generation, "observed_generation": status.observed_generation or 0}
            except ApiException as exc:
                if exc.status != 404:
                    raise
                desired, rollout = 0, None
        try:
            events = self.events(service)
        except PermissionRefused:
            events = []  # a credential may deploy without reading events: the page shows none
        return observation_from_pods(service, rows, desired=desired, extra={"rollout": rollout, "events": events})

    def logs(self, service, tail=100, follow_seconds=0):
        pods = self.pods(service)
        if not pods:
            self.ctx.line(f"{service} has no pods in namespace {service.project}", task="logs")
            return 0
        count = 0
        if not follow_seconds:
            for pod in pods:
                with self.errors():
                    try:
                        text = self.core.read_namespaced_pod_log(pod["metadata"]["name"], service.project, container=service.name, tail_lines=tail)
                    except ApiException as exc:
                        if exc.status == 400:  # container not started yet
                            self.ctx.line(f"no log yet: {driver.status_message(exc)}", host=pod["metadata"]["name"], task="log")
                            continue
                        raise
                for line in (text or "").splitlines():
                    self.ctx.line(line, host=pod["metadata"]["name"], task="log")
                    count += 1
            return count
        return self._follow(service, pods, tail, follow_seconds)

    def _follow(self, service, pods, tail, seconds):
        """Stream every pod's log (its last `tail` lines, then new ones) for `seconds`."""
        counter = {"lines": 0}
        responses, threads, lock = [], [], threading.Lock()
        stopping = threading.Event()

        def pump(pod_name):
            try:
                response = self.core.read_namespaced_pod_log(pod_name, service.project, container=service.name, follow=True, tail_lines=tail,
                                                             _preload_content=False, _request_timeout=(driver.CONNECT_TIMEOUT, seconds + 30))
            except Exception as exc:  # noqa: BLE001 - reported as a line, the other pods go on
                if not stopping.is_set():
                    error = driver.translate(exc, self.where)
                    self.ctx.line(f"cannot follow the log: {error or exc}", host=pod_name, task="log")
                return
            with lock:
                responses.append(response)
            buffer = b""
            try:
                for chunk in response.stream(1024):
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        self.ctx.line(line.decode(errors="replace"), host=pod_name, task="log")
                        counter["lines"] += 1
            except Exception:  # noqa: BLE001 - closing the response at the deadline ends the stream
                pass
            if buffer:
                self.ctx.line(buffer.decode(errors="replace"), host=pod_name, task="log")
                counter["lines"] += 1

        for pod in pods:
            thread = threading.Thread(target=pump, args=(pod["metadata"]["name"],), daemon=True)
            thread.start()
            threads.append(thread)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and any(thread.is_alive() for thread in threads):
            self.ctx.check_cancelled()
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
        stopping.set()
        with lock:
            for response in responses:
                try:
                    # shutdown() unblocks a read waiting in another thread; close() alone does not.
                    response.shutdown()
                    response.close()
                except Exception:  # noqa: BLE001
                    pass
        for thread in threads:
            thread.join(timeout=2)
        return counter["lines"]

    def stats(self, service):
        self.ctx.line("CPU and memory samples need the metrics API (metrics-server), which the panel does not read yet; see the pods and events instead", task="stats")
        return []
