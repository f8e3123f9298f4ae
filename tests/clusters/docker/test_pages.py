"""Cluster pages for Docker hosts and Swarms: the form's endpoint rules, the observed state
with its age, node buttons on a Swarm, and the actions that start jobs."""

import pytest
from django.utils import timezone

from clusters.models import Cluster
from panel.jobs.models import Job
from tests.fixtures.actors import logged_in

pytestmark = pytest.mark.django_db


def test_the_form_explains_what_each_endpoint_needs(bob):
    client = logged_in(bob)

    tcp = client.post("/inventory/clusters/new/", {"name": "remote", "kind": "docker", "endpoint": "tcp://192.0.2.10:2376"})
    ssh = client.post("/inventory/clusters/new/", {"name": "remote", "kind": "swarm", "endpoint": "ssh://manager1"})
    other = client.post("/inventory/clusters/new/", {"name": "remote", "kind": "docker", "endpoint": "http://x"})

    assert tcp.status_code == 400 and "needs a docker-tls credential" in tcp.content.decode()
    assert ssh.status_code == 400 and "reached through an inventory server" in ssh.content.decode()
    assert other.status_code == 400 and "Use unix://, tcp:// or ssh://." in other.content.decode()
    assert not Cluster.objects.exists()


def test_a_new_cluster_gets_a_connect_test_job_at_once(bob):
    response = logged_in(bob).post("/inventory/clusters/new/", {"name": "local", "kind": "docker", "endpoint": ""})

    cluster = Cluster.objects.get(name="local")
    assert response.status_code == 302 and cluster.endpoint == "unix:///var/run/docker.sock"
    job = Job.objects.get()
    assert job.kind == "engine-connect-test" and job.target == cluster


def test_the_detail_page_shows_the_observed_state_with_its_age_and_swarm_node_buttons(bob, charlie):
    cluster = Cluster.objects.create(
        name="swarm1", kind="swarm", reachable=True, version="20.10.24", observed_at=timezone.now() - timezone.timedelta(seconds=42),
        observed={
            "engine": {"version": "20.10.24", "os": "linux", "arch": "amd64"}, "probe": {"calls": 9, "seconds": 0.05},
            "containers": [{"name": "web-1", "image": "app:1", "state": "running", "status": "Up 1 hour (healthy)", "health": "healthy", "ports": ["127.0.0.1:8080->80/tcp"], "service": "web", "project": "shop", "release": "3"}],
            "container_counts": {"running": 1, "exited": 0, "unhealthy": 0}, "images": [], "volumes": [], "networks": [],
            "disk": {"images_bytes": 2048, "containers_bytes": 0, "volumes_bytes": 0},
            "nodes": [{"id": "abc123", "hostname": "node1", "role": "manager", "availability": "active", "status": "ready", "leader": True, "engine": "20.10.24", "tasks_running": 1}],
            "services": [],
        },
    )

    page = logged_in(bob).get(f"/inventory/clusters/{cluster.pk}/").content.decode()

    assert "42 s ago" in page and "9 API calls" in page and "web-1" in page and "shop/web r3" in page
    assert f'action="/inventory/clusters/{cluster.pk}/nodes/abc123/availability/"' in page
    assert 'value="drain"' in page and 'value="pause"' in page and 'value="active"' not in page
    assert logged_in(charlie).get(f"/inventory/clusters/{cluster.pk}/").status_code == 403

    drained = logged_in(bob).post(f"/inventory/clusters/{cluster.pk}/nodes/abc123/availability/", {"availability": "drain"})
    job = Job.objects.get(kind="swarm-node-availability")
    assert drained.status_code == 302 and job.params["availability"] == "drain" and job.params["node"] == "abc123"
