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


def test_a_load_test_makes_the_services_autoscaler_scale_and_the_probe_charts_it(kube_target, bob, settings):
    """On the stand-in (1 s metrics window and HPA sync) and on a real cluster with metrics-server
    (its own 15 s pace: two minutes of load), with the CPU-bound app."""
    from clusters.kubernetes.jobs import observe_kube_cluster
    from metrics.models import Series

    pace = kube_target.autoscale_pace(settings)
    image, command = kube_target.cpu_bound_app()
    extra = {"command": command} if command else {}
    service = kube_service(kube_target, image=image, replicas=2, ports=[{"container": 8080, "published": 80}],
                           resources={"cpu": 0.5, "cpu_request": 0.1}, autoscaling={"min_replicas": 2, "max_replicas": 5, "cpu_target_percent": 50},
                           **extra)
    succeeded(deploy(service, bob))
    duration = 5 if kube_target.is_standin else pace.load_seconds
    job = run_job(start_job("load-test", {"duration": duration, "concurrency": 6}, bob, target=service))
    assert job.status == "succeeded", job_text(job)
    assert job.result["errors"] == 0

    observe_kube_cluster(kube_target.cluster)
    series = {s.name: s for s in Series.objects.filter(object_type="service", object_id=service.pk)}
    assert series["filrouge_service_hpa_desired_replicas"].last_value >= 3   # the HPA scaled up under the load
    assert series["filrouge_service_cpu_cores"].last_value > 0 and series["filrouge_service_memory_bytes"].last_value > 0
    # and the load-test job sampled the autoscaler beside its own figures
    assert "filrouge_loadtest_latency_p95_seconds" in series
