"""A single-node Swarm on the test engine, left as it was found."""

import pytest

from clusters.models import Cluster


@pytest.fixture(scope="session")
def swarm_engine(docker_client):
    """Init a Swarm on 127.0.0.1 unless one is active; leave it at the end if we made it."""
    state = (docker_client.info().get("Swarm") or {}).get("LocalNodeState")
    created = state != "active"
    if created:
        docker_client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
    yield docker_client
    if created:
        docker_client.swarm.leave(force=True)


@pytest.fixture
def swarm_cluster(db, swarm_engine):
    return Cluster.objects.create(name="swarm-local", kind="swarm", endpoint="unix:///var/run/docker.sock")
