"""The Kubernetes exercises through the real lab jobs, against the API stand-in (or the cluster
named by FILROUGE_TEST_KUBECONFIG: nothing here needs a stand-in lever).

The student works only with the kubeconfig the launch handed them, through the official
client; the checks read with the panel's own client, one GET each.
"""

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from labs.models import Attempt, Environment, EnvironmentState
from panel.jobs.models import Job
from tests.labs.jobhelpers import job_text, run_now

from tests.labs.providers.conftest import make_exercise

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("lab_namespace_sweep"), pytest.mark.k8s]


def student_client(access):
    return kube_config.new_client_from_config_dict(yaml.safe_load(access["kubeconfig"]))


def api_poc(image, command=None, cpu_limit="200m"):
    """The Deployment, Service and HPA a student writes. `command` runs an image that does not
    listen on 8080 by itself (hpa-example: PHP's built-in server, as the instructions say)."""
    labels = {"app": "api-poc"}
    container = {
        "name": "api", "image": image, "ports": [{"containerPort": 8080}],
        "envFrom": [{"configMapRef": {"name": "api-poc-config"}}],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": cpu_limit, "memory": "128Mi"}},
        # a new replica gets traffic once it listens (the service proxy only picks ready endpoints)
        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 2},
    }
    if command:
        container["command"] = list(command)
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api-poc", "labels": labels},
        "spec": {
            "replicas": 2, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api-poc"},
               "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}}
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "api-poc"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api-poc"}, "minReplicas": 2, "maxReplicas": 6,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}}
    return deployment, service, hpa


def launch(course, name, student):
    environment = Environment.objects.create(exercise=make_exercise(course, name), owner=student)
    job = run_now("lab-launch", environment, user=student)
    assert job.status == "succeeded", job_text(job)
    assert environment.state == EnvironmentState.READY
    return environment


def check(environment, student):
    job = run_now("lab-check", environment, user=student)
    assert job.status == "succeeded", job_text(job)
    attempt = Attempt.objects.get(job=job)
    return attempt, {result["name"]: result for result in attempt.results}


def test_it_runs_the_api_hpa_exercise_with_only_the_students_kubeconfig(kube_course, kube_target, sam, settings):
    # The load-test check (tests/labs/providers/test_kubernetes_autoscale.py) gets a few seconds here.
    settings.LOADTEST_MAX_SECONDS = 3
    environment = launch(kube_course, "k8s-api-hpa", sam)
    access = environment.access
    namespace = access["namespace"]
    assert namespace == environment.name
    student = student_client(access)
    core, apps, autoscaling = k8s.CoreV1Api(student), k8s.AppsV1Api(student), k8s.AutoscalingV2Api(student)

    # The kubeconfig works in the namespace only; the starting ConfigMap is there.
    assert core.read_namespaced_config_map("api-poc-config", namespace).data["GREETING"].startswith("hello")
    with pytest.raises(ApiException) as refused:
        core.list_namespaced_pod("default")
    assert refused.value.status == 403
    with pytest.raises(ApiException) as refused:
        core.list_namespace()
    assert refused.value.status == 403
    launch_job_lines = job_text(Job.objects.get(kind="lab-launch", target_id=str(environment.pk)))
    token = yaml.safe_load(access["kubeconfig"])["users"][0]["user"]["token"]
    assert token not in launch_job_lines

    attempt, before = check(environment, sam)
    assert attempt.score == 0 and attempt.max_score == 14
    assert "No Deployment named api-poc" in before["api-poc has at least 2 ready replicas"]["detail"]
    assert before["An HPA scales api-poc from 2 to 4-8 replicas at 50-80 % CPU"]["hint"].startswith("`kubectl autoscale")

    deployment, service, hpa = api_poc(kube_target.image("1"))
    apps.create_namespaced_deployment(namespace, deployment)
    core.create_namespaced_service(namespace, service)
    autoscaling.create_namespaced_horizontal_pod_autoscaler(namespace, hpa)
    kube_target.wait_for(lambda: (apps.read_namespaced_deployment(namespace=namespace, name="api-poc").status.ready_replicas or 0) >= 2,
                         timeout=120, message="api-poc ready")

    attempt, after = check(environment, sam)
    autoscale = "Under load, the autoscaler adds replicas and answers stay fast"
    assert {name: result["detail"] for name, result in after.items() if not result["passed"] and name != autoscale} == {}
    assert attempt.score >= 10
    environment.refresh_from_db()
    assert environment.score == attempt.score

    # A wrong HPA is reported with what was seen.
    autoscaling.patch_namespaced_horizontal_pod_autoscaler("api-poc", namespace, {"spec": {"maxReplicas": 12}})
    _attempt, again = check(environment, sam)
    assert again["An HPA scales api-poc from 2 to 4-8 replicas at 50-80 % CPU"]["detail"] == "HPA api-poc: maxReplicas is 12, needs 4 to 8."

    job = run_now("lab-destroy", environment, user=sam)
    assert job.status == "succeeded", job_text(job)
    admin = k8s.CoreV1Api(kube_target.api_client())
    with pytest.raises(ApiException) as gone:
        admin.read_namespace(namespace)
    assert gone.value.status == 404


def test_it_runs_the_rolling_update_exercise(kube_course, kube_target, sam):
    kube_target.require_standin("images nginx:1.26 and nginx:1.27 that run")
    environment = launch(kube_course, "k8s-rolling-update", sam)
    namespace = environment.access["namespace"]
    apps = k8s.AppsV1Api(student_client(environment.access))
    labels = {"app": "web"}
    apps.create_namespaced_deployment(namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}},
    })

    def rolled_out(image):
        def done():
            web = apps.read_namespaced_deployment("web", namespace)
            return (web.spec.template.spec.containers[0].image == image and (web.status.updated_replicas or 0) >= 3
                    and (web.status.ready_replicas or 0) >= 3 and (web.status.replicas or 0) == 3)
        kube_target.wait_for(done, timeout=120, message=f"web rolled out on {image}")

    rolled_out("nginx:1.26")
    _attempt, first = check(environment, sam)
    assert [name for name, result in first.items() if not result["passed"]] == ["web was updated and rolled back (revision 3 or more)"]
    assert "is 1, needs >= 3" in first["web was updated and rolled back (revision 3 or more)"]["detail"]

    apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
    rolled_out("nginx:1.27")
    _attempt, updated = check(environment, sam)
    assert not updated["web is back on nginx:1.26"]["passed"]
    assert "nginx:1.27" in updated["web is back on nginx:1.26"]["detail"]

    # `kubectl rollout undo`: the previous template again (the controller reuses its ReplicaSet as revision 3).
    apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}}})
    rolled_out("nginx:1.26")
    attempt, after = check(environment, sam)
    assert {name: result["detail"] for name, result in after.items() if not result["passed"]} == {}
    assert attempt.score == attempt.max_score == 10


def test_it_neither_takes_over_nor_deletes_a_namespace_of_another_environment(kube_course, kube_target, sam, settings):
    environment = Environment.objects.create(exercise=make_exercise(kube_course, "k8s-api-hpa"), owner=sam)
    admin = k8s.CoreV1Api(kube_target.api_client())
    # Another panel's environment with the same id and student: same namespace name, its own instance label.
    admin.create_namespace({"metadata": {"name": environment.name, "labels": {"filrouge.lab": "another-panel", "filrouge.env": str(environment.pk),
                                                                              "filrouge.dev/isolated": "true", "filrouge.test": "true"}}})
    try:
        job = run_now("lab-launch", environment, user=sam)
        assert job.status == "failed"
        assert "FILROUGE_LABS_INSTANCE" not in job.error and job.error.startswith("Your environment could not be built this time")
        environment.refresh_from_db()
        assert "belongs to another lab environment or panel" in environment.error_detail
        assert admin.read_namespace(environment.name).metadata.labels["filrouge.lab"] == "another-panel"  # not deleted by the clean-up
    finally:
        admin.delete_namespace(environment.name)


def test_extending_an_environment_hands_the_student_a_token_that_lasts_until_the_new_end(kube_course, kube_target, sam, carol):
    environment = launch(kube_course, "k8s-api-hpa", sam)
    old_token = yaml.safe_load(environment.access["kubeconfig"])["users"][0]["user"]["token"]

    job = run_now("lab-extend", environment, user=carol, minutes=600)
    assert job.status == "succeeded", job_text(job)
    environment.refresh_from_db()
    new_token = yaml.safe_load(environment.access["kubeconfig"])["users"][0]["user"]["token"]
    assert new_token != old_token
    assert new_token not in job_text(job)
    # The renewed kubeconfig still works in the namespace, and only there.
    core = k8s.CoreV1Api(student_client(environment.access))
    assert core.read_namespaced_config_map("api-poc-config", environment.name).metadata.name == "api-poc-config"
    with pytest.raises(ApiException) as refused:
        core.list_namespaced_pod("default")
    assert refused.value.status == 403
    run_now("lab-destroy", environment, user=sam)
