"""Pinning host keys besides trust at first contact: from a known_hosts file (plain, hashed,
[host]:port), and from a scan job whose fingerprints an operator confirms, in the pages and
the API, against real sshd processes."""

import paramiko
import pytest

from clusters.drivers.base import HostKeyMismatch
from clusters.drivers.ssh import SshConnection, fingerprint
from clusters.inventory.known_hosts import KnownHostsError, parse_known_hosts, plan_pins
from clusters.inventory.targets import build_target
from clusters.models import Server
from panel.audit.models import AuditEvent
from panel.jobs.models import Job
from panel.jobs.runner import execute
from tests.clusters.conftest import fleet_servers, job_text, key_credential
from tests.fixtures.actors import api_client, logged_in
from tests.support.keys import generate_keypair

pytestmark = [pytest.mark.ssh, pytest.mark.django_db(transaction=True)]


def key_of(member):
    return " ".join(member.host_public_key.split()[:2])


def other_key():
    return f"ssh-ed25519 {paramiko.Ed25519Key.from_private_key(__import__('io').StringIO(generate_keypair()[0])).get_base64()}"


def connects(server):
    server.refresh_from_db()
    with SshConnection(build_target(server)).connect() as connection:
        return connection.run("echo ok").stdout.strip() == "ok"


def test_known_hosts_lines_are_read_plain_hashed_and_with_a_port_and_bad_lines_named():
    key = other_key()
    hashed = paramiko.HostKeys.hash_host("[10.0.0.7]:2222")
    text = f"# a comment\nweb01,10.0.0.5 {key}\n{hashed} {key}\n@cert-authority *.example.org {key}\n\n"
    entries, warnings = parse_known_hosts(text)
    assert [entry.line for entry in entries] == [2, 3]
    assert entries[0].matches("10.0.0.5") and entries[1].matches("[10.0.0.7]:2222") and not entries[1].matches("10.0.0.7")
    assert warnings == ["known_hosts, line 4: @cert-authority entries are not pinned (only plain host keys are)."]
    with pytest.raises(KnownHostsError) as error:
        parse_known_hosts(f"web01 {key}\nweb02 ssh-ed25519 not-base64!\nweb03\nweb04 ssh-dss AAAA\n")
    assert error.value.problems == [
        "known_hosts, line 2: the ssh-ed25519 key is not valid base64 key data.",
        "known_hosts, line 3: expected `host[,host...] key-type base64-key`.",
        "known_hosts, line 4: unknown key type 'ssh-dss'.",
    ]


def test_an_imported_known_hosts_file_pins_the_keys_it_names_and_a_wrong_one_is_then_refused(sshd_fleet_factory, bob):
    fleet = sshd_fleet_factory(3)
    servers = fleet_servers(fleet, key_credential(fleet.client_private_key))
    first, second, third = fleet.hosts
    hashed = paramiko.HostKeys.hash_host(f"[127.0.0.1]:{second.port}")
    text = (f"[127.0.0.1]:{first.port} {key_of(first)}\n"
            f"{hashed} {key_of(second)}\n"
            f"[127.0.0.1]:{third.port} {other_key()}\n"  # not what that host has: pinning it must lock us out
            "unrelated.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    client = logged_in(bob)

    preview = client.post("/inventory/servers/known-hosts/", {"text": text})
    page = preview.content.decode()
    assert preview.status_code == 200 and 'id="confirm-pins"' in page
    assert fingerprint(key_of(first)) in page and fingerprint(key_of(second)) in page
    assert Server.objects.exclude(pinned_host_key="").count() == 0

    confirmed = client.post("/inventory/servers/known-hosts/", {"text": text, "confirm": "1"})
    assert confirmed.status_code == 302
    assert [Server.objects.get(pk=s.pk).pinned_host_key for s in servers[:2]] == [key_of(first), key_of(second)]
    assert connects(servers[0]) and connects(servers[1])
    with pytest.raises(HostKeyMismatch):
        connects(servers[2])
    assert AuditEvent.objects.filter(message__contains="imported from known_hosts").count() == 3

    again = plan_pins(parse_known_hosts(text)[0], Server.objects.all())
    assert {row["server"].name: row["action"] for row in again} == {"host00": "unchanged", "host01": "unchanged", "host02": "unchanged"}


def test_the_api_previews_and_pins_from_known_hosts_and_refuses_bad_lines(sshd_fleet_factory, bob, charlie):
    fleet = sshd_fleet_factory(1)
    server = fleet_servers(fleet, key_credential(fleet.client_private_key))[0]
    Server.objects.filter(pk=server.pk).update(pinned_host_key=other_key())
    text = f"[127.0.0.1]:{fleet.hosts[0].port} {key_of(fleet.hosts[0])}\n"
    api = api_client(bob)

    dry = api.post("/api/servers/known-hosts/", {"known_hosts": text, "dry_run": True}, format="json")
    assert dry.status_code == 200, dry.content
    assert dry.json()["servers"][0]["action"] == "replace" and dry.json()["servers"][0]["fingerprint"] == fingerprint(key_of(fleet.hosts[0]))
    with pytest.raises(HostKeyMismatch):
        connects(server)
    done = api.post("/api/servers/known-hosts/", {"known_hosts": text}, format="json")
    assert done.status_code == 200 and connects(server)
    bad = api.post("/api/servers/known-hosts/", {"known_hosts": "web01 ssh-ed25519\n"}, format="json")
    assert bad.status_code == 400 and bad.json()["known_hosts"] == ["known_hosts, line 1: expected `host[,host...] key-type base64-key`."]
    assert api_client(charlie).post("/api/servers/known-hosts/", {"known_hosts": text}, format="json").status_code == 403


def test_a_scan_shows_the_offered_fingerprints_and_confirming_pins_exactly_that_key(sshd_fleet_factory, bob):
    fleet = sshd_fleet_factory(1)
    server = fleet_servers(fleet, key_credential(fleet.client_private_key))[0]
    client = logged_in(bob)

    started = client.post(f"/inventory/servers/{server.pk}/scan-host-keys/")
    job = Job.objects.get(kind="server-scan-host-keys")
    assert started.status_code == 302 and job.target == server
    execute(job.pk)  # what the worker does
    job.refresh_from_db()
    offered = key_of(fleet.hosts[0])
    assert job.status == "succeeded", job.error
    assert job.result["keys"] == [{"key": offered, "type": "ssh-ed25519", "fingerprint": fingerprint(offered), "pinned": False}]
    assert f"ssh-ed25519 {fingerprint(offered)} (not pinned)" in job_text(job)
    assert Server.objects.get(pk=server.pk).pinned_host_key == ""  # a scan never pins by itself

    page = client.get(f"/inventory/servers/{server.pk}/").content.decode()
    assert f'data-fingerprint="{fingerprint(offered)}"' in page

    refused = client.post(f"/inventory/servers/{server.pk}/pin-host-key/", {"job": job.pk, "fingerprint": fingerprint(other_key())})
    assert refused.status_code == 302 and Server.objects.get(pk=server.pk).pinned_host_key == ""
    pinned = client.post(f"/inventory/servers/{server.pk}/pin-host-key/", {"job": job.pk, "fingerprint": fingerprint(offered)})
    assert pinned.status_code == 302 and Server.objects.get(pk=server.pk).pinned_host_key == offered
    assert AuditEvent.objects.filter(message__contains=f"confirmed from scan job #{job.pk}").count() == 1
    assert connects(server)


def test_the_api_scans_and_pins_only_a_key_its_scan_found(sshd_fleet_factory, bob, charlie):
    fleet = sshd_fleet_factory(2)
    servers = fleet_servers(fleet, key_credential(fleet.client_private_key))
    api = api_client(bob)

    response = api.post(f"/api/servers/{servers[0].pk}/scan-host-keys/")
    assert response.status_code == 202 and response.json()["kind"] == "server-scan-host-keys"
    execute(response.json()["id"])
    job = Job.objects.get(pk=response.json()["id"])
    offered = job.result["keys"][0]["fingerprint"]

    other_server = api.post(f"/api/servers/{servers[1].pk}/pin-host-key/", {"job": job.pk, "fingerprint": offered}, format="json")
    assert other_server.status_code == 400 and Server.objects.get(pk=servers[1].pk).pinned_host_key == ""
    assert api_client(charlie).post(f"/api/servers/{servers[0].pk}/pin-host-key/", {"job": job.pk, "fingerprint": offered}, format="json").status_code == 403
    pinned = api.post(f"/api/servers/{servers[0].pk}/pin-host-key/", {"job": job.pk, "fingerprint": offered}, format="json")
    assert pinned.status_code == 200 and Server.objects.get(pk=servers[0].pk).pinned_host_key == key_of(fleet.hosts[0])
