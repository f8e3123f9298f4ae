"""A service's latency and replicas chart in a real Chromium while a load test runs."""

import uuid

import pytest
from django.test import override_settings

from clusters.docker.jobs import probe_cluster
from clusters.models import Cluster
from deployments.models import Service
from deployments.spec import normalize_spec
from panel.jobs.services import start_job
from tests.fixtures.actors import PASSWORD
from tests.fixtures.browser import login
from tests.metrics.test_browser_charts import chart_series, last_value
from tests.support.containers import published_port
from tests.support.ports import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@override_settings(METRICS_CHART_POLL_SECONDS=1)
def test_a_services_latency_and_replicas_chart_moves_during_a_load_test(worker, live_server, page, artifacts, bob, docker_client, container_factory, http_app_images):
    project = f"lt-{uuid.uuid4().hex[:6]}"
    # The service's replica: a container with the labels the Docker backend gives its own.
    container = container_factory(http_app_images["1"], ports={"8080/tcp": ("127.0.0.1",)}, labels={"filrouge.project": project, "filrouge.service": "web"})
    port = published_port(container, "8080/tcp")
    cluster = Cluster.objects.create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")
    service = Service.objects.create(name="web", cluster=cluster, project=project, status="deployed", spec=normalize_spec(
        {"image": http_app_images["repository"], "tag": "1", "replicas": 1, "ports": [{"container": 8080, "published": port, "host_ip": "127.0.0.1"}]}))
    probe_cluster(cluster)

    login(page, live_server, "bob", PASSWORD)
    page.goto(f"{live_server.url}/services/{service.pk}/")
    wait_until(lambda: chart_series(page, "chart-service-replicas"), timeout=30, message="the replicas chart was not drawn")

    job = start_job("load-test", {"duration": 25, "concurrency": 4, "rate": 200, "path": "/index.html"}, bob, target=service)

    def moving():
        latency = chart_series(page, "chart-service-loadtest") or {}
        replicas = chart_series(page, "chart-service-replicas") or {}
        p95 = last_value(latency.get("Latency p95"))
        rps = last_value(latency.get("Requests per second"))
        running = last_value(replicas.get("Replicas running"))
        drawn = len([v for v in latency.get("Requests per second") or [] if v is not None])
        return p95 and rps and rps > 50 and running == 1 and drawn >= 2

    wait_until(moving, timeout=60, interval=1, message="the load test never showed on the service's charts")
    page.locator("#chart-service-loadtest").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "metrics-service-load-test.png"), full_page=False)
    wait_until(lambda: job.refresh_from_db() or job.is_finished, timeout=90, message="the load test never finished")
    assert job.status == "succeeded", job.error
    # Paced at 200 requests/s: never above the rate (how far below depends on the machine's load).
    assert 0 < job.result["rps"] <= 210 and job.result["errors"] == 0
