"""End to end on the real Docker engine, with real workers: the teacher loads the starter pack,
a student launches the Compose exercise, works through the page they were given, checks, and
scores full points; expiry then leaves nothing labelled behind."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from labs import environments
from labs.models import Attempt, Course, Enrolment, Environment, EnvironmentState
from panel.jobs.models import Job, JobEvent, Status
from tests.fixtures.actors import logged_in
from tests.support.ports import wait_until

from tests.labs.docker.conftest import labelled, nothing_left

pytestmark = pytest.mark.django_db(transaction=True)

STARTER = Path(settings.BASE_DIR) / "labs" / "starter"
SOLUTION = (Path(__file__).parent / "data" / "two_tier_solution.yaml").read_text()


def finished(job, timeout=120):
    wait_until(lambda: Job.objects.get(pk=job.pk).status in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED), timeout=timeout, message=f"job #{job.pk} ({job.kind}) to finish")
    job.refresh_from_db()
    return job


def lines(job):
    return "\n".join(JobEvent.objects.filter(job=job).order_by("seq").values_list("text", flat=True))


@pytest.fixture
def starter_course(lab_host, carol, sam):
    call_command("load_course", str(STARTER), teacher="carol", cluster=[lab_host.name])
    course = Course.objects.get(slug="devops-starter")
    Enrolment.objects.create(course=course, student=sam)
    return course


@pytest.fixture
def cleanup_environments(docker_client):
    yield
    from clusters.drivers import docker as driver
    from labs.providers import docker_project

    for environment in Environment.objects.exclude(cluster=None).select_related("cluster", "owner", "exercise"):
        with driver.engine(environment.cluster) as connection:
            docker_project.teardown(connection, environment)


def test_a_student_launches_the_compose_exercise_works_through_the_page_and_scores_full_points(
    starter_course, sam, worker, docker_client, cleanup_environments
):
    exercise = starter_course.exercises.get(slug="compose-two-tier")
    assert exercise.max_score == 8

    environment, launch = environments.launch(exercise, sam, sam)
    launch = finished(launch)
    assert launch.status == Status.SUCCEEDED, lines(launch)
    assert launch.progress_done == launch.progress_total == 2
    environment.refresh_from_db()
    assert environment.state == EnvironmentState.READY
    port = environment.access["ports"]["web"]

    # Before any work, the checks fail (and say why).
    before = finished(environments.check(environment, sam))
    attempt = Attempt.objects.get(job=before)
    assert attempt.score == 0 and attempt.max_score == 8
    assert "nothing answers" in attempt.results[0]["detail"]

    student = logged_in(sam)
    page = student.get(f"/labs/environments/{environment.pk}/compose/")
    assert page.status_code == 200 and str(port) in page.content.decode()
    response = student.post(f"/labs/environments/{environment.pk}/compose/", {"compose": SOLUTION})
    compose = Job.objects.get(kind="lab-compose")
    assert response["Location"] == f"/jobs/{compose.pk}/"
    compose = finished(compose)
    assert compose.status == Status.SUCCEEDED, lines(compose)
    assert "built filrouge-lab/busybox:1" in lines(compose) or "db started" in lines(compose)
    assert student.get(f"/jobs/{compose.pk}/").status_code == 200

    after = finished(environments.check(environment, sam))
    attempt = Attempt.objects.get(job=after)
    assert [r["passed"] for r in attempt.results] == [True] * 5, attempt.results
    assert attempt.score == 8
    environment.refresh_from_db()
    assert environment.score == 8

    # Time is up: the sweep queues the teardown, the worker runs it, nothing labelled survives.
    from django.utils import timezone

    from labs.jobs import sweep_expired_environments

    Environment.objects.filter(pk=environment.pk).update(expires_at=timezone.now())
    assert labelled(docker_client, environment)["containers"]
    started = sweep_expired_environments()
    assert len(started) == 1
    teardown = finished(Job.objects.get(pk=started[0]))
    assert teardown.status == Status.SUCCEEDED, lines(teardown)
    environment.refresh_from_db()
    assert environment.state == EnvironmentState.DESTROYED
    assert nothing_left(docker_client, environment)
    assert environment.allocated_ports.count() == 0


def test_the_real_scheduler_tears_down_an_expired_environment_and_nothing_labelled_survives(
    sam, ready_environment, worker, tmp_path, docker_client
):
    from django.utils import timezone

    from tests.fixtures.workers import start_scheduler

    from tests.labs.docker.conftest import run_job_now

    environment = ready_environment(sam)
    compose = run_job_now(sam, "lab-compose", environment, compose=SOLUTION)
    assert compose.status == Status.SUCCEEDED
    owned = labelled(docker_client, environment)
    assert len(owned["containers"]) == 2 and len(owned["networks"]) == 1 and len(owned["volumes"]) == 1

    Environment.objects.filter(pk=environment.pk).update(expires_at=timezone.now())
    scheduler = start_scheduler(tmp_path, FILROUGE_LABS_EXPIRY_SWEEP_INTERVAL="1")
    try:
        wait_until(lambda: Environment.objects.get(pk=environment.pk).state == EnvironmentState.DESTROYED, timeout=60,
                   message="the sweep to destroy the expired environment")
    finally:
        scheduler.stop()
    assert nothing_left(docker_client, environment)
    assert Job.objects.get(kind="lab-destroy").params == {"reason": "expired"}
