"""Helpers for the Kubernetes tests; `kube_target` itself lives in tests/support/kube.py."""

import threading
import time

import pytest


class RecordingContext:
    """What follow_rollout and the backend write through, kept in memory with timestamps."""

    def __init__(self):
        self.lines = []  # (monotonic time, host, task, text)
        self.progress_calls = []
        self.secrets = []
        self._lock = threading.Lock()

    def line(self, text, host="", task="", outcome=""):
        with self._lock:
            self.lines.append((time.monotonic(), host, task, str(text)))

    def ok(self, text, **kw):
        self.line(text, **kw)

    changed = failed = skipped = ok

    def progress(self, done, total=None):
        self.progress_calls.append((done, total))

    def add_secret(self, value):
        self.secrets.append(value)

    def check_cancelled(self):
        pass

    @property
    def text(self):
        return "\n".join(line[3] for line in self.lines)


@pytest.fixture
def recording_ctx():
    return RecordingContext()


def deployment_manifest(name, image, replicas=2, labels=None, command=None, progress_deadline=None):
    labels = labels or {"app": name}
    container = {"name": "app", "image": image, "ports": [{"containerPort": 8080}]}
    if command:
        container["command"] = command
    spec = {"replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}
    if progress_deadline:
        spec["progressDeadlineSeconds"] = progress_deadline
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels}, "spec": spec}


def split_image(reference):
    """("repo/app", "tag") of "repo/app:tag" (a registry port is not a tag)."""
    repository, _, tag = reference.rpartition(":")
    if "/" in tag or not repository:
        return reference, "latest"
    return repository, tag


def kube_service(kube_target, name="web", image=None, **spec):
    """A Service on the test cluster, in the test namespace (not deployed)."""
    from deployments.models import Service
    from deployments.spec import normalize_spec

    repository, tag = split_image(image or kube_target.image("1"))
    spec.setdefault("replicas", 2)
    spec.setdefault("ports", [{"container": 8080}])
    spec.setdefault("update", {"parallelism": 1, "monitor": 3})
    return Service.objects.create(name=name, cluster=kube_target.cluster, project=kube_target.namespace,
                                  spec=normalize_spec({"image": repository, "tag": tag, **spec}))


def run_job(job):
    """Run a started job in this process, as the worker would, and return it finished."""
    from panel.jobs.runner import execute

    execute(job.pk)
    job.refresh_from_db()
    return job


def job_text(job):
    from panel.jobs.models import JobEvent

    return "\n".join(f"[{e.host}] {e.task}: {e.text}" for e in JobEvent.objects.filter(job=job).order_by("seq"))


def succeeded(job):
    job = run_job(job)
    assert job.status == "succeeded", f"{job.kind} ended {job.status}: {job.error}\n{job_text(job)}"
    return job


def failed(job):
    job = run_job(job)
    assert job.status == "failed", f"{job.kind} ended {job.status}: {job.error}\n{job_text(job)}"
    return job


def deploy(service, user, **kwargs):
    from deployments import releases

    return releases.deploy(service, user, **kwargs)[1]


def kubeconfig_cluster(kubeconfig_text, name=None):
    """A saved kubernetes Cluster using this kubeconfig (for fault tests)."""
    import uuid

    from clusters.models import Cluster, Credential

    suffix = name or uuid.uuid4().hex[:8]
    credential = Credential(name=f"kc-{suffix}", kind="kubeconfig")
    credential.set_secret({"kubeconfig": kubeconfig_text})
    credential.save()
    return Cluster.objects.create(name=f"kube-{suffix}", kind="kubernetes", credential=credential)


def token_cluster(endpoint, token, ca_pem=None, namespace="default"):
    import uuid

    from clusters.models import Cluster, Credential

    suffix = uuid.uuid4().hex[:8]
    credential = Credential(name=f"tok-{suffix}", kind="kube-token")
    credential.set_secret({"token": token, "ca_cert": ca_pem or ""})
    credential.save()
    return Cluster.objects.create(name=f"kube-{suffix}", kind="kubernetes", endpoint=endpoint, credential=credential, default_namespace=namespace)


def with_token(kubeconfig_text, token):
    """The same kubeconfig with another bearer token."""
    import yaml

    config = yaml.safe_load(kubeconfig_text)
    for user in config["users"]:
        user["user"] = {"token": token}
    return yaml.safe_dump(config)


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
