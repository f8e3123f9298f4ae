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
