"""Docker lab fixtures: a lab Docker host (the real local engine), a course, exercises, environments."""

from datetime import timedelta
import pytest
from django.utils import timezone

from clusters.models import Cluster
from labs.providers import docker_project
from labs.models import Course, Enrolment, Environment, EnvironmentState, Exercise
from panel.jobs.models import Job

TWO_TIER_START = {"ports": ["web"]}
QUOTA = {"cpu": 1.0, "memory": "256Mi", "ports": 1}


class RecordingContext:
    """A job context for calling providers directly: it keeps the lines so tests can read them."""

    def __init__(self):
        self.lines, self.secrets, self.progressed = [], [], []

    def line(self, text, host="", task="", outcome=None):
        self.lines.append(str(text))

    ok = changed = failed = skipped = line

    def progress(self, done, total=None):
        self.progressed.append((done, total))

    def add_secret(self, value):
        self.secrets.append(value)

    def check_cancelled(self):
        pass


@pytest.fixture
def ctx():
    return RecordingContext()


@pytest.fixture
def lab_host(db, docker_client):
    return Cluster.objects.create(name="lab-docker", kind="docker", endpoint="unix:///var/run/docker.sock")


@pytest.fixture
def lab_course(lab_host, carol):
    course = Course.objects.create(title="DevOps 101", slug="devops-101", code="DEVOPS-101")
    course.teachers.add(carol)
    course.clusters.add(lab_host)
    return course


@pytest.fixture
def docker_exercise(lab_course):
    return Exercise.objects.create(
        course=lab_course, slug="compose-two-tier", title="Two tiers", target="docker",
        quota=QUOTA, start=TWO_TIER_START, checks=[], ttl=timedelta(hours=1),
    )


@pytest.fixture
def make_environment(lab_host, docker_exercise, docker_client):
    made = []

    def make(owner, exercise=None):
        exercise = exercise or docker_exercise
        Enrolment.objects.get_or_create(course=exercise.course, student=owner)
        environment = Environment.objects.create(
            exercise=exercise, owner=owner, cluster=lab_host, state=EnvironmentState.LAUNCHING,
            expires_at=timezone.now() + exercise.ttl,
        )
        made.append(environment)
        return environment

    yield make
    # Whatever a test left behind is removed by label, even when it failed half-way.
    from clusters.drivers import docker as driver

    with driver.engine(Cluster.objects.get(pk=lab_host.pk)) as connection:
        for environment in made:
            docker_project.teardown(connection, environment)


def labelled(docker_client, environment):
    """Every container, network and volume carrying the environment's labels (by the test's own client)."""
    labels = environment.labels()
    filters = {"label": [f"filrouge.env={labels['filrouge.env']}", f"filrouge.lab={labels['filrouge.lab']}"]}
    return {
        "containers": [c.name for c in docker_client.containers.list(all=True, filters=filters)],
        "networks": [n.name for n in docker_client.networks.list(filters=filters)],
        "volumes": [v.name for v in docker_client.volumes.list(filters=filters)],
    }


def nothing_left(docker_client, environment):
    return labelled(docker_client, environment) == {"containers": [], "networks": [], "volumes": []}


@pytest.fixture
def ready_environment(make_environment, ctx):
    """An environment launched by the provider itself (network, ports, lab image), marked ready."""
    from labs.providers import provider_for

    def make(owner):
        environment = make_environment(owner)
        environment.access = provider_for(environment, ctx).create()
        environment.state = EnvironmentState.READY
        environment.ready_at = timezone.now()
        environment.save()
        return environment

    return make


def run_job_now(user, kind_name, target, **params):
    """Start a job as a view would (validation, permission) and run it in this process; the finished Job."""
    from panel.jobs.kinds import get_kind
    from panel.jobs.runner import execute

    kind = get_kind(kind_name)
    assert kind.allowed(user, target)
    cleaned = kind.validate(params, context={"user": user, "target": target})
    from django.contrib.contenttypes.models import ContentType

    job = Job.objects.create(
        kind=kind.name, queue=kind.queue, params=cleaned, timeout=kind.timeout, user=user,
        target_type=ContentType.objects.get_for_model(target), target_id=str(target.pk), target_repr=str(target),
    )
    execute(job.pk)
    job.refresh_from_db()
    return job


def job_text(job):
    from panel.jobs.models import JobEvent

    return "\n".join(f"{e.task}: {e.outcome} {e.text}" for e in JobEvent.objects.filter(job=job).order_by("seq"))
