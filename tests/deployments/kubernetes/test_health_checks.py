"""The periodic probe's health check of the panel's Kubernetes services: an HTTP GET of each
service's health check path through the API server's service proxy, timed; a service that
should run but has no ready pod (503 "no endpoints available") is down, with that reason.
Runs on the stand-in and on a real cluster (FILROUGE_TEST_KUBECONFIG): no stand-in lever."""

import pytest
from kubernetes import client as k8s

from clusters.kubernetes.jobs import observe_kube_cluster
from deployments.models import Service, ServiceStatus
from metrics.models import Series
from panel.jobs.services import start_job
from tests.fixtures.actors import logged_in
from tests.support.kube import both_credential_shapes
from tests.support.kube_jobs import deploy, job_text, kube_service, run_job, split_image, succeeded

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]


def health(service):
    series = {row.name: row for row in Series.objects.filter(object_type="service", object_id=service.pk, name__startswith="filrouge_service_health_check_")}
    return series.get("filrouge_service_health_check_seconds"), series.get("filrouge_service_health_check_up")


def failing_on_call(user):
    page = logged_in(user).get("/panels/oncall/").content.decode()
    return page[page.index('id="oncall-failing"'):page.index('id="oncall-disks"')]


def observe_until_down(kube_target, service):
    def down():
        observe_kube_cluster(kube_target.cluster)
        _latency, up = health(service)
        return up is not None and up.last_value == 0
    kube_target.wait_for(down, timeout=90, interval=1, message=f"{service.name}'s health check down")
    service.refresh_from_db()
    return service


@both_credential_shapes
def test_a_deployed_service_is_checked_through_the_service_proxy_and_is_down_without_ready_pods(kube_target, bob):
    service = kube_service(kube_target, replicas=2, health_check={"type": "http", "path": "/"})
    succeeded(deploy(service, bob))

    job = run_job(start_job("kube-observe", {}, bob, target=kube_target.cluster))  # the probe, as a job
    assert job.status == "succeeded", job_text(job)
    kube_target.assert_no_secret_in(job_text(job))
    latency, up = health(service)
    assert latency is not None and 0 < latency.last_value < 2 and up.last_value == 1
    assert latency.labels == {"service": service.name, "project": kube_target.namespace}
    service.refresh_from_db()
    assert service.observed["health_check"]["up"] is True and service.observed["health_check"]["reason"] == ""
    assert service.name not in failing_on_call(bob)

    # Scaled to 0 behind the panel's back: the panel still wants 2 pods, none is ready.
    k8s.AppsV1Api(kube_target.api_client()).patch_namespaced_deployment_scale(service.name, kube_target.namespace, {"spec": {"replicas": 0}})
    service = observe_until_down(kube_target, service)

    reason = service.observed["health_check"]["reason"]
    assert reason.startswith("HTTP 503") and f'no endpoints available for service "{service.name}"' in reason
    assert service.observed["desired"] == 2 and service.observed["health_check"]["up"] is False
    failing = failing_on_call(bob)
    assert service.name in failing and "health check failing" in failing and "no endpoints available" in failing
    kube_target.assert_no_secret_in(failing)


def test_pods_that_never_get_ready_make_the_health_check_fail_with_the_proxys_reason(kube_target, bob):
    repository, tag = split_image(kube_target.missing_image())
    service = kube_service(kube_target, name="unready", image=f"{repository}:{tag}", replicas=1, update={"monitor": 3, "failure_action": "pause"})
    run_job(deploy(service, bob))  # the rollout never gets a ready pod: it fails

    service = observe_until_down(kube_target, service)

    assert service.status == ServiceStatus.FAILED
    assert 'no endpoints available for service "unready"' in service.observed["health_check"]["reason"]
    latency, _up = health(service)
    assert latency is not None  # the proxy answered, quickly: the time of that answer
    failing = failing_on_call(bob)
    assert "unready" in failing and "last deploy failed" in failing and "no endpoints available" in failing


def test_a_service_without_ports_is_not_checked(kube_target, bob):
    quiet = kube_service(kube_target, name="worker", replicas=1, ports=[])
    succeeded(deploy(quiet, bob))
    observe_kube_cluster(kube_target.cluster)
    assert health(quiet) == (None, None)
    assert "health_check" not in Service.objects.get(pk=quiet.pk).observed
