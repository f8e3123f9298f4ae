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


def run_now(user, kind_name="recipe-run", **params):
    """Run a job kind in this process (as `manage.py run_recipe` does) and return the finished Job."""
    from panel.jobs.kinds import get_kind
    from panel.jobs.models import Job
    from panel.jobs.runner import execute

    kind = get_kind(kind_name)
    cleaned = kind.validate(params, context={"user": user})
    job = Job.objects.create(kind=kind.name, queue=kind.queue, params=cleaned, timeout=kind.timeout, user=user)
    execute(job.pk)
    job.refresh_from_db()
    return job


def job_text(job):
    from panel.jobs.models import JobEvent

    return "\n".join(f"[{e.host}] {e.task}: {e.outcome} {e.text}" for e in JobEvent.objects.filter(job=job).order_by("seq"))


def debian_server(host, name="debian01", user="root", **fields):
    """A Server for a Debian test container, with the container's key pair as its credential."""
    credential = key_credential(host.client_private_key, name=f"{name}-key")
    return Server.objects.create(name=name, address=host.host, port=host.port, user=user, credential=credential, **fields)
