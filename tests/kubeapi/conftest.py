"""Make the stand-in fixtures available to the tests in this directory."""

from tests.kubeapi.fixtures import kube_client, kube_namespace, kube_standin  # noqa: F401
