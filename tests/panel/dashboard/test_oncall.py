"""The overview's on-call panel: failing services, hosts over 90% disk, workers."""

from datetime import timedelta

import pytest
from django.utils import timezone

import metrics
from clusters.models import Cluster, Server
from deployments.models import Service
from deployments.spec import normalize_spec
from tests.fixtures.actors import logged_in

pytestmark = pytest.mark.django_db


def service(cluster, name, status="deployed"):
    return Service.objects.create(name=name, cluster=cluster, project="shop", status=status, spec=normalize_spec({"image": "web", "tag": "1"}))


def health(svc, up, at):
    metrics.record("filrouge_service_health_check_up", up, {"service": svc.name, "project": svc.project}, obj=svc, at=at)


def test_it_lists_services_whose_deploy_failed_or_whose_health_check_fails_now(bob):
    cluster = Cluster.objects.create(name="engine", kind="docker", endpoint="unix:///var/run/docker.sock")
    now = timezone.now()
    service(cluster, "broken-deploy", status="failed")
    health(service(cluster, "down-now"), 0, now)
    health(service(cluster, "down-long-ago"), 0, now - timedelta(minutes=30))
    health(service(cluster, "healthy"), 1, now)

    page = logged_in(bob).get("/panels/oncall/").content.decode()
    failing = page[page.index('id="oncall-failing"'):page.index('id="oncall-disks"')]

    assert "broken-deploy" in failing and "last deploy failed" in failing
    assert "down-now" in failing and "health check failing" in failing
    assert "down-long-ago" not in failing and "healthy" not in failing


def test_it_lists_hosts_over_90_percent_disk_and_the_workers_alive(bob):
    full = Server.objects.create(name="full01", address="10.0.0.1")
    roomy = Server.objects.create(name="roomy01", address="10.0.0.2")
    metrics.record("filrouge_server_disk_used_ratio", 0.95, {"server": "full01"}, obj=full)
    metrics.record("filrouge_server_disk_used_ratio", 0.5, {"server": "roomy01"}, obj=roomy)
    metrics.record_many([metrics.Sample("filrouge_workers", 3, {}, object_type="jobs")])

    page = logged_in(bob).get("/panels/oncall/").content.decode()
    disks = page[page.index('id="oncall-disks"'):]

    assert "full01" in disks and "95%" in disks and "roomy01" not in disks
    assert page[page.index('id="oncall-workers"'):].split("</dd>")[0].count("3") >= 1


def test_it_is_for_operators_only(sam):
    assert 'id="panel-oncall"' not in logged_in(sam).get("/").content.decode()


def test_a_failing_health_check_shows_its_reason_in_the_readers_language(bob):
    cluster = Cluster.objects.create(name="engine", kind="docker", endpoint="unix:///var/run/docker.sock")
    now = timezone.now()
    for name, reason in [("timed-out", "no answer within 2 s"), ("no-pods", 'HTTP 503: no endpoints available for service "no-pods"')]:
        svc = service(cluster, name)
        Service.objects.filter(pk=svc.pk).update(observed={"health_check": {"up": False, "seconds": 2.0, "reason": reason}})
        health(svc, 0, now)

    client = logged_in(bob)
    page = client.get("/panels/oncall/").content.decode()
    assert "health check failing: no answer within 2 s" in page
    assert "health check failing: HTTP 503: no endpoints available for service &quot;no-pods&quot;" in page
    page = client.get("/panels/oncall/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "contrôle de santé en échec : pas de réponse en 2 s" in page
