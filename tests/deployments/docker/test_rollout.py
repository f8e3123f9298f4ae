"""Deploy, rolling update, automatic and manual rollback, scale and remove on a real
Docker engine, with images pulled from a real registry, run by a real worker."""

import threading
import time

import pytest

from deployments import naming, releases
from deployments.models import ReleaseStatus, ServiceStatus

from tests.deployments.conftest import (
    answer,
    assert_succeeded,
    containers_of,
    last_job,
    make_service,
    versions_served,
    wait_for_job,
)

pytestmark = [pytest.mark.docker, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class Poller(threading.Thread):
    """Counts, again and again, the containers of a service that are healthy and answer HTTP."""

    def __init__(self, client, service):
        super().__init__(daemon=True)
        self.client, self.service = client, service
        self.samples = []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            healthy = 0
            for item in containers_of(self.client, self.service, all=False):
                if "(healthy)" not in item.get("Status", ""):
                    continue
                port = next((p["PublicPort"] for p in item.get("Ports") or [] if p.get("PublicPort")), None)
                if port and answer(port):
                    healthy += 1
            self.samples.append(healthy)
            time.sleep(0.05)

    def stop(self):
        self.stopping.set()
        self.join(5)


def test_a_service_is_deployed_updated_rolled_back_scaled_and_removed(worker, bob, docker_client, docker_cluster, pushed_images, project):
    image = pushed_images["repository"]
    service = make_service(docker_cluster, project, image=image, tag="1", replicas=2, update={"parallelism": 1, "monitor": 15})

    # Deploy v1 with 2 replicas.
    release1, job = releases.deploy(service, bob)
    assert_succeeded(job)
    service.refresh_from_db()
    assert service.status == ServiceStatus.DEPLOYED and service.current_release == release1
    assert versions_served(docker_client, service) == ["version 1", "version 1"]
    labels = containers_of(docker_client, service)[0]["Labels"]
    assert labels[naming.PROJECT] == project and labels[naming.SERVICE] == "web" and labels[naming.RELEASE] == "1"
    assert service.observed["desired"] == 2 and service.observed["healthy"] == 2

    # Update to v2 while a poller checks that replicas - parallelism = 1 keep answering.
    poller = Poller(docker_client, service)
    poller.start()
    release2, job = releases.deploy(service, bob, tag="2")
    assert_succeeded(job)
    poller.stop()
    assert len(poller.samples) > 20, "the poller should have sampled the whole update"
    assert min(poller.samples) >= 1, poller.samples
    assert versions_served(docker_client, service) == ["version 2", "version 2"]
    assert job.progress_done == job.progress_total == 2
    release1.refresh_from_db()
    assert release1.status == ReleaseStatus.SUPERSEDED

    # Update to v3, whose health check fails: rolled back to v2 by itself, job failed.
    release3, job = releases.deploy(service, bob, tag="3")
    wait_for_job(job)
    assert job.status == "failed"
    assert "unhealthy" in job.error and "Rolled back to revision 2" in job.error, job.error
    service.refresh_from_db()
    release3.refresh_from_db()
    assert release3.status == ReleaseStatus.FAILED and service.current_release == release2
    assert service.status == ServiceStatus.FAILED
    assert versions_served(docker_client, service) == ["version 2", "version 2"]
    assert not [c for c in containers_of(docker_client, service) if c["Labels"][naming.RELEASE] == "3"]

    # Manual rollback to v1: a new revision with v1's spec.
    release4, job = releases.rollback(service, bob, revision=1)
    assert_succeeded(job)
    assert release4.revision == 4 and release4.rollback_of == release1 and release4.spec["tag"] == "1"
    assert versions_served(docker_client, service) == ["version 1", "version 1"]

    # Scale to 4 and back to 1.
    assert_succeeded(releases.act(service, bob, "service-scale", {"replicas": 4}))
    assert versions_served(docker_client, service) == ["version 1"] * 4
    assert_succeeded(releases.act(service, bob, "service-scale", {"replicas": 1}))
    assert versions_served(docker_client, service) == ["version 1"]
    service.refresh_from_db()
    assert service.spec["replicas"] == 1 and service.observed["running"] == 1

    # Remove: no container, network or volume of the service is left.
    assert_succeeded(releases.act(service, bob, "service-remove"))
    project_filter = {"label": [f"{naming.PROJECT}={project}"]}
    assert docker_client.api.containers(all=True, filters=project_filter) == []
    assert docker_client.api.networks(filters=project_filter) == []
    assert (docker_client.api.volumes(filters=project_filter) or {}).get("Volumes") in (None, [])
    service.refresh_from_db()
    assert service.status == ServiceStatus.REMOVED
    assert last_job(service, "service-remove").status == "succeeded"
