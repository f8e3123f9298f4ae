"""A Kubernetes service's page and API: pods, events, logs, and the existing actions."""

import time

import pytest
from django.urls import reverse

from panel.jobs.models import Job
from tests.fixtures.actors import api_client, logged_in

from tests.support.kube_jobs import deploy, job_text, kube_service, run_job, succeeded

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def deployed(kube_target, bob):
    service = kube_service(kube_target, replicas=2)
    succeeded(deploy(service, bob))
    service.refresh_from_db()
    return service


def test_the_service_page_shows_pods_with_node_and_restarts_and_events(deployed, bob):
    page = logged_in(bob).get(reverse("deployments:detail", args=[deployed.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert 'id="kube-events"' in text and "Restarts" in text
    for row in deployed.observed["replicas"]:
        assert row["name"] in text and row["node"] in text
    assert "ScalingReplicaSet" in text or "Scheduled" in text


def test_the_api_deploys_a_new_tag_and_reads_pods_and_events(deployed, bob, kube_target):
    client = api_client(bob)
    tag = kube_target.image("2").rpartition(":")[2]
    response = client.post(f"/api/services/{deployed.pk}/deploy/", {"tag": tag}, format="json")
    assert response.status_code == 202
    job = run_job(Job.objects.get(pk=response.json()["job"]["id"]))
    assert job.status == "succeeded", job.error
    pods = client.get(f"/api/services/{deployed.pk}/pods/").json()
    assert pods["desired"] == 2 and pods["healthy"] == 2 and pods["observed_age_seconds"] is not None
    assert {row["image"] for row in pods["pods"] if row["state"] == "running"} == {kube_target.image("2")}
    events = client.get(f"/api/services/{deployed.pk}/events/").json()["events"]
    assert any(event["reason"] == "ScalingReplicaSet" for event in events)


def test_the_api_scales_and_rolls_back(deployed, bob):
    client = api_client(bob)
    scale = client.post(f"/api/services/{deployed.pk}/scale/", {"replicas": 3}, format="json")
    assert run_job(Job.objects.get(pk=scale.json()["job"]["id"])).status == "succeeded"
    rollback = client.post(f"/api/services/{deployed.pk}/rollback/", {"revision": 1}, format="json")
    assert rollback.status_code == 202 and rollback.json()["release"]["revision"] == 2
    assert run_job(Job.objects.get(pk=rollback.json()["job"]["id"])).status == "succeeded"
    assert client.get(f"/api/services/{deployed.pk}/pods/").json()["desired"] == 3


def test_logs_are_tailed_then_followed(deployed, bob, kube_target):
    kube_target.require_standin("append_pod_log")
    api = kube_target.api
    pods = [row["name"] for row in deployed.observed["replicas"]]
    for name in pods:
        api.append_pod_log(kube_target.namespace, name, f"hello from {name}\n")

    tail = run_job(api_client(bob).post(f"/api/services/{deployed.pk}/logs/", {"tail": 10}, format="json") and Job.objects.filter(kind="service-logs").latest("id"))
    assert tail.status == "succeeded", tail.error
    text = job_text(tail)
    assert all(f"[{name}] log: hello from {name}" in text for name in pods)

    import threading

    threading.Timer(1.0, api.append_pod_log, (kube_target.namespace, pods[0], "a new line while following\n")).start()
    started = time.monotonic()
    response = api_client(bob).post(f"/api/services/{deployed.pk}/logs/", {"tail": 0, "follow_seconds": 3}, format="json")
    assert response.status_code == 202
    follow = run_job(Job.objects.get(pk=response.json()["id"]))
    assert follow.status == "succeeded", follow.error
    assert "a new line while following" in job_text(follow)
    assert time.monotonic() - started < 15


def test_pods_events_and_logs_need_access(deployed, charlie):
    client = api_client(charlie)
    for path in ("pods", "events"):
        assert client.get(f"/api/services/{deployed.pk}/{path}/").status_code == 403
    assert client.post(f"/api/services/{deployed.pk}/logs/", {}, format="json").status_code == 403
    assert logged_in(charlie).get(reverse("deployments:detail", args=[deployed.pk])).status_code in (403, 404)


def test_the_observe_action_refreshes_pods_and_events(deployed, bob):
    from deployments.models import Service

    Service.objects.filter(pk=deployed.pk).update(observed={})
    response = logged_in(bob).post(reverse("deployments:action", args=[deployed.pk, "observe"]))
    assert response.status_code == 302
    job = run_job(Job.objects.filter(kind="service-observe").latest("id"))
    assert job.status == "succeeded", job.error
    observed = Service.objects.get(pk=deployed.pk).observed
    assert observed["healthy"] == 2 and observed["events"]
