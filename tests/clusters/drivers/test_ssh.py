"""The paramiko driver against real sshd processes: pinning, refusals, timeouts, quoting."""

import shlex
import uuid

import pytest

from clusters.drivers.base import AuthFailed, CommandTimeout, HostKeyMismatch, HostUnreachable
from clusters.drivers.ssh import SshConnection, SshTarget, fingerprint
from tests.support.keys import generate_keypair
from tests.support.ports import free_port

pytestmark = pytest.mark.ssh


def target_for(fleet, index=0, **overrides):
    member = fleet.hosts[index]
    values = {"name": f"host{index}", "address": member.host, "port": member.port, "user": fleet.user,
              "private_key": fleet.client_private_key, **overrides}
    return SshTarget(**values)


def test_first_contact_pins_the_key_the_host_presents(sshd_fleet_factory):
    fleet = sshd_fleet_factory(1)
    pinned = []
    target = target_for(fleet, on_first_contact=pinned.append)

    with SshConnection(target).connect() as connection:
        result = connection.run("id -un")

    assert result.ok and result.stdout.strip() == fleet.user
    assert pinned == [" ".join(fleet.hosts[0].host_public_key.split()[:2])]
    assert target.pinned_host_key == pinned[0]


def test_a_pinned_key_that_matches_connects_without_pinning_again(sshd_fleet_factory):
    fleet = sshd_fleet_factory(1)
    pinned = []
    target = target_for(fleet, pinned_host_key=fleet.hosts[0].host_public_key, on_first_contact=pinned.append)

    with SshConnection(target).connect() as connection:
        assert connection.run("true").ok
    assert pinned == []


def test_a_changed_host_key_is_refused_with_both_fingerprints(sshd_fleet_factory):
    fleet = sshd_fleet_factory(1)
    old = fleet.hosts[0].host_public_key
    new = fleet.replace_host_key(0).host_public_key
    refused = []
    target = target_for(fleet, pinned_host_key=" ".join(old.split()[:2]), on_key_refused=refused.append)

    with pytest.raises(HostKeyMismatch) as error:
        SshConnection(target).connect()

    message = str(error.value)
    assert fingerprint(old) in message and fingerprint(new) in message
    assert "accept the new key" in message
    assert refused == [" ".join(new.split()[:2])]


def test_an_unreachable_host_fails_with_where_and_what_to_check(sshd_fleet_factory):
    fleet = sshd_fleet_factory(1)
    fleet.stop_one(0)

    with pytest.raises(HostUnreachable) as error:
        SshConnection(target_for(fleet, connect_timeout=3)).connect()

    assert f"host0 ({fleet.user}@127.0.0.1:{fleet.hosts[0].port})" in str(error.value)
    assert "Is sshd running" in str(error.value)


def test_nothing_listening_and_a_silent_port_are_both_unreachable():
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts TCP but never says a word: the banner timeout applies
    try:
        for port, timeout in ((free_port(), 2), (silent.getsockname()[1], 1)):
            target = SshTarget(name="ghost", address="127.0.0.1", port=port, user="nobody", password="x", connect_timeout=timeout)
            with pytest.raises(HostUnreachable):
                SshConnection(target).connect()
    finally:
        silent.close()


def test_a_refused_key_is_an_auth_failure(sshd_fleet_factory):
    fleet = sshd_fleet_factory(1)
    stranger, _ = generate_keypair()

    with pytest.raises(AuthFailed) as error:
        SshConnection(target_for(fleet, private_key=stranger)).connect()

    assert "refused our key" in str(error.value) and "authorized_keys" in str(error.value)


def test_a_slow_command_is_stopped_at_its_timeout(sshd_fleet_factory):
    fleet = sshd_fleet_factory(1)

    with SshConnection(target_for(fleet)).connect() as connection:
        with pytest.raises(CommandTimeout) as error:
            connection.run("sleep 5", timeout=0.5)
        assert "did not finish within 0.5 s" in str(error.value)
        assert connection.run("echo still usable").stdout.strip() == "still usable"


def test_one_connection_serves_every_command(sshd_fleet_factory):
    fleet = sshd_fleet_factory(1)

    with SshConnection(target_for(fleet)).connect() as connection:
        transport = connection.client.get_transport()
        for number in range(5):
            assert connection.run(f"echo {number}").stdout.strip() == str(number)
        assert connection.client.get_transport() is transport and connection.round_trips == 5


def test_files_are_written_atomically_and_read_back_with_awkward_names(sshd_fleet_factory, shared_dir):
    fleet = sshd_fleet_factory(1)
    folder = shared_dir / f"d {uuid.uuid4().hex[:6]}"
    folder.mkdir()
    folder.chmod(0o777)
    path = str(folder / "it's $(touch pwned); a file")

    with SshConnection(target_for(fleet)).connect() as connection:
        assert connection.put_file(path, b"line one\n$HOME `id`\n", mode="0640").ok
        assert connection.get_file(path) == b"line one\n$HOME `id`\n"
        assert connection.get_file(path + ".missing") is None
        listing = connection.run(f"ls -A {shlex.quote(str(folder))}").stdout.split("\n")

    assert [name for name in listing if name] == ["it's $(touch pwned); a file"]
    assert oct((folder / "it's $(touch pwned); a file").stat().st_mode & 0o777) == "0o640"
