"""Reaching a real Docker engine by unix socket, tcp+TLS (client certificates) and ssh://
through an inventory server with a pinned host key; the connect test job and the probe."""

import time
import uuid

import pytest
from django.test import override_settings

from clusters.drivers import docker as driver
from clusters.drivers.base import AuthFailed, HostKeyMismatch
from clusters.docker.jobs import probe_cluster
from clusters.models import Cluster, Credential, Server
from deployments import releases
from deployments.models import Service
from panel.jobs.services import start_job
from tests.deployments.conftest import assert_succeeded, make_service, wait_for_job
from tests.support.keys import generate_keypair

from tests.deployments.conftest import project, pushed_images  # noqa: F401 - fixtures shared with the deploy tests
from tests.deployments.tls_front import TlsDockerProxy, issue, make_ca

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]


def credential(kind, secret, username=""):
    item = Credential(name=f"{kind}-{uuid.uuid4().hex[:6]}", kind=kind, username=username)
    item.set_secret(secret)
    item.save()
    return item


@pytest.fixture
def tls_proxy(docker_client):
    proxy = TlsDockerProxy()
    yield proxy
    proxy.stop()


@pytest.mark.worker
def test_the_connect_test_job_reports_the_engine_version(worker, bob, docker_client):
    cluster = Cluster.objects.create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")

    job = assert_succeeded(start_job("engine-connect-test", {}, bob, target=cluster))

    version = docker_client.version()["Version"]
    assert job.result["version"] == version
    assert f"Docker Engine {version}" in "\n".join(job.events.values_list("text", flat=True))
    cluster.refresh_from_db()
    assert cluster.reachable is True and cluster.version == version


@pytest.mark.worker
def test_the_connect_test_job_fails_clearly_when_nothing_listens(worker, bob, db):
    cluster = Cluster.objects.create(name="gone", kind="docker", endpoint="unix:///run/filrouge-nothing-here.sock")

    job = wait_for_job(start_job("engine-connect-test", {}, bob, target=cluster))

    assert job.status == "failed"
    assert job.error == "No Docker socket at /run/filrouge-nothing-here.sock: is the engine installed and running on the panel's host?"
    cluster.refresh_from_db()
    assert cluster.reachable is False


def test_tls_with_the_right_client_certificate_reaches_the_engine(tls_proxy, docker_client):
    cluster = Cluster(name="tls", kind="docker", endpoint=f"tcp://127.0.0.1:{tls_proxy.port}",
                      credential=credential("docker-tls", tls_proxy.client_secret()))

    with driver.engine(cluster) as connection:
        facts = driver.engine_version(connection)

    assert facts["version"] == docker_client.version()["Version"]
    assert cluster.credential.public["subject"] == "CN=filrouge panel"


def test_tls_with_a_certificate_from_another_ca_is_refused_with_a_hint(tls_proxy):
    other_key, other_cert = make_ca("someone else's CA")
    key, cert = issue(other_key, other_cert, "intruder")
    secret = {"ca_cert": tls_proxy.ca_pem, "client_cert": cert, "client_key": key}
    cluster = Cluster(name="tls-bad", kind="docker", endpoint=f"tcp://127.0.0.1:{tls_proxy.port}", credential=credential("docker-tls", secret))

    with pytest.raises(AuthFailed) as caught:
        driver.connect(cluster)

    message = str(caught.value)
    assert message.startswith(f"The TLS handshake with the Docker engine at tcp://127.0.0.1:{tls_proxy.port} failed (")
    assert "Check that the CA, client certificate and key of the credential belong to this engine." in message


def test_a_docker_tls_credential_whose_key_does_not_match_its_certificate_is_refused(tls_proxy):
    good = tls_proxy.client_secret()
    other = tls_proxy.client_secret()

    with pytest.raises(ValueError, match="does not belong to the client certificate"):
        Credential(name="mismatch", kind="docker-tls").set_secret({**good, "client_key": other["client_key"]})


@pytest.fixture
def ssh_engine(sshd_fleet_factory, db):
    """An sshd on 127.0.0.1 that lets root in with a key: `docker system dial-stdio` reaches the local engine."""
    private, public = generate_keypair()
    fleet = sshd_fleet_factory(1, user="root", authorized_public_key=public)
    host = fleet.hosts[0]
    key = credential("ssh-key", {"private_key": private})
    server = Server.objects.create(name=f"engine-{uuid.uuid4().hex[:6]}", address="127.0.0.1", port=host.port, user="root", credential=key,
                                   pinned_host_key=host.host_public_key)
    return Cluster.objects.create(name=f"ssh-{server.name}", kind="docker", endpoint=f"ssh://{server.name}", server=server)


@pytest.mark.ssh
def test_ssh_through_an_inventory_server_with_its_pinned_key_reaches_the_engine(ssh_engine, docker_client):
    with driver.engine(ssh_engine) as connection:
        facts = driver.engine_version(connection)
        names = {item["Name"] for item in connection.api.networks()}

    assert facts["version"] == docker_client.version()["Version"]
    assert "bridge" in names


@pytest.mark.ssh
def test_ssh_refuses_a_server_whose_host_key_is_not_the_pinned_one(ssh_engine):
    _private, other_public = generate_keypair()
    ssh_engine.server.pinned_host_key = other_public
    ssh_engine.server.save()

    with pytest.raises(HostKeyMismatch, match="different SSH host key"):
        driver.connect(ssh_engine)


@pytest.mark.ssh
def test_ssh_refuses_a_server_with_no_pinned_host_key(ssh_engine):
    ssh_engine.server.pinned_host_key = ""
    ssh_engine.server.save()

    with pytest.raises(HostKeyMismatch, match="no pinned SSH host key"):
        driver.connect(ssh_engine)


def test_the_probe_makes_the_same_calls_for_one_or_many_containers(docker_client, container_factory, http_app_images, db):
    cluster = Cluster(name="probe", kind="docker", endpoint="unix:///var/run/docker.sock")
    with driver.engine(cluster) as connection:
        before, calls_before = driver.observe_engine(connection)
        started = [container_factory(http_app_images["1"]) for _ in range(6)]
        after, calls_after = driver.observe_engine(connection)

    assert calls_before == calls_after == ["version", "containers", "images", "volumes", "networks", "df"]
    assert len(after["containers"]) >= len(before["containers"]) + 6
    names = {row["name"]: row for row in after["containers"]}
    assert all(names[c.name]["state"] == "running" and names[c.name]["image"] == http_app_images["1"] for c in started)
    assert {"images_bytes", "containers_bytes", "volumes_bytes", "at"} <= set(after["disk"])


def test_the_stored_probe_takes_disk_usage_again_only_when_it_is_old(docker_client, db):
    cluster = Cluster.objects.create(name="probe", kind="docker", endpoint="unix:///var/run/docker.sock")

    first = probe_cluster(cluster)
    cluster.refresh_from_db()
    disk_at = cluster.observed["disk"]["at"]
    second = probe_cluster(cluster)
    cluster.refresh_from_db()

    # df is reused while it is younger than 5 min; the second round reads the engine's events
    # since the first (restarts): one call, whatever the number of containers.
    assert first["calls"] == 6 and second["calls"] == 6
    assert cluster.observed["disk"]["at"] == disk_at
    assert cluster.observed_at is not None and cluster.version == docker_client.version()["Version"]


@pytest.mark.worker
def test_the_probe_fills_the_observed_replicas_of_deployed_services(worker, bob, docker_client, pushed_images, project):
    cluster = Cluster.objects.create(name="probe-svc", kind="docker", endpoint="unix:///var/run/docker.sock")
    service = make_service(cluster, project, image=pushed_images["repository"], tag="1", replicas=2)
    assert_succeeded(releases.deploy(service, bob)[1])
    Service.objects.filter(pk=service.pk).update(observed={}, observed_at=None)

    probe_cluster(cluster)

    service.refresh_from_db()
    assert service.observed["desired"] == 2 and service.observed["running"] == 2
    assert [row["release"] for row in service.observed["replicas"]] == ["1", "1"]
    assert service.observed_at is not None


def test_a_locally_built_image_is_pushed_to_a_registry_with_its_credential(docker_client, http_app_images, registry_with_auth, db):
    cluster = Cluster(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")
    login = credential("registry", {"password": registry_with_auth.credentials[1]}, username=registry_with_auth.credentials[0])
    repository = f"{registry_with_auth.address}/lab/pushed"

    with driver.engine(cluster) as connection:
        pushed = driver.push_image(connection, http_app_images["2"], repository, "7", auth=driver.registry_auth(login))
        registry_with_auth.pushed.append((docker_client, pushed))
        with pytest.raises(AuthFailed, match="refused"):
            driver.push_image(connection, http_app_images["2"], repository, "8", auth={"username": "filrouge", "password": "wrong"})

    assert pushed == f"{repository}:7"
    assert registry_with_auth.tags("lab/pushed") == ["7"]


def probe_until(cluster, done, timeout=20):
    """Probe again and again until `done(cluster)` (the engine's events are read by the second)."""
    deadline = time.monotonic() + timeout
    while True:
        cluster.refresh_from_db()  # the probe counts from the last round stored
        probe_cluster(cluster)
        cluster.refresh_from_db()
        if done(cluster) or time.monotonic() > deadline:
            return cluster
        time.sleep(0.5)


def test_stats_are_taken_for_the_panels_containers_only_and_restarts_count_real_restarts(docker_client, container_factory, http_app_images, db):
    from metrics.models import Series

    project = f"t{uuid.uuid4().hex[:8]}"
    ours = container_factory(http_app_images["1"], labels={"filrouge.project": project, "filrouge.service": "web"})
    other = container_factory(http_app_images["1"])
    cluster = Cluster.objects.create(name=f"probe-{project}", kind="docker", endpoint="unix:///var/run/docker.sock")

    first = probe_cluster(cluster)
    cluster.refresh_from_db()
    rows = {row["name"]: row for row in cluster.observed["containers"]}
    assert "stats" in rows[ours.name] and "stats" not in rows[other.name]
    assert first["stats_calls"] == sum(1 for row in rows.values() if row["panel"] and row["state"] == "running")
    assert rows[ours.name]["restarts"] == 0

    docker_client.api.restart(ours.id, timeout=1)
    docker_client.api.restart(ours.id, timeout=1)
    cluster = probe_until(cluster, lambda c: next(row for row in c.observed["containers"] if row["name"] == ours.name)["restarts"] >= 2)

    row = next(row for row in cluster.observed["containers"] if row["name"] == ours.name)
    assert row["restarts"] == 2
    series = Series.objects.get(name="filrouge_container_restarts", labels__container=ours.name)
    assert series.last_value == 2 and series.object_id == cluster.pk
    assert not Series.objects.filter(name="filrouge_container_restarts", labels__container=other.name).exists()
    probe_cluster(cluster)  # no new start: the count stays
    series.refresh_from_db()
    assert series.last_value == 2


@pytest.mark.worker
def test_the_probe_times_each_services_health_check_and_counts_its_restarts(worker, bob, docker_client, pushed_images, project):
    from metrics.models import Series

    cluster = Cluster.objects.create(name="probe-health", kind="docker", endpoint="unix:///var/run/docker.sock")
    service = make_service(cluster, project, image=pushed_images["repository"], tag="1", replicas=1,
                           health_check={"type": "http", "port": 8080, "path": "/"})
    assert_succeeded(releases.deploy(service, bob)[1])

    probe_cluster(cluster)

    latency = Series.objects.get(name="filrouge_service_health_check_seconds", object_type="service", object_id=service.pk)
    up = Series.objects.get(name="filrouge_service_health_check_up", object_type="service", object_id=service.pk)
    assert 0 < latency.last_value < 2 and up.last_value == 1
    assert latency.labels == {"service": service.name, "project": project}

    [container] = docker_client.api.containers(filters={"label": [f"filrouge.project={project}"]})
    docker_client.api.pause(container["Id"])  # it stops answering: the check times out
    try:
        with override_settings(METRICS_HEALTH_CHECK_TIMEOUT=1):
            cluster.refresh_from_db()
            probe_cluster(cluster)
    finally:
        docker_client.api.unpause(container["Id"])
    latency.refresh_from_db()
    up.refresh_from_db()
    assert up.last_value == 0 and latency.last_value >= 1
    service.refresh_from_db()
    assert service.observed["health_check"] == {"up": False, "seconds": latency.last_value, "reason": "no answer within 1 s"}

    docker_client.api.restart(container["Id"], timeout=1)
    probe_until(cluster, lambda c: (Series.objects.filter(name="filrouge_service_restarts", object_id=service.pk).values_list("last_value", flat=True).first() or 0) >= 1)
    restarts = Series.objects.get(name="filrouge_service_restarts", object_type="service", object_id=service.pk)
    assert restarts.last_value == 1
