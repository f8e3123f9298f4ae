"""The Docker provider on the real engine: a project per student, labelled, and nothing left after destroy."""

import pytest
import requests

from labs.providers import docker_project
from labs.checks import load_all
from labs.checks.base import CHECKS, CheckTarget
from labs.compose.guard import guard_compose
from labs.providers.docker_images import BUSYBOX_IMAGE
from labs.ports import allocate_ports
from labs.providers import provider_for

from tests.labs.docker.conftest import labelled, nothing_left

pytestmark = pytest.mark.django_db(transaction=True)

WEB_AND_DATA = """
services:
  db:
    image: filrouge-lab/busybox:1
    command: ["sh", "-c", "mkdir -p /data && echo 'notes from the db' > /data/index.html && httpd -f -p 9000 -h /data"]
    volumes: ["db_data:/data"]
  web:
    image: filrouge-lab/busybox:1
    command: ["sh", "-c", "mkdir -p /www && until wget -q -O /www/index.html http://db:9000/; do sleep 0.2; done; httpd -f -p 8080 -h /www"]
    ports: ["${PORT_WEB}:8080"]
    depends_on: [db]
volumes:
  db_data: {}
"""


def test_it_creates_a_labelled_network_and_ports_then_destroy_leaves_nothing(sam, make_environment, ctx, docker_client):
    environment = make_environment(sam)
    provider = provider_for(environment, ctx)
    access = provider.create()
    name = docker_project.project_name(environment)
    assert access["docker"] == {"project": name, "network": name, "subnet": access["docker"]["subnet"]}
    assert access["docker"]["subnet"].endswith("/27")
    assert access["host"] == "127.0.0.1"
    assert list(access["ports"]) == ["web"] and 20000 <= access["ports"]["web"] <= 29999
    network = docker_client.networks.get(name)
    assert network.attrs["Labels"]["filrouge.env"] == str(environment.id)
    assert network.attrs["Labels"]["filrouge.owner"] == str(sam.id)
    assert provider.create()["ports"] == access["ports"], "a second create reuses the network and the ports"

    provider.destroy()
    assert nothing_left(docker_client, environment)
    assert environment.allocated_ports.count() == 0
    provider.destroy()  # safe twice
    assert nothing_left(docker_client, environment)


def test_it_gives_two_students_separate_networks_and_ports(sam, dave, make_environment, ctx):
    first, second = make_environment(sam), make_environment(dave)
    one, two = provider_for(first, ctx).create(), provider_for(second, ctx).create()
    assert one["docker"]["network"] != two["docker"]["network"]
    assert one["docker"]["subnet"] != two["docker"]["subnet"]
    assert one["ports"]["web"] != two["ports"]["web"]


def test_it_takes_another_port_when_the_engine_already_publishes_the_drawn_one(sam, make_environment, ctx, docker_client, settings, http_app_images):
    from tests.support.containers import run_test_container

    squatter = run_test_container(docker_client, http_app_images["1"], name_prefix="filrouge-test-squatter", ports={"8080/tcp": ("127.0.0.1", 0)})
    squatter.reload()
    busy = int(squatter.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])
    try:
        environment = make_environment(sam)
        settings.LABS_PORT_RANGE = (busy, busy)
        allocate_ports(environment, environment.cluster, ["web"])  # the database thinks it is free: it holds it
        settings.LABS_PORT_RANGE = (busy, busy + 1)
        access = provider_for(environment, ctx).create()
        assert access["ports"]["web"] == busy + 1
        assert any(f"port {busy} is already in use" in line for line in ctx.lines)
    finally:
        squatter.remove(force=True)


def test_it_runs_a_guarded_compose_with_limits_labels_and_no_privileges_then_removes_it_all(sam, make_environment, ctx, docker_client):
    environment = make_environment(sam)
    provider = provider_for(environment, ctx)
    environment.exercise.start = {"ports": ["web"], "images": [BUSYBOX_IMAGE]}
    access = provider.create()
    plan = guard_compose(WEB_AND_DATA, access["ports"], environment.exercise.quota)
    with provider.connect() as connection:
        docker_project.run_plan(connection, environment, plan, ctx=ctx)

    containers = {c.labels["filrouge.service"]: c for c in docker_client.containers.list(filters={"label": f"filrouge.env={environment.id}"})}
    assert set(containers) == {"db", "web"}
    for container in containers.values():
        host = container.attrs["HostConfig"]
        assert host["Privileged"] is False
        assert host["RestartPolicy"]["Name"] == "no"
        assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 128 * 1024 * 1024
        assert "no-new-privileges" in host["SecurityOpt"]
        assert container.labels["filrouge.lab"] == environment.labels()["filrouge.lab"]
        assert list(container.attrs["NetworkSettings"]["Networks"]) == [access["docker"]["network"]]
    binding = containers["web"].attrs["HostConfig"]["PortBindings"]["8080/tcp"][0]
    assert binding == {"HostIp": "127.0.0.1", "HostPort": str(access["ports"]["web"])}

    from tests.support.ports import wait_until

    url = f"http://127.0.0.1:{access['ports']['web']}/"
    wait_until(lambda: _answers(url, "notes from the db"), timeout=20, message=f"{url} never served the db's page")

    load_all()
    with provider.check_target() as target:
        assert isinstance(target, CheckTarget)
        assert CHECKS["http"]({"port": "web", "contains": "notes from the db"}, target).passed
        assert CHECKS["docker.container_running"]({"service": "db"}, target).passed
        assert CHECKS["docker.port_answers"]({"port": "web"}, target).passed
        mounted = CHECKS["docker.volume_mounted"]({"service": "db", "target": "/data"}, target)
        assert mounted.passed, mounted.detail
        missing = CHECKS["docker.volume_mounted"]({"service": "web", "target": "/data"}, target)
        assert not missing.passed and "nothing is mounted at /data in web" == missing.detail
        assert not CHECKS["docker.container_running"]({"service": "cache"}, target).passed

    assert labelled(docker_client, environment)["volumes"] == [docker_project.volume_name(environment, "db_data")]
    provider.destroy()
    assert nothing_left(docker_client, environment)


def _answers(url, text):
    try:
        return text in requests.get(url, timeout=2).text
    except requests.RequestException:
        return False


def test_a_reset_removes_the_students_containers_and_volumes_and_keeps_the_ports(sam, ready_environment, ctx, docker_client):
    from tests.labs.docker.conftest import run_job_now

    environment = ready_environment(sam)
    ports = dict(environment.access["ports"])
    assert run_job_now(sam, "lab-compose", environment, compose=WEB_AND_DATA).status == "succeeded"
    assert len(labelled(docker_client, environment)["containers"]) == 2

    access = provider_for(environment, ctx).reset()
    assert access["ports"] == ports
    left = labelled(docker_client, environment)
    assert left["containers"] == [] and left["volumes"] == [] and left["networks"] == [access["docker"]["network"]]


@pytest.mark.slow
def test_forty_projects_fit_although_the_engines_default_pools_hold_about_thirty_networks(docker_client, settings):
    """Each project takes a /27 of LABS_DOCKER_SUBNET_POOL instead of a /16 or /20 from the engine's default pools."""
    from types import SimpleNamespace

    from clusters.drivers import docker as driver
    from clusters.models import Cluster

    settings.LABS_INSTANCE = settings.LABS_INSTANCE + "-pool"
    environments = [
        SimpleNamespace(id=900000 + n, name=f"lab-{900000 + n}-pool", labels=lambda n=n: {
            "filrouge.lab": settings.LABS_INSTANCE, "filrouge.env": str(900000 + n), "filrouge.owner": "0", "filrouge.exercise": "pool"})
        for n in range(40)
    ]
    cluster = Cluster(name="pool", kind="docker", endpoint="unix:///var/run/docker.sock")
    subnets = []
    with driver.engine(cluster) as connection:
        try:
            for environment in environments:
                subnets.append(docker_project.ensure_network(connection, environment)["subnet"])
        finally:
            for environment in environments:
                docker_project.teardown(connection, environment)
    assert len(set(subnets)) == 40 and all(subnet.startswith("10.213.") and subnet.endswith("/27") for subnet in subnets)
    assert all(not docker_client.networks.list(filters={"label": f"filrouge.env={e.id}"}) for e in environments)


def test_the_exercises_start_compose_runs_at_launch_and_a_broken_one_fails_with_its_line(sam, dave, make_environment, ctx, docker_client):
    from labs.errors import LabSetupError

    environment = make_environment(sam)
    exercise = environment.exercise
    exercise.start = {"ports": ["web"], "compose": 'services:\n  legacy:\n    image: filrouge-lab/busybox:1\n    command: ["httpd", "-f", "-p", "8080", "-h", "/"]\n    ports: ["${PORT_WEB}:8080"]\n'}
    exercise.save(update_fields=["start"])
    provider_for(environment, ctx).create()
    running = docker_client.containers.list(filters={"label": [f"filrouge.env={environment.id}", "filrouge.service=legacy"]})
    assert len(running) == 1 and running[0].status == "running"

    exercise.start = {"ports": ["web"], "compose": "services:\n  bad:\n    image: filrouge-lab/busybox:1\n    privileged: true\n"}
    exercise.save(update_fields=["start"])
    other = make_environment(dave)
    with pytest.raises(LabSetupError) as caught:  # the exercise's fault, told to its teacher, not the student
        provider_for(other, ctx).create()
    assert "The exercise's start.compose cannot run" in str(caught.value) and "line 4: services.bad.privileged" in str(caught.value)
