"""pytest plugin: a Kubernetes cluster saved in the panel, reachable, with a fresh namespace.

`kube_target` is what Kubernetes tests hold:

* `.cluster`: a saved clusters.models.Cluster of kind kubernetes, with a `kubeconfig`
  Credential, that the panel's driver can reach;
* `.api`: the KubeStandin (tests/kubeapi) or None on a real cluster;
* `.namespace`: a namespace made for this test (labelled, deleted afterwards);
* `.api_client()`: an admin kubernetes ApiClient (closed at teardown);
* `.image(version)`: an image reference that runs ("1", "2", "3");
  `.missing_image()`: one that cannot be pulled;
* `.require_standin(what)`: skip (even under CI) when a test needs a stand-in lever
  (kubelet_mode, failing_images, set_pod_phase, inject_fault...) on a real cluster.

By default it serves the session's stand-in (the `kube_standin` fixture). With
FILROUGE_TEST_KUBECONFIG=/path/to/kubeconfig (and optionally FILROUGE_TEST_KUBE_CONTEXT)
the same tests run against that real cluster; FILROUGE_TEST_KUBE_IMAGES may then name
images that exist for it, comma separated, for versions 1, 2 and 3 in that order
(default: the test app images pushed to 127.0.0.1:5000).

Autoscaling tests run on both too. `.cpu_bound_app()` is the image (and command) of an
app that burns CPU on every request and serves HTTP on 8080: FILROUGE_TEST_KUBE_HPA_IMAGE
(default the Kubernetes docs' `registry.k8s.io/hpa-example`, Apache + PHP on port 80,
run here with PHP's built-in server on 8080, FILROUGE_TEST_KUBE_HPA_COMMAND, shell words);
the stand-in's emulated app is modelled on it. `.autoscale_pace(settings)` gives the
timings: the stand-in's metrics window and HPA sync period are set to 1 s and the load
lasts seconds; a real cluster keeps its own (metrics-server's ~15 s resolution, the HPA's
15 s sync): the load lasts the exercise's two minutes and waits go up to a few minutes,
and a cluster that serves no metrics.k8s.io (no metrics-server) skips with that reason.
Under a network plugin that enforces NetworkPolicies, give the run the control plane's
addresses in FILROUGE_KUBE_APISERVER_CIDRS too, or the service proxy cannot reach lab pods.
"""

from __future__ import annotations

import os
import secrets
import time
import shlex
import uuid
from dataclasses import dataclass

import pytest

KUBECONFIG_ENV = "FILROUGE_TEST_KUBECONFIG"
CONTEXT_ENV = "FILROUGE_TEST_KUBE_CONTEXT"
IMAGES_ENV = "FILROUGE_TEST_KUBE_IMAGES"
TEST_LABEL = "filrouge.test"
HPA_IMAGE_ENV = "FILROUGE_TEST_KUBE_HPA_IMAGE"
HPA_COMMAND_ENV = "FILROUGE_TEST_KUBE_HPA_COMMAND"
DEFAULT_HPA_IMAGE = "registry.k8s.io/hpa-example"
# hpa-example is php:5-apache (Apache on 80) with an index.php that burns CPU and says "OK!";
# PHP's built-in server serves the same page on 8080, as the exercise's Service expects.
DEFAULT_HPA_COMMAND = "php -S 0.0.0.0:8080 -t /var/www/html"
STANDIN_IMAGES = ("registry.filrouge.test/httpapp:1", "registry.filrouge.test/httpapp:2", "registry.filrouge.test/httpapp:3")

__all__ = ["kube_target", "KubeTarget", "AutoscalePace", "real_kubeconfig_path", "both_credential_shapes", "kubeconfig_shape"]


@dataclass(frozen=True)
class AutoscalePace:
    """How long an autoscaling test loads and waits: seconds on the stand-in, a real cluster's pace otherwise."""

    load_seconds: int        # one load (the `kubernetes.autoscale` check's duration, a load-test job's)
    wait_seconds: float      # the longest wait for metrics or an HPA decision
    metrics_window: float    # metrics-server's resolution (the stand-in's lever)

# How a kubeconfig's user proves who it is: a bearer token, or a client certificate and
# key (what kubeadm's admin.conf holds). Tests marked with `both_credential_shapes` run
# once with each; on a real cluster, the shape its kubeconfig has runs, the other skips.
CREDENTIAL_SHAPES = ("token", "client-cert")
both_credential_shapes = pytest.mark.parametrize("kube_target", CREDENTIAL_SHAPES, indirect=True)


def kubeconfig_shape(kubeconfig_text, context=None):
    """"token", "client-cert" or "other" for the user of the (current or given) context."""
    import yaml

    config = yaml.safe_load(kubeconfig_text) or {}
    context_name = context or config.get("current-context")
    user_name = next((item.get("context", {}).get("user") for item in config.get("contexts") or [] if item.get("name") == context_name), None)
    user = next((item.get("user") or {} for item in config.get("users") or [] if item.get("name") == user_name), {})
    if user.get("token") or user.get("tokenFile"):
        return "token"
    if user.get("client-certificate-data") or user.get("client-certificate"):
        return "client-cert"
    return "other"


def real_kubeconfig_path():
    return os.environ.get(KUBECONFIG_ENV) or None


class KubeTarget:
    def __init__(self, cluster, api, namespace, kubeconfig_text, context=None):
        self.cluster = cluster
        self.api = api
        self.namespace = namespace
        self.kubeconfig_text = kubeconfig_text
        self.context = context
        self._clients = []

    @property
    def is_standin(self):
        return self.api is not None

    @property
    def credential_shape(self):
        return kubeconfig_shape(self.kubeconfig_text, self.context)

    def assert_no_secret_in(self, text):
        """Fail if any secret of the kubeconfig (token, client key as base64 or PEM) shows in `text`."""
        from clusters.inventory.credentials import kubeconfig_secret_values

        values = kubeconfig_secret_values(self.kubeconfig_text)
        if not values and self.credential_shape == "other":
            return  # a real cluster reached through an exec plugin or auth provider: nothing stored to leak
        assert values, "the kubeconfig has no token or client key to look for"
        leaked = [value[:12] + "..." for value in values if value in text]
        leaked += [line[:12] + "..." for value in values for line in value.splitlines() if len(line) >= 16 and "PRIVATE KEY" not in line and line in text]
        assert not leaked, f"kubeconfig secrets leaked: {leaked}"

    def api_client(self):
        """An admin ApiClient (the official client, from the same kubeconfig as the cluster)."""
        import yaml
        from kubernetes import client as k8s
        from kubernetes import config as kube_config

        configuration = k8s.Configuration()
        kube_config.load_kube_config_from_dict(yaml.safe_load(self.kubeconfig_text), context=self.context, client_configuration=configuration)
        api_client = k8s.ApiClient(configuration)
        self._clients.append(api_client)
        return api_client

    def image(self, version="1"):
        images = _configured_images() if not self.is_standin else STANDIN_IMAGES
        return images[int(version) - 1]

    def missing_image(self):
        """An image no node can pull (on the stand-in, its kubelet is told so)."""
        image = f"127.0.0.1:9/filrouge-missing/app-{uuid.uuid4().hex[:6]}:1"
        if self.api is not None:
            self.api.failing_images = [*self.api.failing_images, image]
        return image

    def limited_kubeconfig(self, rules, name="limited"):
        """Kubeconfig text for a new ServiceAccount of the test namespace bound to a Role with
        `rules` (list of {apiGroups, resources, verbs}); works on the stand-in and a real cluster."""
        import yaml
        from kubernetes import client as k8s

        api_client = self.api_client()
        core, rbac = k8s.CoreV1Api(api_client), k8s.RbacAuthorizationV1Api(api_client)
        namespace = self.namespace
        core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
        rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": rules})
        rbac.create_namespaced_role_binding(namespace, {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        })
        token = core.create_namespaced_service_account_token(name, namespace, {"spec": {"expirationSeconds": 3600}}).status.token
        config = yaml.safe_load(self.kubeconfig_text)
        current = self.context or config.get("current-context")
        context = next(item for item in config["contexts"] if item["name"] == current)
        user_name = context["context"]["user"]
        config["users"] = [{"name": user_name, "user": {"token": token}}]
        config["contexts"] = [context]
        config["current-context"] = current
        return yaml.safe_dump(config, sort_keys=False)

    def cpu_bound_app(self):
        """(image, command or None) of an app that burns CPU per request and serves HTTP on 8080."""
        image = os.environ.get(HPA_IMAGE_ENV, "").strip() or DEFAULT_HPA_IMAGE
        command = os.environ.get(HPA_COMMAND_ENV)
        if command is None:
            command = DEFAULT_HPA_COMMAND if image == DEFAULT_HPA_IMAGE else ""
        return image, (shlex.split(command) or None)

    def metrics_api_served(self):
        """Whether the cluster serves metrics.k8s.io/v1beta1 (metrics-server, or the stand-in's lever)."""
        from clusters.drivers.kubernetes import pod_metrics

        # 404: no APIService for the group; 503: one whose metrics-server does not answer
        return pod_metrics(self.api_client(), self.namespace) is not None

    def require_metrics_api(self):
        if not self.metrics_api_served():
            pytest.skip("the cluster serves no metrics.k8s.io (install metrics-server): the HPA has no CPU to scale on")

    def autoscale_pace(self, settings=None):
        """Timings for a test that loads a Service and watches an HPA (see AutoscalePace); on a
        real cluster, skip unless it serves metrics.k8s.io. `settings` (pytest-django's) gets
        LOADTEST_MAX_SECONDS = the load's length, so a check's or job's duration is capped there."""
        if self.is_standin:
            self.api.metrics_window = 1.0
            self.api.hpa_sync_period = 1.0
            pace = AutoscalePace(load_seconds=8, wait_seconds=30, metrics_window=1.0)
        else:
            self.require_metrics_api()
            pace = AutoscalePace(load_seconds=120, wait_seconds=240, metrics_window=15.0)
        if settings is not None:
            settings.LOADTEST_MAX_SECONDS = pace.load_seconds
        return pace

    def require_standin(self, what="a stand-in lever"):
        if self.api is None:
            pytest.skip(f"needs {what}, which only the Kubernetes stand-in offers (a real cluster is configured)")

    def wait_for(self, condition, timeout=30, interval=0.1, message="condition"):
        """Poll `condition()` until truthy (returns its value) or fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {message}")
            time.sleep(interval)

    def close(self):
        for api_client in self._clients:
            try:
                api_client.close()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass


def _configured_images():
    value = os.environ.get(IMAGES_ENV, "")
    images = [item.strip() for item in value.split(",") if item.strip()]
    defaults = ["127.0.0.1:5000/filrouge/httpapp:1", "127.0.0.1:5000/filrouge/httpapp:2", "127.0.0.1:5000/filrouge/httpapp:3"]
    return (images + defaults[len(images):])[:3]


def _save_cluster(kubeconfig_text, context, namespace):
    from clusters.models import Cluster, Credential

    suffix = uuid.uuid4().hex[:8]
    credential = Credential(name=f"kube-test-{suffix}", kind="kubeconfig")
    credential.set_secret({"kubeconfig": kubeconfig_text})
    credential.save()
    return Cluster.objects.create(name=f"kube-test-{suffix}", kind="kubernetes", endpoint="", credential=credential,
                                  context=context or "", default_namespace=namespace)


def _make_namespace(api_client):
    from kubernetes import client as k8s

    name = "t-" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))
    k8s.CoreV1Api(api_client).create_namespace({"metadata": {"name": name, "labels": {TEST_LABEL: "true", "app.kubernetes.io/managed-by": "filrouge-tests"}}})
    return name


def _delete_namespace(api_client, name):
    from kubernetes import client as k8s
    from kubernetes.client.rest import ApiException

    try:
        k8s.CoreV1Api(api_client).delete_namespace(name)
    except ApiException as err:
        if err.status != 404:
            raise


@pytest.fixture
def kube_target(request, db):
    shape = getattr(request, "param", None)  # "token" / "client-cert" under both_credential_shapes
    path = real_kubeconfig_path()
    if path:
        with open(path, encoding="utf-8") as handle:
            kubeconfig_text = handle.read()
        api, context = None, os.environ.get(CONTEXT_ENV) or None
        actual = kubeconfig_shape(kubeconfig_text, context)
        if shape and actual != shape:
            pytest.skip(f"the real cluster's kubeconfig logs in with a {actual} credential, not a {shape} one")
    else:
        api = request.getfixturevalue("kube_standin")
        api.reset_behaviour()
        kubeconfig_text, context = api.kubeconfig(client_cert=shape == "client-cert"), None
    target = KubeTarget(None, api, None, kubeconfig_text, context)
    admin = target.api_client()
    target.namespace = _make_namespace(admin)
    target.cluster = _save_cluster(kubeconfig_text, context, target.namespace)
    try:
        yield target
    finally:
        if api is not None:
            api.reset_behaviour()
        try:
            _delete_namespace(admin, target.namespace)
        finally:
            target.close()
