"""Every metric the panel records: stable names (they are also the Prometheus names), units, help.

A name is `filrouge_<object>_<what>[_<unit>]`; labels carry the object's identity (a server's
name, a container's name and project...). Changing a name or a label breaks the charts'
history and the operators' PromQL: add a new one instead.
"""

from django.utils.translation import gettext_lazy as _

GAUGE, RATE = "gauge", "rate"

# name -> (unit, kind, label shown on a chart)
CATALOGUE = {
    # servers (clusters/inventory/jobs.py: probe_servers)
    "filrouge_server_reachable": ("bool", GAUGE, _("Reachable")),
    "filrouge_server_load1": ("load", GAUGE, _("Load (1 min)")),
    "filrouge_server_memory_available_bytes": ("bytes", GAUGE, _("Memory available")),
    "filrouge_server_disk_free_bytes": ("bytes", GAUGE, _("Disk free")),
    "filrouge_server_disk_used_ratio": ("ratio", GAUGE, _("Disk used")),
    # Docker containers (clusters/docker/jobs.py: probe_engines), counters turned into rates
    "filrouge_container_cpu_cores": ("cores", RATE, _("CPU")),
    "filrouge_container_memory_bytes": ("bytes", GAUGE, _("Memory")),
    "filrouge_container_network_receive_bytes_per_second": ("bytes/s", RATE, _("Network in")),
    "filrouge_container_network_transmit_bytes_per_second": ("bytes/s", RATE, _("Network out")),
    "filrouge_container_restarts": ("count", GAUGE, _("Restarts")),
    "filrouge_engine_containers_running": ("count", GAUGE, _("Containers running")),
    "filrouge_engine_containers_unhealthy": ("count", GAUGE, _("Containers unhealthy")),
    # services on every backend (deployments: from the cluster probes)
    "filrouge_service_replicas_desired": ("count", GAUGE, _("Replicas desired")),
    "filrouge_service_replicas_running": ("count", GAUGE, _("Replicas running")),
    "filrouge_service_replicas_healthy": ("count", GAUGE, _("Replicas healthy")),
    "filrouge_service_cpu_cores": ("cores", GAUGE, _("CPU")),
    "filrouge_service_memory_bytes": ("bytes", GAUGE, _("Memory")),
    "filrouge_service_restarts": ("count", GAUGE, _("Restarts")),
    "filrouge_service_hpa_desired_replicas": ("count", GAUGE, _("Autoscaler desired replicas")),
    "filrouge_service_hpa_current_replicas": ("count", GAUGE, _("Autoscaler current replicas")),
    # -- samplers: restarts and health checks (clusters/docker/jobs.py, deployments/probe.py) --
    # Docker containers: starts after the first, counted from the engine's events since the
    # panel first saw the container (one events call per probe round).
    # (filrouge_container_restarts and filrouge_service_restarts above carry them.)
    # Each service's health check made by the probe: an HTTP GET to every replica's published
    # port (its HTTP health check's path, or "/"): the slowest replica's time, and 1 when every
    # replica answered 2xx/3xx, 0 otherwise.
    "filrouge_service_health_check_seconds": ("seconds", GAUGE, _("Health check time")),
    "filrouge_service_health_check_up": ("bool", GAUGE, _("Health check passing")),
    # -- end samplers --
    # Kubernetes clusters (clusters/kubernetes/jobs.py: cluster_samples, from one observation)
    "filrouge_kubernetes_nodes_ready": ("count", GAUGE, _("Nodes ready")),
    "filrouge_kubernetes_pods": ("count", GAUGE, _("Pods")),
    "filrouge_kubernetes_pods_ready": ("count", GAUGE, _("Pods ready")),
    "filrouge_kubernetes_pod_restarts": ("count", GAUGE, _("Container restarts")),
    # CPU and memory from the resource metrics API (metrics-server); absent when the cluster has none
    "filrouge_kubernetes_cpu_cores": ("cores", GAUGE, _("CPU used by pods")),
    "filrouge_kubernetes_memory_bytes": ("bytes", GAUGE, _("Memory used by pods")),
    # per namespace (labels cluster, namespace)
    "filrouge_kubernetes_namespace_pods_ready": ("count", GAUGE, _("Pods ready")),
    "filrouge_kubernetes_namespace_restarts": ("count", GAUGE, _("Container restarts")),
    "filrouge_kubernetes_namespace_cpu_cores": ("cores", GAUGE, _("CPU")),
    "filrouge_kubernetes_namespace_memory_bytes": ("bytes", GAUGE, _("Memory")),
    # per HorizontalPodAutoscaler (labels cluster, namespace, hpa)
    "filrouge_kubernetes_hpa_current_replicas": ("count", GAUGE, _("Autoscaler current replicas")),
    "filrouge_kubernetes_hpa_desired_replicas": ("count", GAUGE, _("Autoscaler desired replicas")),
    # load tests (deployments/loadtest.py)
    "filrouge_loadtest_requests_per_second": ("req/s", GAUGE, _("Requests per second")),
    "filrouge_loadtest_latency_p50_seconds": ("seconds", GAUGE, _("Latency p50")),
    "filrouge_loadtest_latency_p95_seconds": ("seconds", GAUGE, _("Latency p95")),
    "filrouge_loadtest_latency_p99_seconds": ("seconds", GAUGE, _("Latency p99")),
    "filrouge_loadtest_errors_per_second": ("req/s", GAUGE, _("Errors per second")),
    # the job engine (metrics/jobs.py: sample_jobs)
    "filrouge_jobs_queued": ("count", GAUGE, _("Jobs queued")),
    "filrouge_jobs_running": ("count", GAUGE, _("Jobs running")),
    "filrouge_workers": ("count", GAUGE, _("Workers alive")),
    "filrouge_job_duration_seconds_avg": ("seconds", GAUGE, _("Job duration (average)")),
    # labs (labs/jobs.py)
    "filrouge_lab_environments_running": ("count", GAUGE, _("Environments running")),
    "filrouge_lab_environment_cpu_cores": ("cores", GAUGE, _("CPU")),
    "filrouge_lab_environment_memory_bytes": ("bytes", GAUGE, _("Memory")),
    "filrouge_lab_environment_checks_passed": ("count", GAUGE, _("Checks passed")),
}


def unit(name):
    return CATALOGUE.get(name, ("", GAUGE, name))[0]


def kind(name):
    return CATALOGUE.get(name, ("", GAUGE, name))[1]


def label(name):
    return str(CATALOGUE.get(name, ("", GAUGE, name))[2])
