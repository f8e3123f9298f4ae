"""A load test of a Kubernetes service that publishes no NodePort goes through the API server's service proxy."""

import pytest
from django.test import override_settings

from panel.jobs.services import start_job
from tests.support.kube_jobs import deploy, job_text, kube_service, run_job, succeeded

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]


@override_settings(LOADTEST_MAX_SECONDS=30)
def test_a_load_test_job_on_a_kubernetes_service_without_node_port_goes_through_the_proxy(kube_target, bob):
    service = kube_service(kube_target, replicas=2, ports=[{"container": 8080, "published": 80}])
    succeeded(deploy(service, bob))
    job = run_job(start_job("load-test", {"duration": 2, "concurrency": 3}, bob, target=service))
    assert job.status == "succeeded", job_text(job)
    assert job.params["url"] == f"service-proxy://{kube_target.namespace}/web:80/"
    assert job.result["errors"] == 0 and job.result["requests"] > 0
    text = job_text(job)
    assert "service proxy" in text
    kube_target.assert_no_secret_in(text)
