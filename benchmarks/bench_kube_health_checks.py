"""Cost of the Kubernetes services' health checks in a probe round: 0, 20, 100, 300 services.

A TLS stand-in (tests/kubeapi), in its own process, holds 200 ready pods in 50 namespaces
and N Services selecting them (its emulated app answers in about 1 ms, so that the figures
are the panel's path and the proxy's, not an app's); the panel has one Kubernetes service per Service. A probe
round (`observe_kube_cluster`, what the periodic probe runs) observes the cluster and then
checks every service through the API server's service proxy (HTTPS, bearer token; 8 at a
time, FILROUGE_METRICS_HEALTH_CHECK_TIMEOUT per check, FILROUGE_METRICS_HEALTH_CHECK_BUDGET
per round). Printed: the round's time (median and max), the checks' wall time in it, the median
check, and how many services got a sample (all of them, unless the budget ran out).

    .venv/bin/python benchmarks/bench_kube_health_checks.py [ROUNDS]
"""

import sys
import time

from bench_kube_observe import StandinProcess
from common import machine_line, percentile, print_table, setup_django


def main(rounds=5):
    setup_django(database="filrouge_bench_kube_health", redis_db=6)
    from django.conf import settings

    from clusters.drivers import http
    from clusters.kubernetes.jobs import observe_kube_cluster
    from clusters.models import Cluster, Credential
    from deployments.models import Service, ServiceStatus
    from deployments.spec import normalize_spec
    from metrics.models import Series

    standin = StandinProcess()
    timings, walls = [], []
    original_check, original_many = http.check, http.check_many

    def timed_check(*args, **kwargs):
        result = original_check(*args, **kwargs)
        timings.append(result[1])
        return result

    def timed_many(*args, **kwargs):
        began = time.perf_counter()
        try:
            return original_many(*args, **kwargs)
        finally:
            walls.append(time.perf_counter() - began)

    http.check, http.check_many = timed_check, timed_many  # measure the real checks, unchanged
    try:
        credential = Credential(name="bench-kubeconfig", kind="kubeconfig")
        credential.set_secret({"kubeconfig": standin.kubeconfig})
        credential.save()
        cluster = Cluster.objects.create(name="bench-kube", kind="kubernetes", credential=credential)
        standin.ask("app 0.001")  # an app answering in about 1 ms: the figures are the panel's and the proxy's path
        standin.ask("pods 200")
        for index in range(50):
            standin.ask(f"ready bench-{index:02d}")
        rows = []
        for total in (0, 20, 100, 300):
            standin.ask(f"services {total}")
            for index in range(Service.objects.filter(cluster=cluster).count(), total):
                Service.objects.create(name=f"svc-{index}", cluster=cluster, project=f"bench-{index % 50:02d}", status=ServiceStatus.DEPLOYED,
                                       spec=normalize_spec({"image": "registry.example/app", "tag": "1", "replicas": 1, "ports": [{"container": 8080}]}))
            observe_kube_cluster(cluster)  # warm: client imports, first TLS session
            rounds_times = []
            timings.clear()
            walls.clear()
            for _ in range(rounds):
                began = time.perf_counter()
                observe_kube_cluster(cluster)
                rounds_times.append(time.perf_counter() - began)
            sampled = Series.objects.filter(name="filrouge_service_health_check_up", object_type="service", last_value=1).count()
            rounds_times.sort()
            rows.append([str(total), f"{percentile(rounds_times, 0.5) * 1000:.0f} ms", f"{rounds_times[-1] * 1000:.0f} ms",
                         f"{percentile(walls, 0.5) * 1000:.0f} ms" if walls else "-",
                         f"{percentile(timings, 0.5) * 1000:.1f} ms" if timings else "-", f"{sampled}/{total}"])
        print(machine_line())
        print_table(f"Probe round of a Kubernetes cluster with N panel services, each health-checked through the service proxy "
                    f"(median and max of {rounds} rounds; 8 checks at a time, budget {settings.METRICS_HEALTH_CHECK_BUDGET} s)",
                    ["services", "round p50", "round max", "checks (wall) p50", "one check p50", "up=1 samples"], rows)
    finally:
        http.check, http.check_many = original_check, original_many
        standin.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
