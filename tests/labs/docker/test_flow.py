"""The lab job flow on the real Docker engine with the real Docker provider: launch, check with
full points, reset, destroy, expiry by the sweep, and a failed launch that leaves nothing behind."""

import textwrap
from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.models import Cluster
from labs.environments import class_start, launch
from labs.exercise_file import exercise_fields, parse_exercise
from labs.jobs import sweep_expired_environments
from labs.models import Course, Enrolment, Environment, EnvironmentState, Exercise
from panel.jobs.models import Job, Status
from panel.jobs.runner import execute
from tests.labs.docker.conftest import nothing_left

from tests.labs.jobhelpers import job_text, run_now

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]

EXERCISE = textwrap.dedent(
    """\
    slug: notes-web
    title: Serve the notes
    target: docker
    ttl: 1h
    quota: {cpu: 0.5, memory: 128Mi, ports: 1}
    start:
      ports: [web]
      images: [filrouge-lab/busybox:1]
      compose: |
        services:
          web:
            image: filrouge-lab/busybox:1
            command: ["sh", "-c", "mkdir -p /www && echo 'my notes' > /www/index.html && httpd -f -p 8080 -h /www"]
            ports: ["${PORT_WEB}:8080"]
    checks:
      - name: The web tier answers
        type: http
        points: 2
        hint: Publish the web service on the port named web.
        params: {port: web, path: /, status: 200, contains: notes}
      - name: The web container runs
        type: docker.container_running
        points: 1
        params: {service: web}
    """
)


@pytest.fixture
def lab(db, docker_client, carol, sam, dave):
    cluster = Cluster.objects.create(name="lab-docker", kind="docker", endpoint="unix:///var/run/docker.sock")
    course = Course.objects.create(title="Containers", slug="containers", code="CONTAINERS")
    course.teachers.add(carol)
    course.clusters.add(cluster)
    exercise = Exercise.objects.create(course=course, slug="notes-web", **exercise_fields(parse_exercise(EXERCISE, "notes-web.yaml")))
    Enrolment.objects.create(course=course, student=sam)
    Enrolment.objects.create(course=course, student=dave)
    yield exercise
    # Whatever a failing test left is removed through the provider, by label.
    for environment in Environment.objects.exclude(state=EnvironmentState.DESTROYED):
        run_now("lab-destroy", environment, None)


def run_job(job):
    execute(job.pk)
    job.refresh_from_db()
    return job


def test_a_student_launches_checks_with_full_points_resets_and_destroys(lab, sam, docker_client):
    environment, job = launch(lab, sam, sam)

    run_job(job)
    environment.refresh_from_db()

    assert job.status == Status.SUCCEEDED, job_text(job)
    assert environment.state == EnvironmentState.READY and environment.cluster.name == "lab-docker"
    assert timedelta(minutes=59) < environment.expires_at - timezone.now() <= timedelta(hours=1)
    assert list(environment.access["ports"]) == ["web"] and environment.access["ports"]["web"] == environment.port_map()["web"]

    check = run_now("lab-check", environment, sam)

    assert check.status == Status.SUCCEEDED, job_text(check)
    attempt = environment.attempts.get()
    assert (attempt.score, attempt.max_score, environment.score) == (3, 3, 3)
    assert [(r["name"], r["passed"], r["earned"]) for r in attempt.results] == [("The web tier answers", True, 2), ("The web container runs", True, 1)]
    assert attempt.requested_by == sam and attempt.job == check and environment.last_checked_at

    reset = run_now("lab-reset", environment, sam)
    assert reset.status == Status.SUCCEEDED, job_text(reset)
    assert environment.state == EnvironmentState.READY and environment.score is None

    destroy = run_now("lab-destroy", environment, sam)
    assert destroy.status == Status.SUCCEEDED, job_text(destroy)
    assert environment.state == EnvironmentState.DESTROYED and environment.access == {}
    assert environment.allocated_ports.count() == 0
    assert nothing_left(docker_client, environment)


def test_checks_fail_with_hints_when_the_work_is_not_there(lab, sam, docker_client):
    environment, job = launch(lab, sam, sam)
    run_job(job)
    environment.refresh_from_db()
    docker_client.containers.list(filters={"label": f"filrouge.env={environment.pk}"})[0].remove(force=True)

    check = run_now("lab-check", environment, sam)

    attempt = environment.attempts.get()
    assert check.status == Status.SUCCEEDED and attempt.score == 0
    assert all(not r["passed"] for r in attempt.results)
    assert attempt.results[0]["hint"] == "Publish the web service on the port named web."


def test_class_start_queues_one_launch_per_student_and_the_sweep_tears_expired_ones_down(lab, carol, sam, dave, docker_client, clean_redis):
    jobs, skipped = class_start(lab, carol)

    assert skipped == 0 and len(jobs) == 2
    assert sorted(Job.objects.get(pk=j.pk).target.owner.username for j in jobs) == ["dave", "sam"]
    for job in jobs:
        assert run_job(job).status == Status.SUCCEEDED, job_text(job)
    environments = list(Environment.objects.filter(exercise=lab))
    assert all(e.state == EnvironmentState.READY for e in environments)

    Environment.objects.filter(owner=sam).update(expires_at=timezone.now() - timedelta(seconds=1))
    queued = sweep_expired_environments()

    assert len(queued) == 1
    teardown = run_job(Job.objects.get(pk=queued[0]))
    expired = Environment.objects.get(owner=sam)
    assert teardown.status == Status.SUCCEEDED and expired.state == EnvironmentState.DESTROYED
    assert nothing_left(docker_client, expired)
    assert Environment.objects.get(owner=dave).state == EnvironmentState.READY


def test_a_launch_the_guard_refuses_fails_and_leaves_nothing_behind(lab, sam, docker_client):
    lab.start = {**lab.start, "compose": lab.start["compose"].replace("image: filrouge-lab/busybox:1", "image: filrouge-lab/busybox:1\n    privileged: true")}
    lab.save()
    environment, job = launch(lab, sam, sam)

    run_job(job)
    environment.refresh_from_db()

    assert job.status == Status.FAILED and job.error.startswith("This exercise cannot start yet: the lab is not set up for it.")
    assert environment.state == EnvironmentState.FAILED and environment.error == job.error and "privileged" in environment.error_detail
    assert nothing_left(docker_client, environment) and environment.allocated_ports.count() == 0
    assert "removed what was half-created" in job_text(job)


def test_a_teardown_that_fails_is_shown_then_retried_by_the_sweep(lab, sam, docker_client, clean_redis):
    environment, job = launch(lab, sam, sam)
    run_job(job)
    cluster = lab.course.clusters.get()
    real_endpoint = cluster.endpoint
    Cluster.objects.filter(pk=cluster.pk).update(endpoint="unix:///run/filrouge-test-no-such-engine.sock")
    Environment.objects.filter(pk=environment.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    failed = run_job(Job.objects.get(pk=sweep_expired_environments()[0]))
    environment.refresh_from_db()

    assert failed.status == Status.FAILED and failed.error.startswith("Teardown failed, retried automatically")
    assert environment.state == EnvironmentState.DESTROYING and environment.error_detail == failed.error
    assert environment.error == "Removing the environment failed; the panel tries again by itself."
    assert sweep_expired_environments() == []  # not hammered: retried a minute later
    Job.objects.filter(pk=failed.pk).update(finished_at=timezone.now() - timedelta(minutes=2))
    Cluster.objects.filter(pk=cluster.pk).update(endpoint=real_endpoint)

    retried = run_job(Job.objects.get(pk=sweep_expired_environments()[0]))
    environment.refresh_from_db()

    assert retried.status == Status.SUCCEEDED, job_text(retried)
    assert environment.state == EnvironmentState.DESTROYED and environment.error == environment.error_detail == ""
    assert nothing_left(docker_client, environment)


@pytest.mark.worker
def test_the_scheduler_and_a_worker_tear_an_expired_environment_down_within_a_minute(lab, sam, docker_client, clean_redis, tmp_path):
    from tests.fixtures.workers import start_scheduler, start_worker
    from tests.support.ports import wait_until

    environment, job = launch(lab, sam, sam)
    run_job(job)
    assert not nothing_left(docker_client, environment)
    worker = start_worker(tmp_path)
    scheduler = start_scheduler(tmp_path, FILROUGE_LABS_EXPIRY_SWEEP_INTERVAL=2)
    try:
        Environment.objects.filter(pk=environment.pk).update(expires_at=timezone.now())

        def gone():
            environment.refresh_from_db()
            return environment.state == EnvironmentState.DESTROYED

        wait_until(gone, timeout=60, message="the expired environment to be destroyed")
    finally:
        scheduler.stop()
        worker.stop()
    assert nothing_left(docker_client, environment) and environment.allocated_ports.count() == 0
    teardown = Job.objects.get(kind="lab-destroy")
    assert teardown.params == {"reason": "expired"} and teardown.user is None
    assert teardown.worker_name.startswith("test-worker"), "run by the worker process, queued by the scheduler"
