"""Proof that each test-support helper starts a real, working service.

Run: python -m pytest tests/support -q -p tests.support.fixtures
"""

from __future__ import annotations

import socket
import time

import paramiko
import pytest
import requests

from .containers import published_port
from .images import build_http_app_images
from .keys import fingerprint_sha256, generate_keypair, paramiko_key
from .ports import free_port, wait_for_port, wait_until
from .registry import push_image
from .services import docker_available, require
from .sshclient import run, ssh_connect
from .sshd import TEST_USER


def health(container) -> str:
    container.reload()
    return container.attrs["State"].get("Health", {}).get("Status", "none")


def http_get(port: int, path: str = "/") -> requests.Response | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}{path}", timeout=2)
    except requests.RequestException:
        return None


# -- plain helpers --------------------------------------------------------------------

def test_require_skips_outside_ci_and_fails_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="tool X is missing"):
        require(False, "tool X is missing")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="tool X is missing"):
        require(False, "tool X is missing")
    require(True, "never shown")


def test_free_port_never_hands_out_the_same_port_twice():
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50


def test_wait_until_returns_the_value_and_times_out_with_the_message():
    start = time.monotonic()
    assert wait_until(lambda: time.monotonic() - start > 0.1 and "done", timeout=2) == "done"
    with pytest.raises(TimeoutError, match="never true"):
        wait_until(lambda: False, timeout=0.2, message="never true")


def test_wait_for_port_sees_a_listener_and_gives_up_on_a_closed_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        wait_for_port("127.0.0.1", server.getsockname()[1], timeout=2)
    with pytest.raises(TimeoutError):
        wait_for_port("127.0.0.1", free_port(), timeout=0.3)


def test_ensure_dockerd_starts_an_installed_but_stopped_daemon_and_waits_for_it(
    monkeypatch, tmp_path
):
    # The real daemon is shared with other test runs, so it is not stopped here: a
    # stand-in `dockerd` on PATH records that it was started, and the engine "answers"
    # once it ran. The real start path is the same code with the real binary.
    from . import services

    marker = tmp_path / "started"
    fake = tmp_path / "dockerd"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setattr(services, "docker_available", lambda: marker.exists())
    monkeypatch.setattr(services, "is_root", lambda: True)
    monkeypatch.setattr(services, "DOCKERD_LOG", str(tmp_path / "dockerd.log"))
    services.ensure_dockerd(timeout=10)
    assert marker.exists()


def test_ensure_dockerd_skips_with_a_reason_when_docker_is_not_installed(monkeypatch, tmp_path):
    from . import services

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(services, "docker_available", lambda: False)
    monkeypatch.setattr(services, "tool_path", lambda name: None)
    with pytest.raises(pytest.skip.Exception, match="apt-get install docker.io"):
        services.ensure_dockerd()


@pytest.mark.parametrize("kind", ["ed25519", "rsa", "ecdsa"])
def test_generated_keypairs_load_in_paramiko_and_match_their_public_line(kind):
    private, public = generate_keypair(kind, passphrase="pw")
    key = paramiko_key(private, passphrase="pw")
    assert f"{key.get_name()} {key.get_base64()}" == " ".join(public.split()[:2])
    assert key.fingerprint == fingerprint_sha256(public)


# -- Docker images --------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_the_docker_engine_answers(docker_client):
    assert docker_available()
    assert docker_client.ping()


@pytest.mark.timeout(120)
def test_http_app_v1_answers_version_1_on_its_published_port_and_becomes_healthy(
    http_app_images, container_factory
):
    app = container_factory(http_app_images["1"], ports={"8080/tcp": ("127.0.0.1",)})
    port = published_port(app, "8080/tcp")
    response = wait_until(lambda: http_get(port), timeout=20, message="app did not answer")
    assert response.status_code == 200
    assert "version 1" in response.text
    wait_until(lambda: health(app) == "healthy", timeout=30, message="v1 never became healthy")


@pytest.mark.timeout(120)
def test_http_app_v2_serves_version_2(http_app_images, container_factory):
    app = container_factory(http_app_images["plain"]["2"], ports={"8080/tcp": ("127.0.0.1",)})
    port = published_port(app, "8080/tcp")
    response = wait_until(lambda: http_get(port), timeout=20, message="app did not answer")
    assert "version 2" in response.text


@pytest.mark.timeout(120)
def test_http_app_v3_serves_its_page_but_becomes_unhealthy(http_app_images, container_factory):
    app = container_factory(http_app_images["3"], ports={"8080/tcp": ("127.0.0.1",)})
    port = published_port(app, "8080/tcp")
    assert "version 3" in wait_until(lambda: http_get(port), timeout=20).text
    wait_until(lambda: health(app) == "unhealthy", timeout=30, message="v3 never became unhealthy")


@pytest.mark.timeout(120)
def test_http_app_images_are_not_rebuilt_when_nothing_changed(docker_client, http_app_images):
    start = time.monotonic()
    again = build_http_app_images(docker_client)
    assert time.monotonic() - start < 2
    assert again == http_app_images
    ids = {docker_client.images.get(again[v]).id for v in ("1", "2", "3")}
    assert len(ids) == 3


# -- registry -------------------------------------------------------------------------

@pytest.mark.timeout(180)
def test_a_pushed_image_shows_in_the_catalog_and_pulls_back(
    docker_client, http_app_images, registry
):
    reference = push_image(docker_client, http_app_images["1"], registry, "lab/app", "1")
    assert reference == f"{registry.address}/lab/app:1"
    assert "lab/app" in registry.catalog()
    assert registry.tags("lab/app") == ["1"]

    original_id = docker_client.images.get(http_app_images["1"]).id
    docker_client.images.remove(reference)
    pulled = docker_client.images.pull(f"{registry.address}/lab/app", tag="1")
    assert pulled.id == original_id


@pytest.mark.timeout(180)
def test_a_registry_with_auth_refuses_a_wrong_password_and_accepts_the_right_one(
    docker_client, http_app_images, registry_with_auth
):
    user, password = registry_with_auth.credentials
    catalog_url = f"{registry_with_auth.url}/v2/_catalog"
    assert requests.get(catalog_url, timeout=5).status_code == 401
    assert requests.get(catalog_url, auth=(user, "wrong"), timeout=5).status_code == 401

    with pytest.raises(RuntimeError, match="(?i)unauthorized|authentication"):
        push_image(docker_client, http_app_images["2"], registry_with_auth, "lab/app", "2",
                   auth=(user, "wrong"))
    assert "lab/app" not in registry_with_auth.catalog()

    push_image(docker_client, http_app_images["2"], registry_with_auth, "lab/app", "2",
               auth=(user, password))
    assert "lab/app" in registry_with_auth.catalog(auth=(user, password))


# -- Debian hosts ---------------------------------------------------------------------

@pytest.mark.timeout(900)  # the first run on a machine runs debootstrap
def test_a_debian_host_accepts_a_paramiko_key_login_and_runs_apt_and_python(
    debian_host_factory,
):
    host = debian_host_factory()
    assert host.host == "127.0.0.1"
    client = ssh_connect(host.host, host.port, "root", private_key=host.client_private_key,
                         known_host_key=host.host_public_key_line())
    try:
        assert client.get_transport().get_remote_server_key().fingerprint == host.host_key_fingerprint()
        code, out, _ = run(client, "apt-get --version")
        assert code == 0 and out.startswith("apt ")
        code, out, _ = run(client, "python3 --version")
        assert code == 0 and out.startswith("Python 3.11")
        code, out, _ = run(client, "sudo --version && ip -V && cat /etc/debian_version")
        assert code == 0 and "\n12." in out
    finally:
        client.close()


@pytest.mark.timeout(900)
def test_debian_hosts_start_unhardened_with_their_own_host_keys(debian_host_factory):
    first, second = debian_host_factory(), debian_host_factory()
    assert first.port != second.port
    assert first.host_key_fingerprint() != second.host_key_fingerprint()
    # Password login for root works until a hardening recipe turns it off.
    client = ssh_connect(first.host, first.port, "root", password="filrouge")
    client.close()
    code, out = first.exec("grep -E '^(PermitRootLogin|PasswordAuthentication)' /etc/ssh/sshd_config")
    assert code == 0 and "PermitRootLogin yes" in out and "PasswordAuthentication yes" in out
    # A key that is not authorized is refused.
    other_private, _ = generate_keypair()
    with pytest.raises(paramiko.AuthenticationException):
        ssh_connect(second.host, second.port, "root", private_key=other_private)


# -- sshd fleets ----------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_an_sshd_fleet_of_30_all_accept_a_paramiko_login_as_the_test_user(sshd_fleet_factory):
    start = time.monotonic()
    fleet = sshd_fleet_factory(30)
    started_in = time.monotonic() - start
    assert len(fleet.hosts) == 30 and len({h.port for h in fleet.hosts}) == 30
    assert len({h.host_key_fingerprint for h in fleet.hosts}) == 30
    assert started_in < 5, f"30 sshd took {started_in:.2f}s to start"
    for host, port, fingerprint, public_line in fleet.hosts:
        client = ssh_connect(host, port, TEST_USER, private_key=fleet.client_private_key,
                             known_host_key=public_line)
        try:
            assert client.get_transport().get_remote_server_key().fingerprint == fingerprint
            code, out, _ = run(client, "id -un")
            assert (code, out.strip()) == (0, TEST_USER)
        finally:
            client.close()


@pytest.mark.timeout(60)
def test_a_stopped_fleet_host_refuses_connections_while_the_others_still_answer(
    sshd_fleet_factory,
):
    fleet = sshd_fleet_factory(3)
    fleet.stop_one(1)
    down = fleet.hosts[1]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((down.host, down.port), timeout=2).close()
    with pytest.raises(paramiko.ssh_exception.NoValidConnectionsError):
        ssh_connect(down.host, down.port, TEST_USER, private_key=fleet.client_private_key)
    ssh_connect(fleet.hosts[0].host, fleet.hosts[0].port, TEST_USER,
                private_key=fleet.client_private_key).close()
    fleet.start_one(1)
    ssh_connect(down.host, down.port, TEST_USER, private_key=fleet.client_private_key).close()


@pytest.mark.timeout(60)
def test_a_replaced_host_key_has_a_different_fingerprint_and_fails_known_hosts(
    sshd_fleet_factory,
):
    fleet = sshd_fleet_factory(2)
    before = fleet.hosts[0]
    after = fleet.replace_host_key(0)
    assert after.port == before.port
    assert after.host_key_fingerprint != before.host_key_fingerprint
    with pytest.raises(paramiko.BadHostKeyException):
        ssh_connect(before.host, before.port, TEST_USER, private_key=fleet.client_private_key,
                    known_host_key=before.host_public_key)
    client = ssh_connect(after.host, after.port, TEST_USER,
                         private_key=fleet.client_private_key, known_host_key=after.host_public_key)
    assert client.get_transport().get_remote_server_key().fingerprint == after.host_key_fingerprint
    client.close()
