"""Fixtures for deploy tests on the real engine: a Docker-host cluster, the test images
pushed to a real registry, services in throw-away projects, and clean-up by label."""

import uuid

import pytest
import requests

from clusters.models import Cluster, Credential
from deployments import naming
from deployments.models import Service
from deployments.spec import normalize_spec
from panel.jobs.models import Job, JobEvent
from tests.support.ports import wait_until
from tests.support.registry import push_image


@pytest.fixture(scope="session")
def pushed_images(docker_client, http_app_images, registry):
    """{"repository": "127.0.0.1:PORT/filrouge/httpapp", "1": ..., "2": ..., "3": ...} in a real registry."""
    repository = f"{registry.address}/filrouge/httpapp"
    for version in ("1", "2", "3"):
        push_image(docker_client, http_app_images[version], registry, "filrouge/httpapp", version)
    return {"repository": repository, "registry": registry}


@pytest.fixture
def project(docker_client):
    """A fresh project name; everything labelled with it is removed at the end."""
    name = f"t{uuid.uuid4().hex[:8]}"
    yield name
    remove_project(docker_client, name)


def remove_project(client, name):
    labels = {"label": [f"{naming.PROJECT}={name}"]}
    for service in client.api.services(filters=labels) if swarm_active(client) else []:
        client.api.remove_service(service["ID"])
    for container in client.api.containers(all=True, filters=labels):
        client.api.remove_container(container["Id"], force=True, v=True)
    for secret in client.api.secrets(filters=labels) if swarm_active(client) else []:
        try:
            client.api.remove_secret(secret["ID"])
        except Exception:  # noqa: BLE001 - a task may still hold it for a moment
            pass
    for volume in (client.api.volumes(filters=labels) or {}).get("Volumes") or []:
        try:
            client.api.remove_volume(volume["Name"], force=True)
        except Exception:  # noqa: BLE001
            pass
    for network in client.api.networks(filters=labels):
        try:
            client.api.remove_network(network["Id"])
        except Exception:  # noqa: BLE001
            pass


def swarm_active(client):
    return (client.info().get("Swarm") or {}).get("LocalNodeState") == "active"


@pytest.fixture
def docker_cluster(db, docker_client):
    return Cluster.objects.create(name=f"local-{uuid.uuid4().hex[:6]}", kind="docker", endpoint="unix:///var/run/docker.sock")


def make_service(cluster, project, name="web", **spec):
    spec.setdefault("replicas", 1)
    spec.setdefault("ports", [{"container": 8080, "host_ip": "127.0.0.1"}])
    spec.setdefault("update", {"parallelism": 1, "monitor": 15})
    return Service.objects.create(name=name, cluster=cluster, project=project, spec=normalize_spec(spec))


def registry_credential(registry, password=None):
    user, real_password = registry.credentials
    credential = Credential(name=f"reg-{uuid.uuid4().hex[:6]}", kind="registry", username=user)
    credential.set_secret({"password": password or real_password})
    credential.save()
    return credential


def wait_for_job(job, timeout=120):
    def finished():
        job.refresh_from_db()
        return job.is_finished

    try:
        wait_until(finished, timeout=timeout, interval=0.2, message=f"job {job.pk} ({job.kind}) to finish")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; log so far:\n{job_text(job)}") from None
    return job


def job_text(job):
    return "\n".join(f"[{e.host}] {e.task}: {e.text}" for e in JobEvent.objects.filter(job=job).order_by("seq"))


def assert_succeeded(job):
    wait_for_job(job)
    assert job.status == "succeeded", f"{job.kind} ended {job.status}: {job.error}\n{job_text(job)}"
    return job


def containers_of(client, service, all=True):
    return client.api.containers(all=all, filters=naming.label_filter(naming.service_labels(service)))


def host_ports(client, service):
    """127.0.0.1 host ports of the service's running containers, by container name."""
    ports = {}
    for item in containers_of(client, service, all=False):
        for port in item.get("Ports") or []:
            if port.get("PublicPort") and port.get("PrivatePort") == 8080:
                ports[item["Names"][0].lstrip("/")] = port["PublicPort"]
    return ports


def answer(port, path="/"):
    try:
        response = requests.get(f"http://127.0.0.1:{port}{path}", timeout=1)
    except requests.RequestException:
        return None
    if response.status_code != 200:
        return None
    return response.text.strip().rsplit(">", 1)[-1]  # "<!doctype html><title>httpapp</title>version 1" -> "version 1"


def versions_served(client, service):
    return sorted(filter(None, (answer(port) for port in host_ports(client, service).values())))


def last_job(service, kind):
    return Job.objects.for_target(service).filter(kind=kind).order_by("-id").first()


from .swarm_fixtures import swarm_cluster, swarm_engine  # noqa: E402,F401
