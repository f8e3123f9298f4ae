"""A teacher's load test on a Service of a student's namespace, through the API server's service
proxy with the namespace's own kubeconfig (the Kubernetes stand-in, or FILROUGE_TEST_KUBECONFIG)."""

import pytest
from rest_framework.exceptions import ValidationError

from metrics.models import Series
from panel.jobs.models import Status
from tests.labs.jobhelpers import job_text, run_now
from tests.labs.providers.test_kubernetes_autoscale import deploy
from tests.labs.providers.test_kubernetes_exercise import launch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("lab_namespace_sweep"), pytest.mark.k8s]


def test_a_teacher_loads_a_students_service_through_the_proxy_with_the_namespaces_credentials(kube_course, kube_target, sam, carol, dave):
    environment = launch(kube_course, "k8s-api-hpa", sam)
    _apps, namespace = deploy(environment, kube_target, with_hpa=False)
    if kube_target.api is not None:
        kube_target.api.reset_request_log()

    from tests.fixtures.actors import logged_in

    page = logged_in(carol).get(f"/labs/environments/{environment.pk}/").content.decode()
    assert 'id="loadtest_service"' in page and 'id="loadtest_port"' in page
    started = logged_in(carol).post(f"/labs/environments/{environment.pk}/load-test/", {
        "service": "api-poc", "port": "80", "path": "/", "method": "GET", "concurrency": 3, "duration": 3, "expected_status": 200})
    assert started.status_code == 302
    from panel.jobs.models import Job

    assert Job.objects.get(kind="lab-load-test").params["service"] == "api-poc"
    Job.objects.filter(kind="lab-load-test").update(status=Status.CANCELLED)  # no worker here: this one stays queued

    job = run_now("lab-load-test", environment, user=carol, service="api-poc", port="80", path="/", duration=3, concurrency=3)

    assert job.status == Status.SUCCEEDED, job_text(job)
    assert job.result["requests"] > 0 and job.result["errors"] == 0 and job.result["engine"] == "aiohttp"
    text = job_text(job)
    assert f"service/api-poc:80 in {namespace}/" in text
    kube_target.assert_no_secret_in(text)
    token = environment.access["kubeconfig"].split("token: ", 1)[1].split()[0]
    assert token not in text
    if kube_target.api is not None:
        assert any(f"/namespaces/{namespace}/services/api-poc:80/proxy/" in path for _method, path in kube_target.api.request_log)
    rps = Series.objects.get(name="filrouge_loadtest_requests_per_second", object_type="environment", object_id=environment.pk)
    assert rps.points.count() >= 2 and rps.last_value > 0
    # No HPA here: the Deployment's ready replicas are charted, the autoscaler's line is left out (one log line).
    replicas = Series.objects.get(name="filrouge_service_replicas_running", object_type="environment", object_id=environment.pk)
    assert replicas.last_value >= 2 and replicas.labels == rps.labels
    assert not Series.objects.filter(object_type="environment", object_id=environment.pk, name__startswith="filrouge_service_hpa").exists()
    assert text.count("autoscaler not charted: no HorizontalPodAutoscaler targets api-poc") == 1, text

    # The proxy runs with the namespace's own rights: take services/proxy from its Role and
    # every request is refused (the panel's admin credential is not what loads).
    from kubernetes import client as k8s

    from clusters.kubernetes.isolation import ROLE, ROLE_RULES

    rbac = k8s.RbacAuthorizationV1Api(kube_target.api_client())
    rules = [rule for rule in ROLE_RULES if "services/proxy" not in rule.get("resources", [])]
    rbac.patch_namespaced_role(ROLE, namespace, {"rules": rules})
    refused = run_now("lab-load-test", environment, user=carol, service="api-poc", port="80", duration=2, concurrency=2)
    assert refused.status == Status.FAILED and "Every request failed: status 403" in refused.error, refused.error
    rbac.patch_namespaced_role(ROLE, namespace, {"rules": ROLE_RULES})

    # A Service that is not there answers 404 through the proxy: every request fails, and the job says so.
    missing = run_now("lab-load-test", environment, user=carol, service="nothing-here", port="80", duration=2, concurrency=2)
    assert missing.status == Status.FAILED and "Every request failed" in missing.error
    # Only a Service name of the student's namespace: no other namespace, no URL.
    for bad in ({"service": "api-poc.kube-system", "port": "80"}, {"service": "api-poc", "port": "80", "url": "https://192.0.2.1/"}):
        with pytest.raises(ValidationError):
            run_now("lab-load-test", environment, user=carol, duration=2, **bad)
    # Students never; the owner included.
    from django.core.exceptions import PermissionDenied

    with pytest.raises((PermissionDenied, AssertionError)):
        run_now("lab-load-test", environment, user=sam, service="api-poc", port="80", duration=2)


def test_a_lab_load_test_charts_the_students_replicas_and_hpa_read_with_the_namespaces_credentials(kube_course, kube_target, sam, carol, settings):
    from kubernetes import client as k8s

    from clusters.kubernetes.isolation import ROLE, ROLE_RULES
    from deployments.loadtest.jobs import HPA_EVERY
    from tests.fixtures.actors import api_client, logged_in
    from tests.labs.providers.test_kubernetes_autoscale import deploy as deploy_loaded

    pace = kube_target.autoscale_pace(settings)
    if kube_target.is_standin:
        kube_target.api.app_cpu_per_request = 0.02
    # Long enough for a few reads of the replicas (at most one every HPA_EVERY seconds).
    duration = max(pace.load_seconds, 4 * HPA_EVERY)
    settings.LOADTEST_MAX_SECONDS = settings.LABS_LOADTEST_MAX_SECONDS = duration
    environment = launch(kube_course, "k8s-api-hpa", sam)
    apps, namespace = deploy_loaded(environment, kube_target)
    if kube_target.is_standin:
        kube_target.api.reset_request_log()

    job = run_now("lab-load-test", environment, user=carol, service="api-poc", port="80", path="/", duration=duration, concurrency=10)

    assert job.status == Status.SUCCEEDED, job_text(job)
    series = {s.name: s for s in Series.objects.filter(object_type="environment", object_id=environment.pk)}
    replicas, desired = series["filrouge_service_replicas_running"], series["filrouge_service_hpa_desired_replicas"]
    assert "filrouge_service_hpa_current_replicas" in series
    rps = series["filrouge_loadtest_requests_per_second"]
    assert replicas.labels == desired.labels == rps.labels == {"environment": environment.name}
    ready = [p.value for p in replicas.points.order_by("time")]
    wanted = [p.value for p in desired.points.order_by("time")]
    # Charted each second beside the load (the last reading), rising under the load.
    assert len(ready) >= 2 and ready[0] >= 2, (ready, wanted)
    assert max(wanted) > wanted[0] and max(wanted) >= 3, wanted
    assert max(ready) > ready[0] or apps.read_namespaced_deployment("api-poc", namespace).spec.replicas >= 3, ready
    kube_target.assert_no_secret_in(job_text(job))
    if kube_target.is_standin:
        reads = [path for _method, path in kube_target.api.request_log if "/proxy/" not in path]
        assert any(f"/namespaces/{namespace}/deployments" in path for path in reads), reads
        assert any(f"/namespaces/{namespace}/horizontalpodautoscalers" in path for path in reads), reads
        # Read every few seconds, never per request nor per second.
        listed = [path for path in reads if path.startswith(f"/apis/apps/v1/namespaces/{namespace}/deployments")]
        assert 2 <= len(listed) <= duration // HPA_EVERY + 2, listed

    # The chart on the environment's page, and its data for the teacher.
    page = logged_in(carol).get(f"/labs/environments/{environment.pk}/").content.decode()
    assert 'id="chart-environment-loadtest"' in page and "filrouge_service_hpa_desired_replicas" in page
    body = api_client(carol).get("/api/metrics/", {"object_type": "environment", "object_id": environment.pk, "range": "15m",
                                                   "names": "filrouge_loadtest_requests_per_second,filrouge_service_replicas_running,filrouge_service_hpa_desired_replicas"}).json()
    charted = {item["name"]: item for item in body["series"]}
    assert set(charted) == {"filrouge_loadtest_requests_per_second", "filrouge_service_replicas_running", "filrouge_service_hpa_desired_replicas"}
    assert max(v for v in charted["filrouge_service_hpa_desired_replicas"]["values"] if v is not None) >= 3

    # Read with the namespace's own rights: without them in its Role, no replicas lines (one
    # log line each), and the load test still succeeds.
    Series.objects.filter(object_type="environment", object_id=environment.pk).delete()
    rbac = k8s.RbacAuthorizationV1Api(kube_target.api_client())
    rules = [rule for rule in ROLE_RULES if rule["apiGroups"] not in (["apps"], ["autoscaling"])]
    rbac.patch_namespaced_role(ROLE, namespace, {"rules": rules})
    try:
        blind = run_now("lab-load-test", environment, user=carol, service="api-poc", port="80", duration=3, concurrency=2)
    finally:
        rbac.patch_namespaced_role(ROLE, namespace, {"rules": ROLE_RULES})
    assert blind.status == Status.SUCCEEDED, job_text(blind)
    names = set(Series.objects.filter(object_type="environment", object_id=environment.pk).values_list("name", flat=True))
    assert "filrouge_loadtest_requests_per_second" in names
    assert not names & {"filrouge_service_replicas_running", "filrouge_service_hpa_desired_replicas", "filrouge_service_hpa_current_replicas"}, names
    text = job_text(blind)
    assert text.count("replicas not charted") == 1 and "forbidden" in text.lower(), text
