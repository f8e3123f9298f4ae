"""One check run of the Kubernetes lab exercise (labs/starter/k8s-api-hpa.yaml): wall time and API requests.

Starts the Kubernetes API stand-in (TLS, over real HTTP), launches one student environment
through the real lab-launch job (isolated namespace + kubeconfig), applies the Deployment,
Service and HPA as the student, then runs the lab-check job ROUNDS times and, apart, the four
check functions alone. The request count comes from the stand-in's request_log: the goal is
one GET per check and nothing else but the panel client's own setup.

    .venv/bin/python benchmarks/bench_labs_kube_check.py [ROUNDS]
"""

import sys
import time

from common import QuietContext, machine_line, print_table, setup_django, summary_ms


def main(rounds):
    setup_django(database="filrouge_bench_labs_targets", redis_db=7)
    import yaml
    from django.contrib.contenttypes.models import ContentType
    from kubernetes import client as k8s
    from kubernetes import config as kube_config

    from clusters.models import Cluster, Credential
    from labs.checks import load_all
    from labs.checks.runner import run_checks
    from labs.exercise_file import exercise_fields, parse_exercise
    from labs.models import Course, Enrolment, Environment, Exercise
    from labs.providers import provider_for
    from panel.accounts.models import Role, User
    from panel.jobs.kinds import get_kind
    from panel.jobs.models import Job
    from panel.jobs.runner import execute
    from tests.kubeapi import KubeStandin

    load_all()
    k8s.CoreV1Api, k8s.AppsV1Api  # noqa: B018 - the client's lazy imports (about 3 s here) are paid once per worker, not per launch
    api = KubeStandin(tls=True)
    api.start()
    try:
        credential = Credential(name="bench-kube", kind="kubeconfig")
        credential.set_secret({"kubeconfig": api.kubeconfig()})
        credential.save()
        cluster = Cluster.objects.create(name="bench-kube", kind="kubernetes", credential=credential)
        student = User.objects.create(username="sam", role=Role.STUDENT)
        course = Course.objects.create(title="Bench", slug="bench", code="BENCH")
        course.clusters.add(cluster)
        Enrolment.objects.create(course=course, student=student)
        text = open("labs/starter/k8s-api-hpa.yaml").read()
        parsed = parse_exercise(text, "k8s-api-hpa.yaml")
        exercise = Exercise.objects.create(course=course, slug=parsed["slug"], **exercise_fields(parsed))
        # The load-test check (kubernetes.autoscale) runs for as long as its load: bench_kube_autoscale.py measures it.
        exercise.checks = [item for item in exercise.checks if item["type"] != "kubernetes.autoscale"]
        exercise.save()
        environment = Environment.objects.create(exercise=exercise, owner=student)

        def run_job(name):
            kind = get_kind(name)
            job = Job.objects.create(kind=kind.name, queue=kind.queue, params={}, timeout=kind.timeout, user=student,
                                     target_type=ContentType.objects.get_for_model(environment), target_id=str(environment.pk))
            started = time.perf_counter()
            execute(job.pk)
            elapsed = time.perf_counter() - started
            job.refresh_from_db()
            if job.status != "succeeded":
                raise SystemExit(f"{name} {job.status}: {job.error}")
            return elapsed

        api.reset_request_log()
        launch_seconds = run_job("lab-launch")
        launch_requests = len(api.request_log)
        environment.refresh_from_db()
        access = environment.access
        namespace = access["namespace"]
        student_api = kube_config.new_client_from_config_dict(yaml.safe_load(access["kubeconfig"]))
        labels = {"app": "api-poc"}
        k8s.AppsV1Api(student_api).create_namespaced_deployment(namespace, {
            "metadata": {"name": "api-poc"},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                "name": "api", "image": "registry.filrouge.test/httpapp:1", "envFrom": [{"configMapRef": {"name": "api-poc-config"}}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}}]}}},
        })
        k8s.CoreV1Api(student_api).create_namespaced_service(namespace, {"metadata": {"name": "api-poc"}, "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}})
        k8s.AutoscalingV2Api(student_api).create_namespaced_horizontal_pod_autoscaler(namespace, {
            "metadata": {"name": "api-poc"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api-poc"}, "minReplicas": 2, "maxReplicas": 6,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]},
        })
        deadline = time.monotonic() + 60
        while (k8s.AppsV1Api(student_api).read_namespaced_deployment("api-poc", namespace).status.ready_replicas or 0) < 2:
            if time.monotonic() > deadline:
                raise SystemExit("api-poc never became ready on the stand-in")
            time.sleep(0.1)

        job_times, job_requests = [], []
        for _ in range(rounds):
            api.reset_request_log()
            job_times.append(run_job("lab-check"))
            job_requests.append(len(api.request_log))
        check_times, check_requests, scores = [], [], []
        for _ in range(rounds):
            with provider_for(environment, QuietContext()).check_target() as target:
                api.reset_request_log()
                started = time.perf_counter()
                results, score = run_checks(exercise.checks, target)
                check_times.append(time.perf_counter() - started)
                check_requests.append(len(api.request_log))
                scores.append(score)
        environment.refresh_from_db()
        methods = sorted({method for method, _path in api.request_log})

        print(machine_line())
        rows = []
        for label, times, requests in (("lab-launch job (namespace + guard rails + token + ConfigMap)", [launch_seconds], [launch_requests]),
                                       (f"lab-check job, {len(exercise.checks)} checks", job_times, job_requests),
                                       (f"the {len(exercise.checks)} check functions alone", check_times, check_requests)):
            stats = summary_ms(times)
            rows.append([label, stats["n"], f"{stats['p50']:.1f}", f"{stats['max']:.1f}", f"{min(requests)}-{max(requests)}"])
        print_table("Kubernetes lab check (stand-in over TLS)", ["what", "runs", "p50 ms", "max ms", "API requests"], rows)
        print(f"\nscore {environment.score}/{exercise.max_score}; methods seen by the checks: {', '.join(methods)}")
        run_job("lab-destroy")
    finally:
        api.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
