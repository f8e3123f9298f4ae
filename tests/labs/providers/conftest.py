"""Lab targets on real services: SSH hosts on the real Docker engine, namespaces on the Kubernetes stand-in.

Helpers build the course objects from the starter exercise files, give providers a real
JobContext (so the tests can read what a job would have written), and sweep whatever
this checkout's lab instance left on the engine.
"""

from pathlib import Path

import pytest
from django.conf import settings

from clusters.models import Cluster
from labs.checks.base import CHECKS
from labs.models import Course, Enrolment, Environment, Exercise
from panel.jobs.context import JobContext
from panel.jobs.models import Job, JobEvent
from tests.kubeapi.fixtures import kube_client, kube_namespace, kube_standin  # noqa: F401
from tests.support.debian import build_debian_base_image
from tests.support.keys import generate_keypair

STARTER = Path(__file__).resolve().parents[3] / "labs" / "starter"


def make_exercise(course, name):
    """The starter exercise file, parsed and validated as `load_course` does."""
    from labs.checks import load_all
    from labs.exercise_file import exercise_fields, parse_exercise

    load_all()
    text = (STARTER / f"{name}.yaml").read_text()
    parsed = parse_exercise(text, f"{name}.yaml")
    return Exercise.objects.create(course=course, slug=parsed["slug"], **exercise_fields(parsed))


def job_context(user, kind="lab-test"):
    job = Job.objects.create(kind=kind, user=user, timeout=600, status="running")
    return JobContext(job)


def job_text(ctx):
    ctx.flush()
    return "\n".join(JobEvent.objects.filter(job=ctx.job).order_by("seq").values_list("text", flat=True))


def run_checks(exercise, target):
    """[(check name, Outcome)] in the exercise's order, straight from the check functions."""
    from labs.checks import load_all

    load_all()
    return [(item["name"], CHECKS[item["type"]](item.get("params") or {}, target)) for item in exercise.checks]


@pytest.fixture
def lab_host_base(docker_client, settings, monkeypatch):
    """The debootstrap tree of the Debian test hosts, as the lab host base image."""
    base = build_debian_base_image(docker_client)
    settings.LABS_HOST_BASE_IMAGE = base
    monkeypatch.setenv("FILROUGE_LABS_HOST_BASE_IMAGE", base)  # for worker processes
    return base


@pytest.fixture
def lab_sweep(docker_client):
    """Remove every container this checkout's lab instance created, even when the test failed."""
    yield
    for container in docker_client.containers.list(all=True, filters={"label": f"filrouge.lab={settings.LABS_INSTANCE}"}):
        container.remove(force=True, v=True)


@pytest.fixture
def docker_host(db):
    return Cluster.objects.create(name="lab-docker-host", kind="docker", endpoint="")


@pytest.fixture
def student_keys():
    """Key pairs of sam (enrolled) and dave (another student)."""
    return {"sam": generate_keypair(), "dave": generate_keypair()}


@pytest.fixture
def ssh_course(db, carol, sam, dave, docker_host, student_keys):
    course = Course.objects.create(title="Linux servers", slug="linux-servers", code="LINUX-1")
    course.teachers.add(carol)
    course.clusters.add(docker_host)
    Enrolment.objects.create(course=course, student=sam, ssh_public_key=student_keys["sam"][1])
    Enrolment.objects.create(course=course, student=dave, ssh_public_key=student_keys["dave"][1])
    return course


@pytest.fixture
def ssh_environment(ssh_course, sam, docker_host):
    exercise = make_exercise(ssh_course, "ssh-harden-systemd")
    return Environment.objects.create(exercise=exercise, owner=sam, cluster=docker_host)


@pytest.fixture
def kube_course(db, carol, sam, dave, kube_target):
    course = Course.objects.create(title="Kubernetes", slug="kubernetes", code="KUBE-1")
    course.teachers.add(carol)
    course.clusters.add(kube_target.cluster)
    Enrolment.objects.create(course=course, student=sam)
    Enrolment.objects.create(course=course, student=dave)
    return course


@pytest.fixture
def lab_namespace_sweep(kube_target):
    """Delete every namespace this checkout's lab instance created, even when the test failed."""
    yield
    from kubernetes import client as k8s

    core = k8s.CoreV1Api(kube_target.api_client())
    for namespace in core.list_namespace(label_selector=f"filrouge.lab={settings.LABS_INSTANCE}").items:
        core.delete_namespace(namespace.metadata.name)
