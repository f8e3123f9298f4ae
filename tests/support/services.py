"""Deciding whether a real service can be used, and starting the Docker engine.

Why: a developer's laptop may lack a tool (then the tests that need it are skipped with
a reason that says what to install), but CI must never silently skip the integration
tests, so with CI=true the same missing tool is a failure. `require` is the one place
that makes that choice; every fixture calls it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

DOCKERD_LOG = "/tmp/filrouge-test-dockerd.log"


def in_ci() -> bool:
    """True when running under CI (env CI=true), where nothing may be skipped."""
    return os.environ.get("CI", "").strip().lower() == "true"


def require(condition: object, reason: str) -> None:
    """Skip the current test when `condition` is false, or fail it under CI=true.

    Usable from tests and fixtures alike. The reason should say what is missing and how
    to get it, e.g. "docker-registry is not installed (apt-get install docker-registry)".
    """
    if condition:
        return
    if in_ci():
        pytest.fail(f"required for this test under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def have_tool(name: str) -> bool:
    """True when `name` is an executable on PATH or in the sbin directories."""
    return tool_path(name) is not None


def tool_path(name: str) -> str | None:
    """Full path of a program, looking in the sbin dirs too (PATH may lack them)."""
    extra = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])
    return shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + extra)


def is_root() -> bool:
    return os.geteuid() == 0


def _docker_client(timeout: int = 10):
    import docker  # imported lazily: the SDK is only needed by Docker tests

    return docker.from_env(timeout=timeout)


def docker_available() -> bool:
    """True when a Docker engine answers a ping on the configured socket."""
    try:
        client = _docker_client(timeout=5)
    except Exception:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


def ensure_dockerd(timeout: float = 90) -> None:
    """Make sure a Docker engine is running; start `dockerd` if it is installed but down.

    The daemon is left running afterwards (it is machine state, like PostgreSQL), with
    its log in /tmp/filrouge-test-dockerd.log. Skips (fails under CI) when neither a
    running engine nor a `dockerd` binary is there, or when we are not root.
    """
    try:
        import docker  # noqa: F401
    except ImportError:
        require(False, "the docker Python SDK is not installed (pip install docker)")
    if docker_available():
        return
    dockerd = tool_path("dockerd")
    require(dockerd, "Docker is not running and dockerd is not installed (apt-get install docker.io)")
    require(is_root(), "Docker is not running and only root can start dockerd")
    with open(DOCKERD_LOG, "ab") as log:
        subprocess.Popen(
            [dockerd],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # outlives the test run, like a system service
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if docker_available():
            return
        time.sleep(0.25)
    raise TimeoutError(f"dockerd did not answer within {timeout}s; see {DOCKERD_LOG}")
