"""The rest of the control plane, and the loop that drives every controller.

* namespace controller: empties a Terminating namespace, then removes it;
* garbage collector: deletes dependents whose owners are gone (background
  propagation) and finishes ``foregroundDeletion``;
* resource-quota controller: keeps ``status.hard``/``status.used`` current;
* PVC binder: binds claims at once (like an ``Immediate`` storage class);
* HPA controller: reports the target's replicas, enforces min/max, and says
  honestly that no metrics are available (``ScalingActive=False``).

:class:`ControllerManager` runs them, with the workload controllers and the
kubelet, in one background thread that wakes on every store change and at
least every 50 ms, holding the store lock for each pass.
"""

from __future__ import annotations

import sys
import threading
import traceback

from .admission import quota_status
from .controllers import MANAGER, WorkloadControllers, _set_condition
from .kubelet import Kubelet
from .meta import clone, dig, rfc3339
from .resources import ALL_TYPES, by_kind


class ClusterControllers:
    def __init__(self, registry):
        self.registry = registry
        self.store = registry.store

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
        for hpa in self.store.items("autoscaling/horizontalpodautoscalers"):
            self._sync_hpa(hpa)

    def _sync_hpa(self, hpa):
        spec, ns = hpa.get("spec") or {}, hpa["metadata"]["namespace"]
        ref = spec.get("scaleTargetRef") or {}
        rtype = by_kind(ref.get("apiVersion", "apps/v1"), ref.get("kind", ""))
        target = self.store.get(rtype.key, ns, ref.get("name", "")) if rtype else None
        status = clone(hpa.get("status") or {})
        conds = status.get("conditions") or []
        if target is None or "scale" not in (rtype.sub_by_name if rtype else {}):
            plural = rtype.plural if rtype else (ref.get("kind", "").lower() + "s")
            group = rtype.group if rtype else ref.get("apiVersion", "").rpartition("/")[0]
            _set_condition(conds, "AbleToScale", "False", "FailedGetScale",
                           f"the HPA controller was unable to get the target's current scale: "
                           f'{plural}/scale{"." + group if group else ""} "{ref.get("name")}" not found',
                           update_time=False)
            status.update(currentReplicas=status.get("currentReplicas", 0), desiredReplicas=0)
        else:
            current = target["spec"].get("replicas", 1)
            lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas", 1)
            desired = current if current == 0 else min(max(current, lo), hi)
            _set_condition(conds, "AbleToScale", "True", "SucceededGetScale",
                           "the HPA controller was able to get the target's current scale", update_time=False)
            if desired != current:
                reason = ("Current number of replicas above Spec.MaxReplicas" if current > hi
                          else "Current number of replicas below Spec.MinReplicas")
                scaled = clone(target)
                scaled["spec"]["replicas"] = desired
                self.registry.write_internal(target, scaled, "horizontal-pod-autoscaler", "scale",
                                             bump_generation=True)
                self.registry.events.record(hpa, "Normal", "SuccessfulRescale",
                                            f"New size: {desired}; reason: {reason}", "horizontal-pod-autoscaler")
                status["lastScaleTime"] = rfc3339()
                _set_condition(conds, "ScalingLimited", "True", "TooManyReplicas" if current > hi else
                               "TooFewReplicas", f"the desired replica count is {'more' if current > hi else 'less'}"
                               f" than the {'maximum' if current > hi else 'minimum'} replica count",
                               update_time=False)
            _set_condition(conds, "ScalingActive", "False", "FailedGetResourceMetric",
                           "the HPA was unable to compute the replica count: failed to get cpu utilization: "
                           "unable to get metrics for resource cpu: unable to fetch metrics from resource "
                           "metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)",
                           update_time=False)
            status.update(currentReplicas=dig(target, "status", "replicas", default=0), desiredReplicas=desired)
        for c in conds:
            c.pop("lastUpdateTime", None)
        status["conditions"] = conds
        if status != hpa.get("status"):
            new = clone(hpa)
            new["status"] = status
            self.registry.write_internal(hpa, new, "horizontal-pod-autoscaler", "status")


class ControllerManager:
    """Runs every controller in one background thread."""

    def __init__(self, registry, settings):
        self.registry = registry
        self.store = registry.store
        self.workloads = WorkloadControllers(registry)
        self.kubelet = Kubelet(registry, settings)
        self.cluster = ClusterControllers(registry)
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
