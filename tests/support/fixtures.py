"""pytest plugin: fixtures that start real services and always clean up after them.

Load it with `-p tests.support.fixtures` (or `pytest_plugins = ["tests.support.fixtures"]`
in the top-level conftest.py). Why fixtures and not setup code in each test: images are
built once per session (and cached across sessions by their input hash), and every
container, process and temp dir a test starts is removed at teardown, even when the
test fails. Containers also carry this run's label, swept at session end as a last
resort. Every fixture that needs something missing calls `require`, so a laptop without
the tool skips with a reason and CI (CI=true) fails instead.
"""

from __future__ import annotations

import secrets

import pytest

from .containers import remove_container, remove_run_containers, run_test_container
from .images import build_debian_ssh_image, build_http_app_images, build_slow_app_image, start_debian_host
from .keys import generate_keypair
from .registry import start_registry
from .services import ensure_dockerd
from .sshd import SshdFleet, ensure_test_user


@pytest.fixture(scope="session")
def docker_client():
    """A docker SDK client for a running engine (dockerd is started if needed)."""
    ensure_dockerd()
    import docker

    client = docker.from_env(timeout=300)
    yield client
    remove_run_containers(client)
    client.close()


@pytest.fixture(scope="session")
def http_app_images(docker_client) -> dict:
    """{"1": tag, "2": tag, "3": tag, "plain": {...}, "repository": ...}; see images.py."""
    return build_http_app_images(docker_client)


@pytest.fixture(scope="session")
def slow_app_image(docker_client) -> str:
    """Tag of the app whose /cgi-bin/slow answers after 50 ms (see images.py)."""
    return build_slow_app_image(docker_client)


@pytest.fixture(scope="session")
def debian_ssh_image(docker_client) -> str:
    """Tag of the Debian sshd image (the first run on a machine takes about a minute)."""
    return build_debian_ssh_image(docker_client)


@pytest.fixture(scope="session")
def registry():
    """A registry without auth on 127.0.0.1:PORT."""
    reg = start_registry()
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def registry_with_auth():
    """A registry requiring htpasswd basic auth; `.credentials` is (user, password)."""
    reg = start_registry({"filrouge": secrets.token_urlsafe(12)})
    yield reg
    reg.stop()


@pytest.fixture
def container_factory(docker_client):
    """run(image, **kwargs) -> labelled container, removed when the test ends."""
    started = []

    def run(image: str, name_prefix: str = "filrouge-test", **kwargs):
        container = run_test_container(docker_client, image, name_prefix=name_prefix, **kwargs)
        started.append(container)
        return container

    yield run
    for container in started:
        remove_container(container)


@pytest.fixture
def sshd_fleet_factory():
    """make(count, user="filrouge-test", authorized_public_key=None) -> SshdFleet.

    Without a key, a fresh Ed25519 pair is made and its private half is on
    `fleet.client_private_key`. Every fleet is stopped when the test ends.
    """
    fleets: list[SshdFleet] = []

    def make(count: int = 1, user: str | None = None,
             authorized_public_key: str | None = None) -> SshdFleet:
        user = user or ensure_test_user().pw_name
        private = None
        if authorized_public_key is None:
            private, authorized_public_key = generate_keypair()
        fleet = SshdFleet(count, user, authorized_public_key)
        fleet.client_private_key = private
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.stop()


@pytest.fixture
def debian_host_factory(docker_client, debian_ssh_image):
    """make(authorized_key=None, name_prefix=...) -> DebianHost, removed at test end.

    Without a key, a fresh pair is made; its private half is on `host.client_private_key`.
    """
    hosts = []

    def make(authorized_key: str | None = None, name_prefix: str = "filrouge-test-debian"):
        private = None
        if authorized_key is None:
            private, authorized_key = generate_keypair()
        host = start_debian_host(docker_client, authorized_key, name_prefix, image=debian_ssh_image)
        host.client_private_key = private
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.stop()
