"""The rest of the control plane, and the loop that drives every controller.

* namespace controller: empties a Terminating namespace, then removes it;
* garbage collector: deletes dependents whose owners are gone (background
  propagation) and finishes ``foregroundDeletion``;
* resource-quota controller: keeps ``status.hard``/``status.used`` current;
* PVC binder: binds claims at once (like an ``Immediate`` storage class);
* HPA controller (autoscaler.py): the real algorithm on the CPU usage that the
  emulated application reports (appload.py).

:class:`ControllerManager` runs them, with the workload controllers and the
kubelet, in one background thread that wakes on every store change and at
least every 50 ms, holding the store lock for each pass.
"""

from __future__ import annotations

import sys
import threading
import traceback

from .admission import quota_status
from .autoscaler import HorizontalPodAutoscalers
from .controllers import MANAGER, WorkloadControllers
from .kubelet import Kubelet
from .meta import clone, dig
from .resources import ALL_TYPES


class ClusterControllers:
    def __init__(self, registry, settings):
        self.registry = registry
        self.store = registry.store
        self.autoscalers = HorizontalPodAutoscalers(registry, settings)

    def sync(self):
        self._namespaces()
        self._garbage_collect()
        self._quotas()
        self._pvcs()
        self._hpas()

    def _namespaces(self):
        for nso in self.store.items("/namespaces"):
            if not nso["metadata"].get("deletionTimestamp"):
                continue
            name = nso["metadata"]["name"]
            for rtype in ALL_TYPES:
                if rtype.namespaced and rtype.stored:
                    for obj in self.store.items(rtype.key, name):
                        self.registry.remove_now(rtype.key, name, obj["metadata"]["name"])
            self.registry.remove_now("/namespaces", "", name)

    def _garbage_collect(self):
        live = {}
        for rtype in ALL_TYPES:
            if rtype.stored:
                for obj in self.store.items(rtype.key):
                    live[obj["metadata"]["uid"]] = (rtype, obj)
        dependents = {}
        for uid, (rtype, obj) in list(live.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            if not refs:
                continue
            for ref in refs:
                dependents.setdefault(ref.get("uid"), []).append((rtype, obj))
            owners = [live.get(r.get("uid")) for r in refs]
            gone = all(o is None for o in owners)
            foreground = any(o is not None and "foregroundDeletion" in (o[1]["metadata"].get("finalizers") or [])
                             for o in owners)
            if (gone or foreground) and not obj["metadata"].get("deletionTimestamp"):
                ns = obj["metadata"].get("namespace", "")
                policy = "Foreground" if foreground else "Background"
                try:
                    self.registry.delete(rtype, ns, obj["metadata"]["name"], propagation=policy)
                except Exception:  # noqa: BLE001 - already gone or refused: try next pass
                    pass
        for uid, (rtype, obj) in live.items():
            fins = obj["metadata"].get("finalizers") or []
            if "foregroundDeletion" in fins and obj["metadata"].get("deletionTimestamp"):
                if not any(d[1]["metadata"]["uid"] in live for d in dependents.get(uid, [])
                           if self.store.peek(d[0].key, d[1]["metadata"].get("namespace", ""),
                                              d[1]["metadata"]["name"]) is not None):
                    current = self.store.get(rtype.key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                    if current is None:
                        continue
                    current["metadata"]["finalizers"] = [f for f in fins if f != "foregroundDeletion"]
                    if not current["metadata"]["finalizers"]:
                        self.registry.remove_now(rtype.key, obj["metadata"].get("namespace", ""),
                                                 obj["metadata"]["name"])
                    else:
                        self.registry.write_internal(obj, current, "garbage-collector")

    def _quotas(self):
        for q in self.store.items("/resourcequotas"):
            status = quota_status(self.store, q)
            if status != q.get("status"):
                new = clone(q)
                new["status"] = status
                self.registry.write_internal(q, new, MANAGER, "status")

    def _pvcs(self):
        for pvc in self.store.items("/persistentvolumeclaims"):
            if dig(pvc, "status", "phase") != "Pending" or pvc["metadata"].get("deletionTimestamp"):
                continue
            new = clone(pvc)
            new["spec"]["volumeName"] = "pvc-" + pvc["metadata"]["uid"]
            ann = new["metadata"].setdefault("annotations", {})
            ann.update({"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes",
                        "volume.beta.kubernetes.io/storage-provisioner": "standin.local/hostpath",
                        "volume.kubernetes.io/storage-provisioner": "standin.local/hostpath"})
            finals = new["metadata"].setdefault("finalizers", [])
            if "kubernetes.io/pvc-protection" not in finals:
                finals.append("kubernetes.io/pvc-protection")
            stored = self.registry.write_internal(pvc, new, MANAGER)
            bound = clone(stored)
            bound["status"] = {"phase": "Bound", "accessModes": list(dig(pvc, "spec", "accessModes", default=[])),
                               "capacity": {"storage": dig(pvc, "spec", "resources", "requests", "storage",
                                                           default="1Gi")}}
            self.registry.write_internal(stored, bound, MANAGER, "status")

    def _hpas(self):
        self.autoscalers.sync()


class ControllerManager:
    """Runs every controller in one background thread."""

    def __init__(self, registry, settings):
        self.registry = registry
        self.store = registry.store
        self.workloads = WorkloadControllers(registry)
        self.kubelet = Kubelet(registry, settings)
        self.cluster = ClusterControllers(registry, settings)
        self._stop = threading.Event()
        self._thread = None
        self.errors = []

    def start(self):
        self._thread = threading.Thread(target=self._run, name="kube-standin-controllers", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        self.store.close()
        if self._thread:
            self._thread.join(timeout=5)

    def pass_once(self):
        with self.store.lock:
            for step in (self.cluster.sync, self.workloads.sync_deployments, self.workloads.sync_replicasets,
                         self.kubelet.sync):
                try:
                    step()
                except Exception:  # noqa: BLE001 - a controller bug must not kill the loop
                    text = traceback.format_exc()
                    if len(self.errors) < 50:
                        self.errors.append(text)
                        print(text, file=sys.stderr)

    def _run(self):
        while not self._stop.is_set():
            for _ in range(20):
                before = self.store.current_rv
                self.pass_once()
                if self.store.current_rv == before:
                    break
            self.store.wait_past(self._index(), 0.05)

    def _index(self):
        with self.store.lock:
            return self.store._first_index + len(self.store._history)
