"""What a Kubernetes cluster looks like, read with a fixed number of list calls.

`observe_cluster(api_client)` makes nine requests whatever the size of the cluster:
the version, then one list each of nodes, namespaces, pods, deployments, services and
HorizontalPodAutoscalers across all namespaces and of Warning events, every list with
resourceVersion=0 (served from the API server's watch cache, no etcd quorum read), and one
list of every pod's CPU and memory from the resource metrics API (metrics-server; a cluster
without it answers 404 and the figures are simply absent). Lists are read as raw JSON:
parsing 2,000 pods into client model objects costs more than the request itself.

The pods list also feeds the observed state of the services the panel deployed there
(`pod_row`, keyed by the filrouge.service label), so no service costs another call, and
the index of running pods and their containers (`observed["pods"]`, at most
RUNNING_PODS_KEPT) that the cluster page and the pod terminal's container picker read.

Only job code calls this module.
"""

import json
import time
from collections import Counter

from kubernetes import client as kube_client

from clusters.drivers.base import NotFound, PermissionRefused
from clusters.drivers.kubernetes import api_errors, describe, pod_metrics

WARNINGS_KEPT = 20
RUNNING_PODS_KEPT = 500
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
SERVICE_LABEL = "filrouge.service"
RELEASE_LABEL = "filrouge.release"


class CallCounter:
    def __init__(self):
        self.calls = []

    def add(self, what):
        self.calls.append(what)


def _raw(call, *args, counter=None, **kwargs):
    response = call(*args, _preload_content=False, **kwargs)
    try:
        data = json.loads(response.data)
    finally:
        response.release_conn()
    if counter is not None:
        counter.add(getattr(call, "__name__", "call"))
    return data


def node_row(item):
    meta, status = item.get("metadata") or {}, item.get("status") or {}
    labels = meta.get("labels") or {}
    roles = sorted(key.split("/", 1)[1] for key in labels if key.startswith("node-role.kubernetes.io/") and key.split("/", 1)[1]) or ["worker"]
    ready = next((c.get("status") == "True" for c in status.get("conditions") or [] if c.get("type") == "Ready"), False)
    pressure = [c["type"] for c in status.get("conditions") or [] if c.get("type") != "Ready" and c.get("status") == "True"]
    info = status.get("nodeInfo") or {}
    keys = ("cpu", "memory", "pods", "ephemeral-storage")
    return {
        "name": meta.get("name", ""),
        "ready": ready,
        "roles": roles,
        "unschedulable": bool((item.get("spec") or {}).get("unschedulable")),
        "pressure": pressure,
        "capacity": {key: (status.get("capacity") or {}).get(key, "") for key in keys},
        "allocatable": {key: (status.get("allocatable") or {}).get(key, "") for key in keys},
        "kubelet_version": info.get("kubeletVersion", ""),
        "os_image": info.get("osImage", ""),
        "container_runtime": info.get("containerRuntimeVersion", ""),
    }


def pod_containers(item):
    """(container names, the default one: the kubectl.kubernetes.io/default-container annotation, else the first)."""
    meta, spec = item.get("metadata") or {}, item.get("spec") or {}
    names = [container.get("name", "") for container in spec.get("containers") or [] if container.get("name")]
    wanted = (meta.get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION, "")
    return names, wanted if wanted in names else (names[0] if names else "")


def running_pod_row(item):
    meta = item.get("metadata") or {}
    names, default = pod_containers(item)
    return {"namespace": meta.get("namespace", ""), "name": meta.get("name", ""), "containers": names, "default_container": default}


def pod_row(item):
    """One pod as the service page shows it: state, health, restarts, node, image, release, containers."""
    meta, spec, status = item.get("metadata") or {}, item.get("spec") or {}, item.get("status") or {}
    container_names, default = pod_containers(item)
    containers = status.get("containerStatuses") or []
    waiting = next(((c.get("state") or {}).get("waiting", {}).get("reason") for c in containers if (c.get("state") or {}).get("waiting", {}).get("reason")), None)
    ready = bool(containers) and all(c.get("ready") for c in containers)
    phase = status.get("phase") or "Pending"
    if meta.get("deletionTimestamp"):
        state = "terminating"
    elif waiting:
        state = waiting
    elif phase == "Running":
        state = "running"
    else:
        state = phase.lower()
    unschedulable = next((c.get("message", "") for c in status.get("conditions") or [] if c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"), "")
    labels = meta.get("labels") or {}
    return {
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "state": state,
        "health": "terminating" if meta.get("deletionTimestamp") else "healthy" if ready else ("unhealthy" if waiting in ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull") else "starting"),
        "status": unschedulable,
        "image": ((spec.get("containers") or [{}])[0]).get("image", ""),
        "release": labels.get(RELEASE_LABEL, ""),
        "node": spec.get("nodeName", "") or "",
        "restarts": sum(c.get("restartCount") or 0 for c in containers),
        "ip": status.get("podIP", "") or "",
        "created": meta.get("creationTimestamp", ""),
        "ports": [],
        "containers": container_names,
        "default_container": default,
    }


def hpa_row(item):
    """One HorizontalPodAutoscaler (autoscaling/v2): what it scales, its bounds, current and desired replicas."""
    meta, spec, status = item.get("metadata") or {}, item.get("spec") or {}, item.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    utilization = next(((m.get("resource") or {}).get("current", {}).get("averageUtilization") for m in status.get("currentMetrics") or []
                        if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"), None)
    active = next((c for c in status.get("conditions") or [] if c.get("type") == "ScalingActive"), {})
    return {
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "target": f"{ref.get('kind', '')}/{ref.get('name', '')}",
        "min": spec.get("minReplicas", 1),
        "max": spec.get("maxReplicas"),
        "current": status.get("currentReplicas") or 0,
        "desired": status.get("desiredReplicas") or 0,
        "cpu_utilization": utilization,
        "scaling_active": active.get("status") == "True" if active else None,
        "scaling_message": active.get("message", "") if active.get("status") == "False" else "",
    }


def event_row(item):
    involved = item.get("involvedObject") or {}
    return {
        "time": item.get("lastTimestamp") or item.get("eventTime") or item.get("firstTimestamp") or (item.get("metadata") or {}).get("creationTimestamp") or "",
        "type": item.get("type", ""),
        "reason": item.get("reason", ""),
        "namespace": involved.get("namespace") or (item.get("metadata") or {}).get("namespace", ""),
        "object": f"{involved.get('kind', '')}/{involved.get('name', '')}",
        "message": item.get("message", ""),
        "count": item.get("count") or 1,
    }


def observe_cluster(api_client):
    """(observed dict, pods by service id, number of requests): nine requests, whatever the size."""
    counter = CallCounter()
    skipped = []
    started = time.perf_counter()
    core, apps = kube_client.CoreV1Api(api_client), kube_client.AppsV1Api(api_client)
    with api_errors(f"the Kubernetes API at {describe(api_client)}"):
        version = kube_client.VersionApi(api_client).get_code()
        counter.add("version")
        nodes = _raw(core.list_node, resource_version="0", counter=counter)["items"]
        namespaces = _raw(core.list_namespace, resource_version="0", counter=counter)["items"]
        pods = _raw(core.list_pod_for_all_namespaces, resource_version="0", counter=counter)["items"]
        deployments = _raw(apps.list_deployment_for_all_namespaces, resource_version="0", counter=counter)["items"]
        services = _raw(core.list_service_for_all_namespaces, resource_version="0", counter=counter)["items"]
        warnings = _raw(core.list_event_for_all_namespaces, resource_version="0", field_selector="type=Warning", counter=counter)["items"]
    try:
        with api_errors(f"the Kubernetes API at {describe(api_client)}"):
            hpas = _raw(kube_client.AutoscalingV2Api(api_client).list_horizontal_pod_autoscaler_for_all_namespaces, resource_version="0", counter=counter)["items"]
    except (NotFound, PermissionRefused) as exc:  # not served, or the credential may not list them
        hpas = []
        counter.add("list_horizontal_pod_autoscaler_for_all_namespaces")
        skipped.append(str(exc))
    try:
        usage = pod_metrics(api_client)  # one list call; None without metrics-server
    except PermissionRefused as exc:  # the credential may not read metrics.k8s.io: the rest still counts
        usage = None
        skipped.append(str(exc))
    counter.add("pod_metrics")
    usage_by_pod = {(row["namespace"], row["pod"]): row for row in usage or []}

    pods_by_phase = Counter((pod.get("status") or {}).get("phase") or "Pending" for pod in pods)
    pods_by_namespace = Counter((pod.get("metadata") or {}).get("namespace", "") for pod in pods)
    restarting = sum(1 for pod in pods if any((c.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff" for c in (pod.get("status") or {}).get("containerStatuses") or []))
    deployments_ready = sum(1 for item in deployments if ((item.get("status") or {}).get("availableReplicas") or 0) >= ((item.get("spec") or {}).get("replicas", 1) or 0))
    service_pods = {}
    per_namespace = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        figures = per_namespace.setdefault(key[0], {"pods_ready": 0, "restarts": 0, "cpu_cores": None, "memory_bytes": None})
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        figures["pods_ready"] += 1 if statuses and all(c.get("ready") for c in statuses) and not meta.get("deletionTimestamp") else 0
        figures["restarts"] += sum(c.get("restartCount") or 0 for c in statuses)
        used = usage_by_pod.get(key)
        if used is not None:
            figures["cpu_cores"] = (figures["cpu_cores"] or 0.0) + used["cpu_cores"]
            figures["memory_bytes"] = (figures["memory_bytes"] or 0.0) + used["memory_bytes"]
        service_id = (meta.get("labels") or {}).get(SERVICE_LABEL)
        if service_id and (meta.get("labels") or {}).get("app.kubernetes.io/managed-by") == "filrouge":
            row = pod_row(pod)
            if used is not None:
                row["cpu_cores"], row["memory_bytes"] = used["cpu_cores"], used["memory_bytes"]
            service_pods.setdefault(service_id, []).append(row)
    events = sorted((event_row(item) for item in warnings), key=lambda row: row["time"])[-WARNINGS_KEPT:]
    running = sorted((running_pod_row(pod) for pod in pods if (pod.get("status") or {}).get("phase") == "Running"
                      and not (pod.get("metadata") or {}).get("deletionTimestamp")), key=lambda row: (row["namespace"], row["name"]))
    node_rows = [node_row(item) for item in nodes]
    observed = {
        "kind": "kubernetes",
        "version": version.git_version,
        "platform": version.platform or "",
        "nodes": node_rows,
        "nodes_ready": sum(1 for row in node_rows if row["ready"]),
        "namespaces": [
            {"name": (item.get("metadata") or {}).get("name", ""), "phase": (item.get("status") or {}).get("phase", ""),
             "pods": pods_by_namespace.get((item.get("metadata") or {}).get("name", ""), 0),
             **per_namespace.get((item.get("metadata") or {}).get("name", ""), {"pods_ready": 0, "restarts": 0, "cpu_cores": None, "memory_bytes": None})}
            for item in namespaces
        ],
        "autoscalers": [hpa_row(item) for item in hpas],
        # None: the cluster serves no resource metrics API (no metrics-server)
        "usage": None if usage is None else {
            "cpu_cores": sum(row["cpu_cores"] for row in usage),
            "memory_bytes": sum(row["memory_bytes"] for row in usage),
            "pods_measured": len(usage),
        },
        "workloads": {
            "deployments": len(deployments),
            "deployments_ready": deployments_ready,
            "pods": len(pods),
            "pods_by_phase": dict(sorted(pods_by_phase.items())),
            "pods_crash_looping": restarting,
            "services": len(services),
            "pods_ready": sum(figures["pods_ready"] for figures in per_namespace.values()),
            "restarts": sum(figures["restarts"] for figures in per_namespace.values()),
        },
        "warnings": events,
        "pods": running[:RUNNING_PODS_KEPT],
        "pods_truncated": len(running) > RUNNING_PODS_KEPT,
        "probe": {"calls": len(counter.calls), "seconds": round(time.perf_counter() - started, 3), "skipped": skipped},
    }
    return observed, service_pods, len(counter.calls)
