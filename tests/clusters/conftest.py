"""Inventory test helpers: credentials from generated keys, servers for sshd fleets and Debian hosts."""

import pytest

from clusters.models import Credential, Group, Server
from tests.support.keys import generate_keypair


def key_credential(private_key, name="fleet-key", **secret):
    credential = Credential(name=name, kind="ssh-key")
    credential.set_secret({"private_key": private_key, **secret})
    credential.save()
    return credential


def fleet_servers(fleet, credential, prefix="host", group=None):
    """One Server per fleet member, named host00, host01..., logging in as the fleet's user."""
    servers = []
    for index, member in enumerate(fleet.hosts):
        server = Server.objects.create(name=f"{prefix}{index:02d}", address=member.host, port=member.port, user=fleet.user, credential=credential)
        if group is not None:
            server.groups.add(group)
        servers.append(server)
    return servers


@pytest.fixture
def keypair():
    return generate_keypair()


@pytest.fixture
def web_group(db):
    return Group.objects.create(name="web", variables={"app_port": 8080})


@pytest.fixture
def shared_dir():
    """A scratch folder the fleet's test user can write to (pytest's own tmp_path is root-only)."""
    import shutil
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="filrouge-inv-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)
