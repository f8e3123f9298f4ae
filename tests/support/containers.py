"""Labelled test containers and their clean-up.

Why: several test runs (parallel worktrees, CI) share one Docker engine. Every container
the test support starts carries `filrouge.test=1` (so a person can find and remove
leftovers with `docker rm -f $(docker ps -aq -f label=filrouge.test=1)`) and a label with
this run's id, so that the end-of-session sweep removes only this run's containers and
never another run's.
"""

from __future__ import annotations

import uuid

TEST_LABEL = "filrouge.test"
RUN_LABEL = "filrouge.test.run"
RUN_ID = uuid.uuid4().hex[:12]


def test_labels() -> dict[str, str]:
    """The labels every test container gets."""
    return {TEST_LABEL: "1", RUN_LABEL: RUN_ID}


def unique_name(prefix: str) -> str:
    """A container name that cannot collide with another run's."""
    return f"{prefix}-{RUN_ID[:6]}-{uuid.uuid4().hex[:6]}"


def run_test_container(client, image: str, name_prefix: str = "filrouge-test", **kwargs):
    """`client.containers.run(detach=True)` with the test labels and a unique name.

    Ports given as `{"8080/tcp": ("127.0.0.1",)}` are published on 127.0.0.1 at a port
    Docker picks, which avoids races between choosing a free port and binding it; read it
    back with `published_port`.
    """
    labels = {**kwargs.pop("labels", {}), **test_labels()}
    return client.containers.run(
        image, detach=True, name=unique_name(name_prefix), labels=labels, **kwargs
    )


def published_port(container, container_port: str) -> int:
    """The 127.0.0.1 host port published for e.g. "8080/tcp"."""
    container.reload()
    bindings = container.attrs["NetworkSettings"]["Ports"].get(container_port) or []
    for binding in bindings:
        if binding.get("HostIp") in ("127.0.0.1", "") and binding.get("HostPort"):
            return int(binding["HostPort"])
    raise RuntimeError(f"{container.name} publishes no host port for {container_port}")


def remove_container(container) -> None:
    """Force-remove a container (with its anonymous volumes); gone already is fine."""
    import docker.errors

    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:  # "removal already in progress"
        if "already in progress" not in str(exc):
            raise


def remove_run_containers(client, run_id: str = RUN_ID) -> int:
    """Remove every container this test run labelled; returns how many."""
    containers = client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
    for container in containers:
        remove_container(container)
    return len(containers)
