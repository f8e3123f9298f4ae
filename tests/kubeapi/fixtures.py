"""pytest fixtures for the Kubernetes stand-in.

Use them from a conftest with ``from tests.kubeapi.fixtures import *`` (or
list this module in the root ``pytest_plugins``):

* ``kube_standin`` (session): one TLS stand-in for the whole run;
* ``kube_namespace``: a fresh namespace ``t-<random>`` created through the
  official client and deleted afterwards; it also resets the kubelet levers
  and pending faults so tests do not leak behaviour into each other;
* ``kube_client``: an admin ``kubernetes.client.ApiClient`` for the stand-in.
"""

from __future__ import annotations

import secrets

import pytest

from .standin import KubeStandin

__all__ = ["kube_standin", "kube_namespace", "kube_client"]


@pytest.fixture(scope="session")
def kube_standin():
    api = KubeStandin(tls=True)
    api.start()
    yield api
    api.stop()


@pytest.fixture
def kube_client(kube_standin):
    client = kube_standin.api_client()
    yield client
    client.close()


@pytest.fixture
def kube_namespace(kube_standin):
    from kubernetes import client as k8s
    from kubernetes.client.rest import ApiException

    kube_standin.reset_behaviour()
    name = "t-" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))
    api_client = kube_standin.api_client()
    core = k8s.CoreV1Api(api_client)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    kube_standin.reset_behaviour()
    try:
        core.delete_namespace(name)
    except ApiException as err:
        if err.status != 404:
            raise
    finally:
        api_client.close()
