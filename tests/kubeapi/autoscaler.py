"""The horizontal pod autoscaler controller, after kube-controller-manager's
(pkg/controller/podautoscaler: horizontal.go, replica_calculator.go) and the algorithm the
Kubernetes docs describe ("Horizontal Pod Autoscaling", Algorithm details):

* every ``api.hpa_sync_period`` seconds (15, like ``--horizontal-pod-autoscaler-sync-period``),
  and at once when an HPA is new or its spec changed, read the target's scale;
* replicas 0: scaling disabled; above max / below min: clamp, no metrics needed;
* otherwise, for CPU ``Utilization`` targets: the pods matching the scale's selector, their
  requests (a container without a CPU request: ``missing request for cpu in container C of
  Pod P``), their usage from the metrics API (off: ``unable to fetch metrics from resource
  metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)``);
  pods being deleted or failed are ignored, pods not ready are left out (and counted at 0 %
  when scaling up), pods without metrics count at 100 % of their request when scaling down and
  0 % when scaling up; ``desired = ceil(ready pods × utilization / target)`` unless the ratio
  is within the 10 % tolerance; a rebalanced ratio that changes direction keeps the count;
* then ``spec.behavior``: stabilisation (scale-up window 0 s, scale-down 300 s by default:
  the highest recommendation of the window), rate limits of the policies (default scale-up
  max(4 pods, 100 %) per 15 s, scale-down 100 % per 15 s; ``selectPolicy`` Max/Min/Disabled),
  min/max clamp;
* write the scale subresource (so the Deployment controller makes the pods), a
  ``SuccessfulRescale`` event, and status: currentReplicas, desiredReplicas, currentMetrics,
  lastScaleTime, conditions AbleToScale / ScalingActive / ScalingLimited with the real
  reasons and messages.
"""

from __future__ import annotations

import math
import time

from .appload import pod_ready
from .controllers import _set_condition
from .meta import clone, dig, rfc3339
from .quantity import QuantityError, parse
from .resources import by_kind
from .selectors import labels_match

MANAGER = "horizontal-pod-autoscaler"
TOLERANCE = 0.1
DEFAULT_DOWN_WINDOW = 300
NO_METRICS_API = ("unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: "
                  "the server could not find the requested resource (get pods.metrics.k8s.io)")
DEFAULT_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
              "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]}
DEFAULT_DOWN = {"stabilizationWindowSeconds": DEFAULT_DOWN_WINDOW, "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


class MetricError(Exception):
    pass


class _State:
    def __init__(self):
        self.last_sync = None
        self.generation = None
        self.recommendations = []     # (time, replicas)
        self.up_events = []           # (time, replicas added)
        self.down_events = []         # (time, replicas removed)


class HorizontalPodAutoscalers:
    def __init__(self, registry, settings):
        self.registry = registry
        self.store = registry.store
        self.settings = settings
        self._state = {}              # hpa uid -> _State

    def sync(self):
        seen = set()
        now = time.monotonic()
        for hpa in self.store.items("autoscaling/horizontalpodautoscalers"):
            uid = hpa["metadata"]["uid"]
            seen.add(uid)
            state = self._state.setdefault(uid, _State())
            generation = hpa["metadata"].get("generation")
            period = max(0.05, float(getattr(self.settings, "hpa_sync_period", 15.0)))
            if state.last_sync is not None and state.generation == generation and now - state.last_sync < period:
                continue
            state.last_sync, state.generation = now, generation
            self._reconcile(hpa, state, now)
        for uid in set(self._state) - seen:
            del self._state[uid]

    # --- one HPA -----------------------------------------------------------------------------
    def _reconcile(self, hpa, state, now):
        spec, ns = hpa.get("spec") or {}, hpa["metadata"]["namespace"]
        ref = spec.get("scaleTargetRef") or {}
        rtype = by_kind(ref.get("apiVersion", "apps/v1"), ref.get("kind", ""))
        target = self.store.get(rtype.key, ns, ref.get("name", "")) if rtype else None
        status = clone(hpa.get("status") or {})
        status.setdefault("desiredReplicas", 0)
        conds = status.get("conditions") or []
        if target is None or "scale" not in (rtype.sub_by_name if rtype else {}):
            plural = rtype.plural if rtype else (ref.get("kind", "").lower() + "s")
            group = rtype.group if rtype else ref.get("apiVersion", "").rpartition("/")[0]
            _set_condition(conds, "AbleToScale", "False", "FailedGetScale",
                           f"the HPA controller was unable to get the target's current scale: "
                           f'{plural}/scale{"." + group if group else ""} "{ref.get("name")}" not found',
                           update_time=False)
            status.setdefault("currentReplicas", 0)
            return self._write(hpa, status, conds)
        current = target["spec"].get("replicas", 1)
        lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas", 1)
        status["currentReplicas"] = current
        _set_condition(conds, "AbleToScale", "True", "SucceededGetScale",
                       "the HPA controller was able to get the target's current scale", update_time=False)
        reason, metric_name = "", "cpu resource utilization (percentage of request)"
        if current == 0 and lo != 0:
            _set_condition(conds, "ScalingActive", "False", "ScalingDisabled",
                           "scaling is disabled since the replica count of the target is zero", update_time=False)
            status["desiredReplicas"] = 0
            return self._write(hpa, status, conds)
        if current > hi:
            desired, reason = hi, "Current number of replicas above Spec.MaxReplicas"
        elif current < lo:
            desired, reason = lo, "Current number of replicas below Spec.MinReplicas"
        else:
            try:
                proposal, metrics_status = self._replicas_for_metrics(spec, ns, target, current)
            except MetricError as err:
                _set_condition(conds, "ScalingActive", "False", "FailedGetResourceMetric",
                               f"the HPA was unable to compute the replica count: {err}", update_time=False)
                status.pop("currentMetrics", None)
                return self._write(hpa, status, conds, event=("Warning", "FailedGetResourceMetric", str(err)))
            status["currentMetrics"] = metrics_status
            _set_condition(conds, "ScalingActive", "True", "ValidMetricFound",
                           f"the HPA was able to successfully calculate a replica count from {metric_name}",
                           update_time=False)
            desired = self._normalize(spec, state, conds, current, proposal, lo, hi, now)
            reason = (f"{metric_name} above target" if desired > current else "All metrics below target")
        if desired != current:
            scaled = clone(target)
            scaled["spec"]["replicas"] = desired
            self.registry.write_internal(target, scaled, MANAGER, "scale", bump_generation=True)
            self.registry.events.record(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}", MANAGER)
            (state.up_events if desired > current else state.down_events).append((now, abs(desired - current)))
            status["lastScaleTime"] = rfc3339()
            _set_condition(conds, "AbleToScale", "True", "SucceededRescale",
                           f"the HPA controller was able to update the target scale to {desired}", update_time=False)
        status["desiredReplicas"] = desired
        return self._write(hpa, status, conds)

    def _write(self, hpa, status, conds, event=None):
        for c in conds:
            c.pop("lastUpdateTime", None)
        status["conditions"] = conds
        if event is not None:
            self.registry.events.record(hpa, event[0], event[1], event[2], MANAGER)
        if status != hpa.get("status"):
            new = clone(hpa)
            new["status"] = status
            self.registry.write_internal(hpa, new, MANAGER, "status")

    # --- metrics -------------------------------------------------------------------------------
    def _replicas_for_metrics(self, spec, ns, target, current):
        metrics = spec.get("metrics") or []
        cpu = next((m for m in metrics if m.get("type") == "Resource" and dig(m, "resource", "name") == "cpu"
                    and dig(m, "resource", "target", "type") == "Utilization"), None)
        if cpu is None:
            raise MetricError("invalid metrics: the stand-in computes only Resource cpu Utilization targets")
        target_util = dig(cpu, "resource", "target", "averageUtilization", default=80)
        if not self.settings.metrics_server:
            raise MetricError(f"failed to get cpu utilization: {NO_METRICS_API}")
        selector = dig(target, "spec", "selector", "matchLabels") or {}
        reqs = [(k, "=", [v]) for k, v in selector.items()]
        for e in dig(target, "spec", "selector", "matchExpressions", default=[]) or []:
            op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(e.get("operator"), "exists")
            reqs.append((e.get("key"), op, list(e.get("values") or [])))
        pods = [p for p in self.store.items("/pods", target["metadata"]["namespace"])
                if labels_match(reqs, p["metadata"].get("labels"))]
        if not pods:
            raise MetricError("failed to get cpu utilization: no pods returned by selector while calculating replica count")
        app = self.settings.app
        requests, usage, ready, unready, missing = {}, {}, 0, [], []
        for pod in pods:
            name = pod["metadata"]["name"]
            if pod["metadata"].get("deletionTimestamp") or dig(pod, "status", "phase") == "Failed":
                continue          # ignored pods
            total = 0.0
            for c in dig(pod, "spec", "containers", default=[]) or []:
                request = dig(c, "resources", "requests", "cpu")
                if request is None:
                    raise MetricError(f"failed to get cpu utilization: missing request for cpu in container {c['name']} of Pod {name}")
                try:
                    total += float(parse(request))
                except QuantityError:
                    raise MetricError(f"failed to get cpu utilization: missing request for cpu in container {c['name']} of Pod {name}")
            requests[name] = total
            if not app.has_metrics(pod):
                missing.append(name)
            elif not pod_ready(pod):
                unready.append(name)
            else:
                ready += 1
                usage[name] = app.usage(pod)[0]
        if not usage:
            raise MetricError("failed to get cpu utilization: did not receive metrics for targeted pods (pods might be unready)")
        ratio, utilization, average = _ratio(usage, requests, target_util)
        status = [{"type": "Resource", "resource": {"name": "cpu", "current": {
            "averageUtilization": utilization, "averageValue": f"{int(average * 1000)}m"}}}]
        scale_up_with_unready = bool(unready) and ratio > 1.0
        if not scale_up_with_unready and not missing:
            if abs(1.0 - ratio) <= TOLERANCE:
                return current, status
            return int(math.ceil(ratio * ready)), status
        for name in missing:
            usage[name] = requests[name] if ratio < 1.0 else 0.0
        if scale_up_with_unready:
            for name in unready:
                usage[name] = 0.0
        new_ratio, _util, _avg = _ratio(usage, requests, target_util)
        if abs(1.0 - new_ratio) <= TOLERANCE or (ratio < 1.0 and new_ratio > 1.0) or (ratio > 1.0 and new_ratio < 1.0):
            return current, status
        proposal = int(math.ceil(new_ratio * len(usage)))
        if (new_ratio < 1.0 and proposal > current) or (new_ratio > 1.0 and proposal < current):
            return current, status
        return proposal, status

    # --- behavior ----------------------------------------------------------------------------
    def _normalize(self, spec, state, conds, current, proposal, lo, hi, now):
        behavior = spec.get("behavior") or {}
        up = {**DEFAULT_UP, **(behavior.get("scaleUp") or {})}
        down = {**DEFAULT_DOWN, **(behavior.get("scaleDown") or {})}
        up_window = up.get("stabilizationWindowSeconds")
        down_window = down.get("stabilizationWindowSeconds")
        up_window = 0 if up_window is None else up_window
        down_window = DEFAULT_DOWN_WINDOW if down_window is None else down_window
        up_rec = down_rec = proposal
        for stamp, value in state.recommendations:
            if stamp > now - up_window:
                up_rec = min(up_rec, value)
            if stamp > now - down_window:
                down_rec = max(down_rec, value)
        stabilized = max(current, up_rec)
        stabilized = min(stabilized, down_rec)
        keep = max(up_window, down_window)
        state.recommendations = [(s, v) for s, v in state.recommendations if s > now - keep] + [(now, proposal)]
        if stabilized != proposal:
            if proposal >= current:
                _set_condition(conds, "AbleToScale", "True", "ScaleUpStabilized",
                               "recent recommendations were lower than current one, applying the lowest recent recommendation",
                               update_time=False)
            else:
                _set_condition(conds, "AbleToScale", "True", "ScaleDownStabilized",
                               "recent recommendations were higher than current one, applying the highest recent recommendation",
                               update_time=False)
        else:
            _set_condition(conds, "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size",
                           update_time=False)
        desired, reason, message = stabilized, "DesiredWithinRange", "the desired count is within the acceptable range"
        if stabilized > current:
            limit = max(current, _up_limit(current, state, up, now))
            allowed, why = (limit, ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")) \
                if hi > limit else (hi, ("TooManyReplicas", "the desired replica count is more than the maximum replica count"))
            if stabilized > allowed:
                desired, (reason, message) = allowed, why
        elif stabilized < current:
            limit = min(current, _down_limit(current, state, down, now))
            allowed, why = (limit, ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate")) \
                if lo < limit else (lo, ("TooFewReplicas", "the desired replica count is less than the minimum replica count"))
            if stabilized < allowed:
                desired, (reason, message) = allowed, why
        _set_condition(conds, "ScalingLimited", "True" if desired != stabilized else "False", reason, message, update_time=False)
        return desired


def _ratio(usage, requests, target_util):
    """(usage ratio, utilization %, average usage in cores) over the pods that have usage."""
    used = sum(usage.values())
    requested = sum(requests[name] for name in usage)
    if requested <= 0:
        return 0.0, 0, 0.0
    utilization = int(used * 100 / requested)
    return (used * 100 / requested) / target_util, utilization, used / max(1, len(usage))


def _changed(events, period, now):
    return sum(change for stamp, change in events if stamp > now - period)


def _up_limit(current, state, rules, now):
    if rules.get("selectPolicy") == "Disabled":
        return current
    pick, result = (min, math.inf) if rules.get("selectPolicy") == "Min" else (max, -math.inf)
    for policy in rules.get("policies") or []:
        period = policy.get("periodSeconds", 15)
        start = current - _changed(state.up_events, period, now) + _changed(state.down_events, period, now)
        if policy.get("type") == "Pods":
            proposed = start + policy.get("value", 0)
        else:
            proposed = int(math.ceil(start * (1 + policy.get("value", 0) / 100)))
        result = pick(result, proposed)
    return current if result in (math.inf, -math.inf) else int(result)


def _down_limit(current, state, rules, now):
    if rules.get("selectPolicy") == "Disabled":
        return current
    pick, result = (max, -math.inf) if rules.get("selectPolicy") == "Min" else (min, math.inf)
    for policy in rules.get("policies") or []:
        period = policy.get("periodSeconds", 15)
        start = current + _changed(state.down_events, period, now) - _changed(state.up_events, period, now)
        if policy.get("type") == "Pods":
            proposed = start - policy.get("value", 0)
        else:
            proposed = int(start * (1 - policy.get("value", 0) / 100))
        result = pick(result, proposed)
    return current if result in (math.inf, -math.inf) else int(result)
