"""The scheduler and a kubelet, played by the stand-in.

The scheduler binds each new Pod to a Ready node (``Scheduled`` event).  The
kubelet then, in ``auto`` mode, starts the containers after
``auto_ready_delay`` seconds (``Pulling``/``Pulled``/``Created``/``Started``)
- unless the image matches ``failing_images``, in which case the container
waits with ``ImagePullBackOff`` (or ``ErrImagePull``/``CrashLoopBackOff``)
and warning events are emitted.  In ``manual`` mode pods stay
``ContainerCreating`` until a test calls ``set_pod_phase``.  Pods being
deleted are removed after ``termination_delay`` seconds (``Killing``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools

from .meta import clone, dig, now, rfc3339

SCHEDULER = "default-scheduler"


def _cond(ctype, status, reason=None, message=None):
    c = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": rfc3339()}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def _merge_conditions(old, new):
    """Keep lastTransitionTime of conditions whose status did not change."""
    by_type = {c.get("type"): c for c in old or []}
    out = []
    for c in new:
        prev = by_type.get(c["type"])
        if prev and prev.get("status") == c["status"]:
            c["lastTransitionTime"] = prev.get("lastTransitionTime", c["lastTransitionTime"])
        out.append(c)
    return out


class Kubelet:
    def __init__(self, registry, settings):
        self.registry = registry
        self.store = registry.store
        self.settings = settings
        self._scheduled_at = {}       # pod uid -> time it was bound
        self._handled = set()         # pod uids whose containers the kubelet has settled
        self._ip_counter = itertools.count(10)
        self._deleting = {}           # pod uid -> when the kubelet noticed the deletion

    def sync(self):
        nodes = [n for n in self.store.items("/nodes")
                 if not dig(n, "spec", "unschedulable")
                 and any(c.get("type") == "Ready" and c.get("status") == "True"
                         for c in dig(n, "status", "conditions", default=[]) or [])]
        for pod in self.store.items("/pods"):
            meta = pod["metadata"]
            if meta.get("deletionTimestamp"):
                self._terminate(pod)
            elif not dig(pod, "spec", "nodeName"):
                self._schedule(pod, nodes)
            elif meta["uid"] not in self._handled and self.settings.kubelet_mode == "auto":
                started = self._scheduled_at.setdefault(meta["uid"], now())
                if now() - started >= self.settings.auto_ready_delay:
                    self._start(pod)

    # --- scheduler ---------------------------------------------------------------------------------
    def _schedule(self, pod, nodes):
        if not nodes:
            return
        counts = {n["metadata"]["name"]: 0 for n in nodes}
        for p in self.store.items("/pods"):
            node = dig(p, "spec", "nodeName")
            if node in counts:
                counts[node] += 1
        node = min(nodes, key=lambda n: (counts[n["metadata"]["name"]], n["metadata"]["name"]))
        node_name = node["metadata"]["name"]
        new = clone(pod)
        new["spec"]["nodeName"] = node_name
        self.registry.write_internal(pod, new, "kube-scheduler")
        bound = self.store.get("/pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
        host_ip = next((a["address"] for a in dig(node, "status", "addresses", default=[])
                        if a.get("type") == "InternalIP"), "172.18.0.2")
        status = clone(bound.get("status") or {})
        names = [c["name"] for c in bound["spec"].get("containers", [])]
        status.update({
            "phase": "Pending", "hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "startTime": rfc3339(),
            "conditions": [
                _cond("PodReadyToStartContainers", "False"), _cond("Initialized", "True"),
                _cond("Ready", "False", "ContainersNotReady", f"containers with unready status: [{' '.join(names)}]"),
                _cond("ContainersReady", "False", "ContainersNotReady",
                      f"containers with unready status: [{' '.join(names)}]"),
                _cond("PodScheduled", "True")],
            "containerStatuses": [self._waiting(c, "ContainerCreating") for c in bound["spec"]["containers"]],
        })
        after = clone(bound)
        after["status"] = status
        self.registry.write_internal(bound, after, "kubelet", "status")
        self._scheduled_at[pod["metadata"]["uid"]] = now()
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        self.registry.events.record(bound, "Normal", "Scheduled",
                                    f"Successfully assigned {ns}/{name} to {node_name}", SCHEDULER)

    # --- kubelet -----------------------------------------------------------------------------------
    @staticmethod
    def _waiting(container, reason, message=None, restarts=0, last=None):
        state = {"reason": reason}
        if message:
            state["message"] = message
        cs = {"name": container["name"], "image": container.get("image", ""), "imageID": "",
              "ready": False, "restartCount": restarts, "started": False, "state": {"waiting": state},
              "lastState": last or {}}
        return cs

    @staticmethod
    def _running(container, started, ready=True, restarts=0):
        image = container.get("image", "")
        return {"name": container["name"], "image": image,
                "imageID": f"{image.split(':')[0]}@sha256:{'0' * 64}",
                "containerID": "containerd://" + hashlib.sha256(f"{container['name']}{started}".encode()).hexdigest(),
                "ready": ready, "restartCount": restarts, "started": True,
                "state": {"running": {"startedAt": started}}, "lastState": {}}

    def _failing(self, image):
        return any(fnmatch.fnmatchcase(image, pat) for pat in self.settings.failing_images or [])

    def _start(self, pod):
        self._handled.add(pod["metadata"]["uid"])
        containers = pod["spec"].get("containers", [])
        failing = [c for c in containers if self._failing(c.get("image", ""))]
        reason = self.settings.failing_reason or "ImagePullBackOff"
        record = self.registry.events.record
        for c in containers:
            image, path = c.get("image", ""), f"spec.containers{{{c['name']}}}"
            node = pod["spec"]["nodeName"]
            if c in failing and reason in ("ImagePullBackOff", "ErrImagePull"):
                record(pod, "Normal", "Pulling", f'Pulling image "{image}"', "kubelet", node, path)
                record(pod, "Warning", "Failed", f'Failed to pull image "{image}": rpc error: code = NotFound '
                       f'desc = failed to pull and unpack image "{image}": failed to resolve reference '
                       f'"{image}": not found', "kubelet", node, path)
                record(pod, "Warning", "Failed", "Error: ErrImagePull", "kubelet", node, path)
                if reason == "ImagePullBackOff":
                    record(pod, "Normal", "BackOff", f'Back-off pulling image "{image}"', "kubelet", node, path)
                    record(pod, "Warning", "Failed", "Error: ImagePullBackOff", "kubelet", node, path)
            else:
                record(pod, "Normal", "Pulling", f'Pulling image "{image}"', "kubelet", node, path)
                record(pod, "Normal", "Pulled", f'Successfully pulled image "{image}" in 512ms (512ms including '
                       f'waiting). Image size: 0 bytes.', "kubelet", node, path)
                record(pod, "Normal", "Created", f"Created container: {c['name']}", "kubelet", node, path)
                record(pod, "Normal", "Started", f"Started container {c['name']}", "kubelet", node, path)
                if c in failing:
                    record(pod, "Warning", "BackOff", f"Back-off restarting failed container {c['name']} in pod "
                           f"{pod['metadata']['name']}_{pod['metadata']['namespace']}({pod['metadata']['uid']})",
                           "kubelet", node, path)
        if failing:
            waits = {c["name"]: reason for c in failing}
            phase = "Running" if reason == "CrashLoopBackOff" else "Pending"
            self.set_phase(pod, ready=False, phase=phase, waiting=waits,
                           restart_count=1 if reason == "CrashLoopBackOff" else 0)
        else:
            self.set_phase(pod, ready=True, phase="Running")

    def set_phase(self, pod, ready=True, phase="Running", waiting=None, restart_count=0):
        """Write the status a kubelet would report; ``waiting`` maps container name -> reason."""
        self._handled.add(pod["metadata"]["uid"])
        pod = self.store.get("/pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
        if pod is None:
            return None
        ts = rfc3339()
        statuses = []
        waiting = waiting or {}
        containers = pod["spec"].get("containers", [])
        for c in containers:
            prev = next((s for s in dig(pod, "status", "containerStatuses", default=[]) or []
                         if s.get("name") == c["name"]), {})
            started = dig(prev, "state", "running", "startedAt") or ts
            why = waiting.get(c["name"])
            if phase in ("Succeeded", "Failed"):
                code = 0 if phase == "Succeeded" else 1
                statuses.append({"name": c["name"], "image": c.get("image", ""), "imageID": "",
                                 "ready": False, "restartCount": restart_count, "started": False,
                                 "state": {"terminated": {"exitCode": code, "reason": "Completed" if code == 0
                                                          else "Error", "startedAt": started, "finishedAt": ts}},
                                 "lastState": {}})
            elif why:
                message = self._waiting_message(why, c, pod)
                last = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started,
                                       "finishedAt": ts}} if why == "CrashLoopBackOff" else None
                statuses.append(self._waiting(c, why, message, restart_count, last))
            else:
                statuses.append(self._running(c, started, ready, restart_count))
        status = clone(pod.get("status") or {})
        status["phase"] = phase
        all_ready = ready and not waiting and phase == "Running"
        unready = [s["name"] for s in statuses if not s["ready"]]
        msg = f"containers with unready status: [{' '.join(unready)}]"
        started_any = any(s.get("started") for s in statuses) or phase in ("Running", "Succeeded", "Failed")
        conds = [_cond("PodReadyToStartContainers", "True" if started_any else "False"),
                 _cond("Initialized", "True"),
                 _cond("Ready", "True") if all_ready else _cond("Ready", "False", "ContainersNotReady", msg),
                 _cond("ContainersReady", "True") if all_ready else _cond("ContainersReady", "False",
                                                                           "ContainersNotReady", msg),
                 _cond("PodScheduled", "True")]
        if phase in ("Succeeded", "Failed"):
            conds[2] = _cond("Ready", "False", "PodCompleted")
            conds[3] = _cond("ContainersReady", "False", "PodCompleted")
        status["conditions"] = _merge_conditions(status.get("conditions"), conds)
        status["containerStatuses"] = statuses
        if phase in ("Running", "Succeeded", "Failed") or any("running" in s["state"] for s in statuses):
            ip = status.get("podIP") or self._pod_ip(pod)
            status["podIP"], status["podIPs"] = ip, [{"ip": ip}]
        status.setdefault("startTime", ts)
        new = clone(pod)
        new["status"] = status
        return self.registry.write_internal(pod, new, "kubelet", "status")

    def _pod_ip(self, pod):
        nodes = sorted(n["metadata"]["name"] for n in self.store.items("/nodes"))
        idx = nodes.index(pod["spec"]["nodeName"]) if pod["spec"].get("nodeName") in nodes else 0
        n = next(self._ip_counter)
        return f"10.244.{idx}.{n % 250 + 2}"

    @staticmethod
    def _waiting_message(reason, container, pod):
        image = container.get("image", "")
        if reason == "ImagePullBackOff":
            return f'Back-off pulling image "{image}": ErrImagePull: failed to pull and unpack image "{image}"'
        if reason == "ErrImagePull":
            return f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": not found'
        if reason == "CrashLoopBackOff":
            return (f"back-off 10s restarting failed container={container['name']} "
                    f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}({pod['metadata']['uid']})")
        return None

    def _terminate(self, pod):
        meta = pod["metadata"]
        if meta.get("finalizers"):
            return
        first_seen = self._deleting.setdefault(meta["uid"], now())
        if now() - first_seen < self.settings.termination_delay and meta.get("deletionGracePeriodSeconds") != 0:
            return
        if dig(pod, "status", "phase") == "Running":
            for c in pod["spec"].get("containers", []):
                self.registry.events.record(pod, "Normal", "Killing", f"Stopping container {c['name']}",
                                            "kubelet", pod["spec"].get("nodeName"), f"spec.containers{{{c['name']}}}")
        self.registry.remove_now("/pods", meta["namespace"], meta["name"])
        for table in (self._handled, ):
            table.discard(meta["uid"])
        self._scheduled_at.pop(meta["uid"], None)
        self._deleting.pop(meta["uid"], None)
