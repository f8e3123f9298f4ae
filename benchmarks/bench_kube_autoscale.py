"""The `kubernetes.autoscale` lab check on the stand-in, and what the probe's metrics sampling costs.

1. One student environment of labs/starter/k8s-api-hpa.yaml (real lab-launch job), the
   Deployment, Service and HPA applied as the student; then the autoscale check alone, ROUNDS
   times (the Deployment is put back to 2 replicas and the HPA recreated between rounds), with
   the stand-in at 1 s for the metrics window and the HPA sync period and the load capped at
   LOAD seconds (FILROUGE_LOADTEST_MAX_SECONDS). Prints wall time, requests sent through the
   service proxy, p95 and replicas from → to. On a real cluster the exercise's 120 s of load
   is what the check takes (plus a few reads).
2. The periodic Kubernetes probe (`observe_kube_cluster`) with 1 and with 50 running pods:
   API requests in all, requests to the metrics API, and the time of the pod-metrics call.
3. (printed before 2) What a lab load test on Kubernetes adds every 5 s: one read of the
   Deployment's replicas and its HPA with the namespace's kubeconfig (`ReplicaReader`).

    .venv/bin/python benchmarks/bench_kube_autoscale.py [ROUNDS] [LOAD]
"""

import sys
import time

from common import QuietContext, machine_line, print_table, setup_django, summary_ms


def main(rounds, load_seconds):
    setup_django(database="filrouge_bench_kube_autoscale", redis_db=8)
    import yaml
    from django.conf import settings
    from django.contrib.contenttypes.models import ContentType
    from kubernetes import client as k8s
    from kubernetes import config as kube_config

    from clusters.drivers import kubernetes as driver
    from clusters.kubernetes.jobs import observe_kube_cluster
    from clusters.models import Cluster, Credential
    from labs.checks import load_all
    from labs.checks.base import CHECKS
    from labs.exercise_file import exercise_fields, parse_exercise
    from labs.models import Course, Enrolment, Environment, Exercise
    from labs.providers import provider_for
    from panel.accounts.models import Role, User
    from panel.jobs.kinds import get_kind
    from panel.jobs.models import Job
    from panel.jobs.runner import execute
    from tests.kubeapi import KubeStandin

    load_all()
    settings.LOADTEST_MAX_SECONDS = load_seconds
    api = KubeStandin(tls=True)
    api.start()
    api.metrics_window = 1.0
    api.hpa_sync_period = 1.0
    api.app_cpu_per_request = 0.02
    try:
        credential = Credential(name="bench-kube", kind="kubeconfig")
        credential.set_secret({"kubeconfig": api.kubeconfig()})
        credential.save()
        cluster = Cluster.objects.create(name="bench-kube", kind="kubernetes", credential=credential)
        student = User.objects.create(username="sam", role=Role.STUDENT)
        course = Course.objects.create(title="Bench", slug="bench", code="BENCH")
        course.clusters.add(cluster)
        Enrolment.objects.create(course=course, student=student)
        parsed = parse_exercise(open("labs/starter/k8s-api-hpa.yaml").read(), "k8s-api-hpa.yaml")
        exercise = Exercise.objects.create(course=course, slug=parsed["slug"], **exercise_fields(parsed))
        environment = Environment.objects.create(exercise=exercise, owner=student)
        kind = get_kind("lab-launch")
        job = Job.objects.create(kind=kind.name, queue=kind.queue, params={}, timeout=kind.timeout, user=student,
                                 target_type=ContentType.objects.get_for_model(environment), target_id=str(environment.pk))
        execute(job.pk)
        environment.refresh_from_db()
        namespace = environment.access["namespace"]
        student_api = kube_config.new_client_from_config_dict(yaml.safe_load(environment.access["kubeconfig"]))
        apps, core, hpas = k8s.AppsV1Api(student_api), k8s.CoreV1Api(student_api), k8s.AutoscalingV2Api(student_api)
        labels = {"app": "api-poc"}
        apps.create_namespaced_deployment(namespace, {"metadata": {"name": "api-poc"}, "spec": {
            "replicas": 2, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                "name": "api", "image": "registry.filrouge.test/httpapp:1", "ports": [{"containerPort": 8080}],
                "envFrom": [{"configMapRef": {"name": "api-poc-config"}}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}}]}}}})
        core.create_namespaced_service(namespace, {"metadata": {"name": "api-poc"}, "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}})
        hpa = {"metadata": {"name": "api-poc"}, "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api-poc"}, "minReplicas": 2, "maxReplicas": 6,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}}
        check = next(item for item in exercise.checks if item["type"] == "kubernetes.autoscale")

        def wait(predicate, what, timeout=60):
            deadline = time.monotonic() + timeout
            while not predicate():
                if time.monotonic() > deadline:
                    raise SystemExit(f"timed out waiting for {what}")
                time.sleep(0.1)

        times, rows_seen = [], []
        for _ in range(rounds):
            try:
                hpas.delete_namespaced_horizontal_pod_autoscaler("api-poc", namespace)
            except k8s.ApiException:
                pass
            apps.patch_namespaced_deployment_scale("api-poc", namespace, {"spec": {"replicas": 2}})
            wait(lambda: (apps.read_namespaced_deployment("api-poc", namespace).status.replicas or 0) == 2, "2 replicas")
            wait(lambda: (apps.read_namespaced_deployment("api-poc", namespace).status.ready_replicas or 0) == 2, "2 ready")
            time.sleep(2)  # the last round's load leaves the metrics window
            hpas.create_namespaced_horizontal_pod_autoscaler(namespace, hpa)
            time.sleep(1.5)  # the HPA's first decisions (nothing to do at idle)
            api.reset_request_log()
            with provider_for(environment, QuietContext()).check_target() as target:
                started = time.perf_counter()
                outcome = CHECKS["kubernetes.autoscale"](dict(check["params"]), target)
                times.append(time.perf_counter() - started)
            proxied = sum(1 for _method, path in api.request_log if "/proxy/" in path)
            rows_seen.append((outcome.passed, proxied, len(api.request_log) - proxied, outcome.detail))
            if "--debug" in sys.argv:  # the HPA's rescale events
                for event in k8s.CoreV1Api(api.api_client()).list_namespaced_event(namespace, field_selector="reason=SuccessfulRescale").items:
                    print("   event", event.last_timestamp, event.message, event.involved_object.uid)

        print(machine_line())
        stats = summary_ms(times)
        print_table(f"kubernetes.autoscale check on the stand-in (load capped at {load_seconds} s, 10 clients, metrics window and HPA sync 1 s)",
                    ["runs", "passed", "p50 s", "max s", "requests via proxy", "other API requests"],
                    [[stats["n"], sum(1 for row in rows_seen if row[0]), f"{stats['p50'] / 1000:.1f}", f"{stats['max'] / 1000:.1f}",
                      f"{min(r[1] for r in rows_seen)}-{max(r[1] for r in rows_seen)}", f"{min(r[2] for r in rows_seen)}-{max(r[2] for r in rows_seen)}"]])
        for row in rows_seen:
            print(f"  {row[3]}")

        # 3. What a lab load test adds every HPA_EVERY seconds: one ReplicaReader read (the
        # Service, its Deployments, their HPAs) with the namespace's own kubeconfig.
        from deployments.loadtest.jobs import HPA_EVERY, ReplicaReader

        reader = ReplicaReader(QuietContext(), lambda: driver.connect_kubeconfig(environment.access["kubeconfig"]), namespace,
                               owner={"obj": environment}, service_name="api-poc")
        api.reset_request_log()
        read_times, figures = [], {}
        for _ in range(20):
            started = time.perf_counter()
            figures = reader.read()
            read_times.append(time.perf_counter() - started)
        stats = summary_ms(read_times)
        print_table(f"Lab load test: replicas and HPA read with the namespace's kubeconfig (at most one every {HPA_EVERY} s)",
                    ["reads", "API requests per read", "p50 ms", "max ms", "figures"],
                    [[stats["n"], len(api.request_log) / len(read_times), f"{stats['p50']:.1f}", f"{stats['max']:.1f}",
                      ", ".join(f"{name.removeprefix('filrouge_service_')}={value}" for name, value in figures.items())]])

        # 2. The probe with 1 and 50 pods.
        admin = api.api_client()
        bench_ns = "bench-probe"
        k8s.CoreV1Api(admin).create_namespace({"metadata": {"name": bench_ns}})
        probe_rows = []
        for count in (1, 50):
            name = f"pods{count}"
            plabels = {"app": name}
            k8s.AppsV1Api(admin).create_namespaced_deployment(bench_ns, {"metadata": {"name": name}, "spec": {
                "replicas": count, "selector": {"matchLabels": plabels}, "template": {"metadata": {"labels": plabels}, "spec": {"containers": [
                    {"name": "c", "image": "x:1", "resources": {"requests": {"cpu": "10m"}}}]}}}})
            wait(lambda: (k8s.AppsV1Api(admin).read_namespaced_deployment(name, bench_ns).status.ready_replicas or 0) == count, f"{count} pods", 120)
            wait(lambda: len(driver.pod_metrics(admin, bench_ns) or []) >= count, "metrics", 30)
            api.reset_request_log()
            observe_kube_cluster(cluster)
            total = len(api.request_log)
            metrics_calls = sum(1 for _method, path in api.request_log if path.startswith("/apis/metrics.k8s.io"))
            started = time.perf_counter()
            measured = driver.pod_metrics(admin)
            one_call = time.perf_counter() - started
            probe_rows.append([count, total, metrics_calls, len(measured), f"{one_call * 1000:.1f}"])
            if count == 1:
                k8s.AppsV1Api(admin).delete_namespaced_deployment(name, bench_ns)
                wait(lambda: not k8s.CoreV1Api(admin).list_namespaced_pod(bench_ns, label_selector="app=pods1").items, "pods gone")
        print_table("Kubernetes probe: API requests with metrics-server (stand-in)",
                    ["pods in the cluster (bench namespace)", "requests in all", "metrics API requests", "pods measured", "pod-metrics call ms"],
                    probe_rows)
    finally:
        api.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3, int(sys.argv[2]) if len(sys.argv) > 2 else 8)
