"""The Deployment and ReplicaSet controllers, following kube-controller-manager.

Deployment: one ReplicaSet per pod template (named ``<deploy>-<hash>``, label
``pod-template-hash``, revision annotations), rolling updates that respect
maxSurge/maxUnavailable (the new ReplicaSet grows, old ones shrink as new pods
become available; Recreate empties old ones first), revisionHistoryLimit
cleanup, and status with ``Available``/``Progressing``/``ReplicaFailure``
conditions including ``ProgressDeadlineExceeded``.

ReplicaSet: creates/deletes Pods to match ``spec.replicas``; a refused create
(ResourceQuota, LimitRange...) becomes a ``FailedCreate`` warning Event and a
``ReplicaFailure`` condition, and is retried with a back-off.
"""

from __future__ import annotations

import json
import math

from .errors import ApiError
from .meta import SAFE_ALPHABET, clone, controller_uid, dig, now, owner_ref, rfc3339
from .resources import BY_KEY

MANAGER = "kube-controller-manager"
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"


def template_hash(template, collision_count=0):
    """FNV-1a of the template, spelled with SafeEncodeString like the real controller."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode() + str(collision_count).encode()
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return "".join(SAFE_ALPHABET[ord(ch) % len(SAFE_ALPHABET)] for ch in str(h))


def _strip_hash(template):
    t = clone(template or {})
    labels = dig(t, "metadata", "labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return t


def resolve_fenceposts(spec):
    desired = spec.get("replicas", 1)
    ru = dig(spec, "strategy", "rollingUpdate", default={}) or {}

    def value(v, round_up):
        if isinstance(v, str) and v.endswith("%"):
            pct = int(v[:-1]) * desired / 100.0
            return int(math.ceil(pct)) if round_up else int(math.floor(pct))
        return int(v or 0)

    surge = value(ru.get("maxSurge", "25%"), True)
    unavailable = value(ru.get("maxUnavailable", "25%"), False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _revision(rs):
    try:
        return int(dig(rs, "metadata", "annotations", REVISION, default="0"))
    except ValueError:
        return 0


def _condition(conds, ctype):
    return next((c for c in conds if c.get("type") == ctype), None)


def _set_condition(conds, ctype, status, reason, message, update_time=True):
    ts = rfc3339()
    current = _condition(conds, ctype)
    if current is None:
        conds.append({"type": ctype, "status": status, "lastUpdateTime": ts, "lastTransitionTime": ts,
                      "reason": reason, "message": message})
        return
    if current.get("status") != status:
        current["lastTransitionTime"] = ts
    if current.get("status") != status or current.get("reason") != reason or current.get("message") != message:
        current["lastUpdateTime"] = ts
    elif update_time:
        current["lastUpdateTime"] = ts
    current.update(status=status, reason=reason, message=message)


class WorkloadControllers:
    def __init__(self, registry):
        self.registry = registry
        self.store = registry.store
        self._progress = {}        # deployment uid -> time of last progress
        self._backoff = {}         # replicaset uid -> (next attempt time, delay)

    # --- ReplicaSets -----------------------------------------------------------------------------
    def sync_replicasets(self):
        pods_by_owner = {}
        for pod in self.store.items("/pods"):
            pods_by_owner.setdefault(controller_uid(pod), []).append(pod)
        for rs in self.store.items("apps/replicasets"):
            if not rs["metadata"].get("deletionTimestamp"):
                self._sync_rs(rs, pods_by_owner.get(rs["metadata"]["uid"], []))

    def _sync_rs(self, rs, pods):
        active = [p for p in pods if not p["metadata"].get("deletionTimestamp")
                  and dig(p, "status", "phase") not in ("Succeeded", "Failed")]
        want = dig(rs, "spec", "replicas", default=1)
        failure = None
        if len(active) < want:
            failure = self._create_pods(rs, want - len(active))
        elif len(active) > want:
            for pod in sorted(active, key=_deletion_rank)[:len(active) - want]:
                self.registry.delete(BY_KEY["/pods"], pod["metadata"]["namespace"],
                                     pod["metadata"]["name"])
                self.registry.events.record(rs, "Normal", "SuccessfulDelete",
                                            f"Deleted pod: {pod['metadata']['name']}", "replicaset-controller")
        self._rs_status(rs, failure)

    def _create_pods(self, rs, count):
        uid = rs["metadata"]["uid"]
        next_try, delay = self._backoff.get(uid, (0, 0.5))
        if now() < next_try:
            return self._failure_message(rs)
        template = dig(rs, "spec", "template", default={})
        for _ in range(min(count, 100)):
            meta = clone(template.get("metadata") or {})
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"generateName": rs["metadata"]["name"] + "-",
                                "namespace": rs["metadata"]["namespace"],
                                "labels": meta.get("labels") or {},
                                "ownerReferences": [owner_ref(rs, "apps/v1", "ReplicaSet")]},
                   "spec": clone(template.get("spec") or {})}
            if meta.get("annotations"):
                pod["metadata"]["annotations"] = meta["annotations"]
            try:
                created = self.registry.create(BY_KEY["/pods"], rs["metadata"]["namespace"], pod, MANAGER)
            except ApiError as err:
                self.registry.events.record(rs, "Warning", "FailedCreate", f"Error creating: {err.message}",
                                            "replicaset-controller")
                self._backoff[uid] = (now() + delay, min(delay * 2, 5.0))
                return err.message
            self._backoff.pop(uid, None)
            self.registry.events.record(rs, "Normal", "SuccessfulCreate",
                                        f"Created pod: {created['metadata']['name']}", "replicaset-controller")
        return None

    def _failure_message(self, rs):
        cond = _condition(dig(rs, "status", "conditions", default=[]) or [], "ReplicaFailure")
        return cond.get("message") if cond else "back-off"

    def _rs_status(self, rs, failure):
        rs = self.store.get("apps/replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])
        if rs is None:
            return
        pods = [p for p in self.store.items("/pods", rs["metadata"]["namespace"])
                if controller_uid(p) == rs["metadata"]["uid"] and not p["metadata"].get("deletionTimestamp")
                and dig(p, "status", "phase") not in ("Succeeded", "Failed")]
        ready = sum(1 for p in pods if _pod_ready(p))
        status = clone(rs.get("status") or {})
        status.update(replicas=len(pods), fullyLabeledReplicas=len(pods), readyReplicas=ready,
                      availableReplicas=ready, observedGeneration=rs["metadata"].get("generation", 1))
        for key in ("readyReplicas", "availableReplicas", "fullyLabeledReplicas"):
            if not status[key]:
                status.pop(key)
        conds = status.get("conditions") or []
        if failure and failure != "back-off":
            _set_condition(conds, "ReplicaFailure", "True", "FailedCreate", failure, update_time=False)
            for c in conds:
                c.pop("lastUpdateTime", None)
        elif failure is None:
            conds = [c for c in conds if c.get("type") != "ReplicaFailure"]
        if conds:
            status["conditions"] = conds
        else:
            status.pop("conditions", None)
        if status != rs.get("status"):
            new = clone(rs)
            new["status"] = status
            self.registry.write_internal(rs, new, MANAGER, "status")

    # --- Deployments ----------------------------------------------------------------------------
    def sync_deployments(self):
        for d in self.store.items("apps/deployments"):
            if not d["metadata"].get("deletionTimestamp"):
                self._sync_deployment(clone(d))

    def _owned_rs(self, d):
        return sorted((rs for rs in self.store.items("apps/replicasets", d["metadata"]["namespace"])
                       if controller_uid(rs) == d["metadata"]["uid"]),
                      key=lambda r: (r["metadata"]["creationTimestamp"], r["metadata"]["name"]))

    def _sync_deployment(self, d):
        spec = d["spec"]
        all_rs = self._owned_rs(d)
        template = spec.get("template") or {}
        new_rs = next((rs for rs in all_rs if _strip_hash(dig(rs, "spec", "template")) == template), None)
        old_rs = [rs for rs in all_rs if rs is not new_rs]
        max_rev = max([_revision(rs) for rs in old_rs] or [0])
        created = False
        if not spec.get("paused"):
            if new_rs is None:
                new_rs, created = self._create_rs(d, max_rev + 1, old_rs), True
            elif _revision(new_rs) <= max_rev:
                new_rs = self._set_rs(new_rs, annotations={REVISION: str(max_rev + 1)})
            if dig(spec, "strategy", "type") == "Recreate":
                self._recreate(d, new_rs, old_rs)
            else:
                self._rolling(d, new_rs, old_rs)
            self._cleanup(d, old_rs)
        self._deployment_status(d, new_rs, created)

    def _create_rs(self, d, revision, old_rs):
        template = clone(d["spec"]["template"])
        h = template_hash(template)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = clone(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        surge, _ = resolve_fenceposts(d["spec"])
        desired = d["spec"].get("replicas", 1)
        annotations = {k: v for k, v in (d["metadata"].get("annotations") or {}).items()
                       if k != "kubectl.kubernetes.io/last-applied-configuration" and not k.startswith("deployment.kubernetes.io/")}
        annotations.update({REVISION: str(revision), "deployment.kubernetes.io/desired-replicas": str(desired),
                            "deployment.kubernetes.io/max-replicas": str(desired + surge)})
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{d['metadata']['name']}-{h}", "namespace": d["metadata"]["namespace"],
                           "labels": dict(template["metadata"]["labels"]), "annotations": annotations,
                           "ownerReferences": [owner_ref(d, "apps/v1", "Deployment")]},
              "spec": {"replicas": 0, "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                       "selector": selector, "template": template}}
        rtype = BY_KEY["apps/replicasets"]
        try:
            created = self.registry.create(rtype, d["metadata"]["namespace"], rs, MANAGER)
        except ApiError as err:
            self.registry.events.record(d, "Warning", "FailedCreate", err.message, "deployment-controller")
            return None
        return created

    def _set_rs(self, rs, replicas=None, annotations=None, deployment=None):
        new = clone(rs)
        if replicas is not None:
            new["spec"]["replicas"] = replicas
        if annotations:
            new["metadata"].setdefault("annotations", {}).update(annotations)
        written = self.registry.write_internal(rs, new, MANAGER, bump_generation=True)
        if deployment is not None and replicas is not None and replicas != rs["spec"].get("replicas", 0):
            verb = "up" if replicas > rs["spec"].get("replicas", 0) else "down"
            self.registry.events.record(
                deployment, "Normal", "ScalingReplicaSet",
                f"Scaled {verb} replica set {rs['metadata']['name']} from {rs['spec'].get('replicas', 0)} to {replicas}",
                "deployment-controller")
        return written

    def _rolling(self, d, new_rs, old_rs):
        if new_rs is None:
            return
        desired = d["spec"].get("replicas", 1)
        surge, unavailable = resolve_fenceposts(d["spec"])
        all_rs = [new_rs] + old_rs
        new_count = new_rs["spec"].get("replicas", 0)
        if new_count > desired:
            new_rs = self._set_rs(new_rs, desired, self._size_annotations(desired, surge), d)
        elif new_count < desired:
            total = sum(rs["spec"].get("replicas", 0) for rs in all_rs)
            room = desired + surge - total
            if room > 0:
                new_rs = self._set_rs(new_rs, new_count + min(room, desired - new_count),
                                      self._size_annotations(desired, surge), d)
        old_total = sum(rs["spec"].get("replicas", 0) for rs in old_rs)
        if old_total == 0:
            return
        all_rs = [new_rs] + old_rs
        all_count = sum(rs["spec"].get("replicas", 0) for rs in all_rs)
        min_available = desired - unavailable
        new_unavailable = new_rs["spec"].get("replicas", 0) - dig(new_rs, "status", "availableReplicas", default=0)
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return
        cleaned = 0
        for i, rs in enumerate(old_rs):
            spec_n = rs["spec"].get("replicas", 0)
            avail = dig(rs, "status", "availableReplicas", default=0)
            if spec_n == 0 or spec_n == avail or cleaned >= max_scaled_down:
                continue
            down = min(max_scaled_down - cleaned, spec_n - avail)
            old_rs[i] = self._set_rs(rs, spec_n - down, deployment=d)
            cleaned += down
        available = sum(dig(rs, "status", "availableReplicas", default=0) for rs in [new_rs] + old_rs)
        budget = available - min_available - cleaned
        for i, rs in enumerate(old_rs):
            spec_n = rs["spec"].get("replicas", 0)
            if budget <= 0:
                break
            if spec_n == 0:
                continue
            down = min(spec_n, budget)
            old_rs[i] = self._set_rs(rs, spec_n - down, deployment=d)
            budget -= down

    def _size_annotations(self, desired, surge):
        return {"deployment.kubernetes.io/desired-replicas": str(desired),
                "deployment.kubernetes.io/max-replicas": str(desired + surge)}

    def _recreate(self, d, new_rs, old_rs):
        for i, rs in enumerate(old_rs):
            if rs["spec"].get("replicas", 0):
                old_rs[i] = self._set_rs(rs, 0, deployment=d)
        old_uids = {rs["metadata"]["uid"] for rs in old_rs}
        if any(controller_uid(p) in old_uids for p in self.store.items("/pods", d["metadata"]["namespace"])):
            return
        desired = d["spec"].get("replicas", 1)
        if new_rs is not None and new_rs["spec"].get("replicas", 0) != desired:
            self._set_rs(new_rs, desired, deployment=d)

    def _cleanup(self, d, old_rs):
        limit = d["spec"].get("revisionHistoryLimit", 10)
        idle = [rs for rs in old_rs if rs["spec"].get("replicas", 0) == 0
                and not dig(rs, "status", "replicas", default=0)]
        idle.sort(key=_revision)
        for rs in idle[:max(0, len(idle) - limit)]:
            self.registry.delete(BY_KEY["apps/replicasets"], rs["metadata"]["namespace"],
                                 rs["metadata"]["name"])

    def _deployment_status(self, d, new_rs, created):
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        d = self.store.get("apps/deployments", ns, name)
        if d is None:
            return
        all_rs = self._owned_rs(d)
        if new_rs is not None:
            new_rs = next((rs for rs in all_rs if rs["metadata"]["uid"] == new_rs["metadata"]["uid"]), None)
        desired = d["spec"].get("replicas", 1)
        _, unavailable = resolve_fenceposts(d["spec"])
        old = d.get("status") or {}
        status = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": sum(dig(rs, "status", "replicas", default=0) for rs in all_rs),
            "updatedReplicas": dig(new_rs, "status", "replicas", default=0) if new_rs else 0,
            "readyReplicas": sum(dig(rs, "status", "readyReplicas", default=0) for rs in all_rs),
            "availableReplicas": sum(dig(rs, "status", "availableReplicas", default=0) for rs in all_rs),
        }
        spec_total = sum(rs["spec"].get("replicas", 0) for rs in all_rs)
        status["unavailableReplicas"] = max(spec_total - status["availableReplicas"], 0)
        conds = clone(old.get("conditions") or [])
        if status["availableReplicas"] >= desired - unavailable:
            _set_condition(conds, "Available", "True", "MinimumReplicasAvailable",
                           "Deployment has minimum availability.", update_time=False)
        else:
            _set_condition(conds, "Available", "False", "MinimumReplicasUnavailable",
                           "Deployment does not have minimum availability.", update_time=False)
        self._progressing(d, conds, new_rs, created, old, status, desired)
        failures = [c for rs in all_rs for c in dig(rs, "status", "conditions", default=[]) or []
                    if c.get("type") == "ReplicaFailure" and c.get("status") == "True"]
        if failures:
            _set_condition(conds, "ReplicaFailure", "True", failures[0].get("reason", "FailedCreate"),
                           failures[0].get("message", ""), update_time=False)
        else:
            conds = [c for c in conds if c.get("type") != "ReplicaFailure"]
        order = {"Available": 0, "Progressing": 1, "ReplicaFailure": 2}
        conds.sort(key=lambda c: order.get(c["type"], 3))
        status["conditions"] = conds
        for key in ("readyReplicas", "availableReplicas", "unavailableReplicas", "updatedReplicas", "replicas"):
            if not status.get(key):
                status.pop(key, None)
        if new_rs is not None and dig(d, "metadata", "annotations", REVISION) != str(_revision(new_rs)):
            updated = clone(d)
            updated["metadata"].setdefault("annotations", {})[REVISION] = str(_revision(new_rs))
            d = self.registry.write_internal(d, updated, MANAGER)
        if status != d.get("status"):
            new = clone(d)
            new["status"] = status
            self.registry.write_internal(d, new, MANAGER, "status")

    def _progressing(self, d, conds, new_rs, created, old, status, desired):
        uid = d["metadata"]["uid"]
        deadline = d["spec"].get("progressDeadlineSeconds")
        if d["spec"].get("paused"):
            _set_condition(conds, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused",
                           update_time=False)
            self._progress[uid] = now()
            return
        rs_name = new_rs["metadata"]["name"] if new_rs else ""
        complete = (new_rs is not None and status["updatedReplicas"] == desired
                    and status["availableReplicas"] == desired and status["replicas"] == desired)
        current = _condition(conds, "Progressing")
        if complete:
            _set_condition(conds, "Progressing", "True", "NewReplicaSetAvailable",
                           f'ReplicaSet "{rs_name}" has successfully progressed.', update_time=False)
            self._progress[uid] = now()
            return
        progressed = (status["updatedReplicas"] > old.get("updatedReplicas", 0)
                      or status["replicas"] - status["updatedReplicas"]
                      < old.get("replicas", 0) - old.get("updatedReplicas", 0)
                      or status["readyReplicas"] > old.get("readyReplicas", 0)
                      or status["availableReplicas"] > old.get("availableReplicas", 0))
        if created:
            _set_condition(conds, "Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{rs_name}"')
            self._progress[uid] = now()
        elif current is None or (current.get("reason") == "NewReplicaSetAvailable") or progressed:
            reason = "ReplicaSetUpdated" if current is not None else "NewReplicaSetCreated"
            message = (f'ReplicaSet "{rs_name}" is progressing.' if reason == "ReplicaSetUpdated"
                       else f'Created new replica set "{rs_name}"')
            _set_condition(conds, "Progressing", "True", reason, message)
            self._progress[uid] = now()
        elif deadline is not None and current.get("reason") != "ProgressDeadlineExceeded":
            started = self._progress.setdefault(uid, now())
            if now() - started > deadline:
                _set_condition(conds, "Progressing", "False", "ProgressDeadlineExceeded",
                               f'ReplicaSet "{rs_name}" has timed out progressing.')


def _pod_ready(pod):
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in dig(pod, "status", "conditions", default=[]) or [])


def _deletion_rank(pod):
    """Pods a ReplicaSet deletes first: unscheduled, pending, not ready, newest."""
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(dig(pod, "status", "phase"), 0)
    created = pod["metadata"].get("creationTimestamp", "")
    return (1 if dig(pod, "spec", "nodeName") else 0, phase_rank, 1 if _pod_ready(pod) else 0,
            "".join(chr(255 - ord(ch)) for ch in created))
