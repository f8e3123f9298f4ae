"""What runs in the pods, as far as the API server can see it: the service proxy, an emulated
application behind it, and the resource metrics API (metrics-server) fed by that application.

The stand-in has no containers, so every pod answers like a small CPU-bound web app (the
Kubernetes docs' ``hpa-example``: each request burns some CPU and returns ``OK!``):

* ``/api/v1/namespaces/{ns}/services/{name}[:port]/proxy/{path}`` (GET, HEAD, POST, PUT,
  PATCH, DELETE), authorised as the HTTP method's verb (GET/HEAD: ``get``) on
  ``services/proxy``, picks the next ready pod matching the Service's selector (round
  robin) and answers ``200 OK!`` (``text/html``) after the request's latency; no ready
  pod: ``503 ServiceUnavailable`` "no endpoints available for service "NAME"", as the
  API server says.
* A pod serves one request at a time at the speed its CPU allows: a request costs
  ``api.app_cpu_per_request`` CPU-seconds (0.05) and runs at the pod's CPU limit (the sum
  of its containers' limits; 1 core when a container has none), so a pod served faster
  than its limit allows queues requests and its latency grows with its load, as a
  throttled container's does. ``api.app_base_latency`` (2 ms) is added to every answer.
* CPU usage over the metrics window = the CPU-seconds of the requests the pod finished in
  the last ``api.metrics_window`` seconds (15) / the window, plus ``api.app_idle_cpu``
  (1 millicore); memory is ``api.app_memory`` (20 MiB) plus 4 KiB per request in the
  window. A pod has metrics once it has been running for a window (metrics-server needs
  two scrapes), and only while it runs.
* ``metrics.k8s.io/v1beta1`` (``api.metrics_server = True``, the default): PodMetrics and
  NodeMetrics (get, list, ``labelSelector``), CPU in nanocores (``"12345678n"``), memory in
  KiB (``"20480Ki"``), ``timestamp`` and ``window`` like metrics-server. With
  ``api.metrics_server = False`` the group is absent (discovery and every path: 404 "the
  server could not find the requested resource"), as on a cluster without metrics-server.
"""

from __future__ import annotations

import calendar
import collections
import threading
import time

from .errors import ApiError, not_found
from .meta import dig, rfc3339
from .quantity import QuantityError, parse
from .selectors import labels_match, parse_label_selector

METRICS_GROUP = "metrics.k8s.io"
METRICS_VERSION = "v1beta1"
NOT_FOUND = ApiError(404, "NotFound", "the server could not find the requested resource", {})
NODE_BASE_CPU = 0.1            # cores the node itself uses (kubelet, runtime)
NODE_BASE_MEMORY = 1 << 30     # bytes
_PROXY_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _epoch(stamp):
    try:
        return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    except (TypeError, ValueError):
        return None


def pod_ready(pod):
    return (dig(pod, "status", "phase") == "Running" and not pod["metadata"].get("deletionTimestamp")
            and any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in dig(pod, "status", "conditions", default=[]) or []))


def pod_started(pod):
    """When the pod's containers started running (epoch seconds), or None."""
    starts = [_epoch(dig(s, "state", "running", "startedAt"))
              for s in dig(pod, "status", "containerStatuses", default=[]) or []]
    starts = [s for s in starts if s is not None]
    return max(starts) if starts and len(starts) == len(dig(pod, "spec", "containers", default=[])) else None


def cpu_capacity(pod):
    """Cores a pod may use: the sum of its containers' CPU limits, 1 core when one has none."""
    total = 0.0
    for container in dig(pod, "spec", "containers", default=[]) or []:
        limit = dig(container, "resources", "limits", "cpu")
        if limit is None:
            return 1.0
        try:
            total += float(parse(limit))
        except QuantityError:
            return 1.0
    return total or 1.0


class _PodLoad:
    __slots__ = ("busy_until", "served")

    def __init__(self):
        self.busy_until = 0.0
        self.served = collections.deque()   # (finish time, CPU-seconds)


class AppEmulation:
    """The emulated app's accounting, shared by the proxy, the metrics API and the HPA controller."""

    def __init__(self, standin):
        self.standin = standin
        self._lock = threading.Lock()
        self._pods = {}        # pod uid -> _PodLoad
        self._next = {}        # (namespace, service) -> round-robin index

    def reset(self):
        with self._lock:
            self._pods.clear()
            self._next.clear()

    # --- serving ---------------------------------------------------------------------------
    def admit(self, pod):
        """Queue one request on the pod; return how long it takes to answer (seconds)."""
        cost = max(0.0, float(self.standin.app_cpu_per_request))
        service_time = cost / cpu_capacity(pod)
        now = time.monotonic()
        with self._lock:
            load = self._pods.setdefault(pod["metadata"]["uid"], _PodLoad())
            start = max(now, load.busy_until)
            finish = start + service_time
            load.busy_until = finish
            load.served.append((finish, cost))
        return finish - now + max(0.0, float(self.standin.app_base_latency))

    # --- usage -----------------------------------------------------------------------------
    def usage(self, pod, now=None):
        """(CPU cores, memory bytes) averaged over the metrics window."""
        window = max(0.1, float(self.standin.metrics_window))
        now = time.monotonic() if now is None else now
        cpu, requests = 0.0, 0
        with self._lock:
            load = self._pods.get(pod["metadata"]["uid"])
            if load is not None:
                while load.served and load.served[0][0] < now - window:
                    load.served.popleft()
                for finish, cost in load.served:
                    if finish <= now:
                        cpu += cost
                        requests += 1
        cores = min(cpu_capacity(pod), cpu / window) + float(self.standin.app_idle_cpu)
        memory = int(parse(self.standin.app_memory)) + 4096 * requests
        return cores, memory

    def has_metrics(self, pod):
        """metrics-server reports a pod once it has run for a window (two scrapes)."""
        if dig(pod, "status", "phase") != "Running" or pod["metadata"].get("deletionTimestamp"):
            return False
        started = pod_started(pod)
        return started is not None and time.time() - started >= float(self.standin.metrics_window)

    # --- the service proxy -----------------------------------------------------------------
    def proxy(self, req, api, namespace, name_port, path):
        from .rest import Response
        parts = name_port.split(":")
        if len(parts) == 3:
            parts = parts[1:]           # scheme:name:port
        name, port = parts[0], (parts[1] if len(parts) > 1 else "")
        verb = _PROXY_VERBS.get(req.method)
        if verb is None:
            from .errors import method_not_allowed
            raise method_not_allowed()
        api.authorizer.check(req.identity, {"verb": verb, "group": "", "resource": "services", "subresource": "proxy",
                                            "name": name, "namespace": namespace})
        store = api.store
        with store.lock:
            service = store.get("/services", namespace, name)
            if service is None:
                raise not_found("services", "", name)
            ports = dig(service, "spec", "ports", default=[]) or []
            chosen = None
            if port:
                for entry in ports:
                    if port == entry.get("name") or port == str(entry.get("port")):
                        chosen = entry
                        break
                if chosen is None and port.isdigit():
                    raise ApiError(503, "ServiceUnavailable", f'no service port {port} found for service "{name}"', {})
            elif ports:
                chosen = ports[0]
            selector = dig(service, "spec", "selector") or {}
            pods = []
            if chosen is not None and selector:
                reqs = [(k, "=", [v]) for k, v in selector.items()]
                for pod in store.items("/pods", namespace):
                    if pod_ready(pod) and labels_match(reqs, pod["metadata"].get("labels")) \
                            and self._serves_port(pod, chosen.get("targetPort", chosen.get("port"))):
                        pods.append(pod)
            if not pods:
                raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{name}"', {})
            pods.sort(key=lambda p: p["metadata"]["name"])
            with self._lock:
                index = self._next.get((namespace, name), 0)
                self._next[(namespace, name)] = index + 1
            pod = pods[index % len(pods)]
        time.sleep(self.admit(pod))
        # HEAD arrives here as GET (server.py): the front end sends the headers only.
        return Response(200, b"OK!", "text/html; charset=UTF-8")

    @staticmethod
    def _serves_port(pod, target):
        """A named targetPort must be a named container port of the pod (else no endpoint, as
        the endpoints controller does); a number is taken as listening."""
        if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
            return True
        return any(p.get("name") == target for c in dig(pod, "spec", "containers", default=[]) or []
                   for p in c.get("ports") or [])

    # --- the metrics API -------------------------------------------------------------------
    def discovery_group(self):
        gv = {"groupVersion": f"{METRICS_GROUP}/{METRICS_VERSION}", "version": METRICS_VERSION}
        return {"name": METRICS_GROUP, "versions": [gv], "preferredVersion": gv}

    def resource_list(self):
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{METRICS_GROUP}/{METRICS_VERSION}",
                "resources": [
                    {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
                    {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]}]}

    def _window(self):
        window = float(self.standin.metrics_window)
        return f"{window:g}s"

    @staticmethod
    def _cpu(cores):
        return f"{int(round(cores * 1e9))}n"

    @staticmethod
    def _memory(value):
        return f"{int(value) // 1024}Ki"

    def pod_metrics(self, pod, now=None):
        """A PodMetrics document for a pod that has metrics (its containers share its usage)."""
        cores, memory = self.usage(pod, now)
        containers = dig(pod, "spec", "containers", default=[]) or []
        share = max(1, len(containers))
        meta = pod["metadata"]
        return {"metadata": {"name": meta["name"], "namespace": meta["namespace"], "creationTimestamp": rfc3339(),
                             "labels": dict(meta.get("labels") or {})},
                "timestamp": rfc3339(), "window": self._window(),
                "containers": [{"name": c["name"], "usage": {"cpu": self._cpu(cores / share), "memory": self._memory(memory / share)}}
                               for c in containers]}

    def node_metrics(self, node, pods):
        cpu, memory = NODE_BASE_CPU, NODE_BASE_MEMORY
        for pod in pods:
            if dig(pod, "spec", "nodeName") == node["metadata"]["name"] and self.has_metrics(pod):
                cores, used = self.usage(pod)
                cpu, memory = cpu + cores, memory + used
        return {"metadata": {"name": node["metadata"]["name"], "creationTimestamp": rfc3339(),
                             "labels": dict(node["metadata"].get("labels") or {})},
                "timestamp": rfc3339(), "window": self._window(),
                "usage": {"cpu": self._cpu(cpu), "memory": self._memory(memory)}}

    def serve_metrics(self, req, api, rest):
        """GET /apis/metrics.k8s.io/v1beta1/{rest...}."""
        from .rest import Response
        if req.method != "GET":
            from .errors import method_not_allowed
            raise method_not_allowed()
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or rest[0] not in ("pods", "nodes") or len(rest) > 2 or (rest[0] == "nodes" and namespace):
            raise NOT_FOUND
        plural, name = rest[0], (rest[1] if len(rest) > 1 else "")
        api.authorizer.check(req.identity, {"verb": "get" if name else "list", "group": METRICS_GROUP, "resource": plural,
                                            "subresource": "", "name": name, "namespace": namespace or ""})
        reqs = parse_label_selector(req.q("labelSelector") or "")
        store = api.store
        with store.lock:
            if plural == "pods":
                pods = store.items("/pods", namespace) if namespace is not None else store.items("/pods")
                if name:
                    pod = next((p for p in pods if p["metadata"]["name"] == name), None)
                    if pod is None or not self.has_metrics(pod):
                        raise ApiError(404, "NotFound", f'podmetrics.metrics.k8s.io "{namespace}/{name}" not found',
                                       {"name": name, "group": METRICS_GROUP, "kind": "pods"})
                    return Response(200, {"kind": "PodMetrics", "apiVersion": f"{METRICS_GROUP}/{METRICS_VERSION}",
                                          **self.pod_metrics(pod)})
                items = [self.pod_metrics(p) for p in pods
                         if self.has_metrics(p) and labels_match(reqs, p["metadata"].get("labels"))]
                return Response(200, {"kind": "PodMetricsList", "apiVersion": f"{METRICS_GROUP}/{METRICS_VERSION}",
                                      "metadata": {}, "items": items})
            nodes = store.items("/nodes")
            all_pods = store.items("/pods")
            if name:
                node = next((n for n in nodes if n["metadata"]["name"] == name), None)
                if node is None:
                    raise ApiError(404, "NotFound", f'nodemetrics.metrics.k8s.io "{name}" not found',
                                   {"name": name, "group": METRICS_GROUP, "kind": "nodes"})
                return Response(200, {"kind": "NodeMetrics", "apiVersion": f"{METRICS_GROUP}/{METRICS_VERSION}",
                                      **self.node_metrics(node, all_pods)})
            items = [self.node_metrics(n, all_pods) for n in nodes if labels_match(reqs, n["metadata"].get("labels"))]
            return Response(200, {"kind": "NodeMetricsList", "apiVersion": f"{METRICS_GROUP}/{METRICS_VERSION}",
                                  "metadata": {}, "items": items})

