"""The `kubernetes.autoscale` check of the API + HPA starter exercise, through the real lab jobs.

The student creates the Deployment, Service and HPA with the kubeconfig the launch handed
them; the check loads the Service through the API server's service proxy with that same
kubeconfig and watches the replicas. The same tests run on the stand-in and on a real
cluster with metrics-server (FILROUGE_TEST_KUBECONFIG), with the same manifests (a CPU-bound
app: `kube_target.cpu_bound_app()`, hpa-example by default) and the same assertions; only the
pace differs (`kube_target.autoscale_pace`): on the stand-in its levers shorten the 15 s
metrics window and HPA sync period to 1 s and FILROUGE_LOADTEST_MAX_SECONDS caps the load at
a few seconds; a real cluster gets the exercise's own two minutes.
"""

import pytest
from kubernetes import client as k8s

from tests.labs.providers.test_kubernetes_exercise import api_poc, check, launch, student_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("lab_namespace_sweep"), pytest.mark.k8s]

AUTOSCALE = "Under load, the autoscaler adds replicas and answers stay fast"


@pytest.fixture
def pace(kube_target, settings):
    """The autoscaling pace (skips on a real cluster without metrics-server)."""
    pace = kube_target.autoscale_pace(settings)
    if kube_target.is_standin:
        kube_target.api.app_cpu_per_request = 0.02
    return pace


def proxied_paths(kube_target):
    """The service proxy paths the stand-in saw (None on a real cluster: no request log there)."""
    if not kube_target.is_standin:
        return None
    return [path for _method, path in kube_target.api.request_log if "/proxy/" in path]


def deploy(environment, kube_target, with_hpa=True, loaded=True):
    """The student's objects; `loaded`: the CPU-bound app with room to burn CPU (a 500m limit,
    as the instructions suggest), else the plain test image."""
    namespace = environment.access["namespace"]
    student = student_client(environment.access)
    if loaded:
        image, command = kube_target.cpu_bound_app()
        deployment, service, hpa = api_poc(image, command, cpu_limit="500m")
    else:
        deployment, service, hpa = api_poc(kube_target.image("1"))
    apps = k8s.AppsV1Api(student)
    apps.create_namespaced_deployment(namespace, deployment)
    k8s.CoreV1Api(student).create_namespaced_service(namespace, service)
    if with_hpa:
        k8s.AutoscalingV2Api(student).create_namespaced_horizontal_pod_autoscaler(namespace, hpa)
    kube_target.wait_for(lambda: (apps.read_namespaced_deployment("api-poc", namespace).status.ready_replicas or 0) >= 2,
                         timeout=180, message="api-poc ready")
    return apps, namespace


def test_replicas_rise_under_the_checks_load_and_the_points_are_awarded(pace, kube_course, kube_target, sam):
    environment = launch(kube_course, "k8s-api-hpa", sam)
    apps, namespace = deploy(environment, kube_target)
    if kube_target.is_standin:
        kube_target.api.reset_request_log()

    attempt, results = check(environment, sam)
    result = results[AUTOSCALE]
    assert result["passed"], result["detail"]
    assert result["detail"].startswith("replicas 2 → ")
    assert " 0 errors" in result["detail"] and "p95 " in result["detail"]
    assert attempt.score == attempt.max_score == 14
    # The HPA really scaled the Deployment (the check only watched).
    assert apps.read_namespaced_deployment("api-poc", namespace).spec.replicas >= 3
    # The load went through the service proxy (the stand-in's log shows it; on a real cluster,
    # the 0 errors above could only come through it) with the student's own token, never logged.
    paths = proxied_paths(kube_target)
    assert paths is None or any("/services/api-poc:80/proxy/" in path for path in paths)
    from panel.jobs.models import Job
    from tests.labs.jobhelpers import job_text

    token = environment.access["kubeconfig"].split("token: ", 1)[1].split()[0]
    assert token not in job_text(Job.objects.filter(kind="lab-check").latest("pk"))

    # The periodic probe then records the namespace's CPU on the environment (its chart).
    from clusters.kubernetes.jobs import observe_kube_cluster
    from metrics.models import Series

    environment.refresh_from_db()
    observe_kube_cluster(environment.cluster)
    cpu = Series.objects.get(object_type="environment", object_id=environment.pk, name="filrouge_lab_environment_cpu_cores")
    assert cpu.labels == {"environment": environment.name} and cpu.last_value > 0
    hpa = Series.objects.get(object_type="cluster", object_id=environment.cluster_id, name="filrouge_kubernetes_hpa_desired_replicas",
                             labels__namespace=namespace)
    assert hpa.last_value >= 3


def test_without_an_hpa_no_load_is_sent_and_no_points_given(kube_course, kube_target, sam):
    # No metrics needed: the check stops before any load.
    environment = launch(kube_course, "k8s-api-hpa", sam)
    deploy(environment, kube_target, with_hpa=False, loaded=False)
    if kube_target.is_standin:
        kube_target.api.reset_request_log()
    _attempt, results = check(environment, sam)
    result = results[AUTOSCALE]
    assert not result["passed"]
    assert result["detail"].startswith("No HorizontalPodAutoscaler named api-poc in namespace ")
    assert "no load was sent" in result["detail"]
    assert not proxied_paths(kube_target)


def test_with_no_metrics_api_the_check_says_what_the_hpa_says(kube_course, kube_target, sam, settings):
    # The stand-in plays a cluster without metrics-server; a real cluster runs this only when it has none.
    if kube_target.is_standin:
        kube_target.api.metrics_server = False
    elif kube_target.metrics_api_served():
        pytest.skip("needs a cluster without metrics-server (the stand-in's metrics_server lever); this one serves metrics.k8s.io")
    # The HPA's first sync (15 s on a real cluster) must fall inside the load to report its condition.
    settings.LOADTEST_MAX_SECONDS = 8 if kube_target.is_standin else 45
    if kube_target.is_standin:
        kube_target.api.hpa_sync_period = 1.0
    environment = launch(kube_course, "k8s-api-hpa", sam)
    apps, namespace = deploy(environment, kube_target)
    _attempt, results = check(environment, sam)
    result = results[AUTOSCALE]
    assert not result["passed"]
    assert "replicas 2 → 2" in result["detail"] and "replicas did not rise above 2" in result["detail"]
    assert "the HPA says: the HPA was unable to compute the replica count" in result["detail"]
    assert "(get pods.metrics.k8s.io)" in result["detail"]
    assert apps.read_namespaced_deployment("api-poc", namespace).spec.replicas == 2


def test_a_deployment_already_at_the_maximum_is_told_to_wait_for_the_scale_down(kube_course, kube_target, sam):
    # No metrics needed: the check stops before any load.
    environment = launch(kube_course, "k8s-api-hpa", sam)
    apps, namespace = deploy(environment, kube_target, loaded=False)
    # As after a check that scaled it up; the HPA's minimum holds it there (an idle real HPA
    # would otherwise scale it back down at its next sync, before the check reads it).
    k8s.AutoscalingV2Api(kube_target.api_client()).patch_namespaced_horizontal_pod_autoscaler("api-poc", namespace, {"spec": {"minReplicas": 6}})
    apps.patch_namespaced_deployment_scale("api-poc", namespace, {"spec": {"replicas": 6}})
    if kube_target.is_standin:
        kube_target.api.reset_request_log()
    _attempt, results = check(environment, sam)
    result = results[AUTOSCALE]
    assert not result["passed"]
    assert "already runs 6 replicas, the HPA's maximum" in result["detail"] and "No load was sent." in result["detail"]
    assert not proxied_paths(kube_target)
