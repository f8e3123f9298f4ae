"""The issue's end-to-end in real Chromium: the teacher watches the course grid while a student
launches the Compose exercise, runs a compose file from the page they were given, checks, and
scores full points; the grid shows it live. Screenshots of both sides go to test-artifacts/."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from labs.models import Course, Enrolment, Environment
from tests.fixtures.actors import PASSWORD
from tests.fixtures.browser import login
from tests.support.ports import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

STARTER = Path(settings.BASE_DIR) / "labs" / "starter"
SOLUTION = (Path(__file__).parent / "data" / "two_tier_solution.yaml").read_text()
HOSTILE = """services:
  app:
    image: filrouge-lab/busybox:1
    command: [sh]
    privileged: true
    volumes: ["/var/run/docker.sock:/var/run/docker.sock"]
"""


def wait_in_page(page, expression, timeout, message):
    wait_until(lambda: page.evaluate(expression), timeout=timeout, interval=0.25, message=message)


@pytest.fixture
def teardown_environments(docker_client):
    yield
    from clusters.drivers import docker as driver
    from labs.providers import docker_project

    for environment in Environment.objects.exclude(cluster=None).select_related("cluster", "owner", "exercise"):
        with driver.engine(environment.cluster) as connection:
            docker_project.teardown(connection, environment)


def test_a_student_does_the_compose_exercise_in_the_browser_and_the_teachers_grid_shows_it_live(
    live_server, chromium, page, artifacts, worker, carol, sam, lab_host, teardown_environments
):
    call_command("load_course", str(STARTER), teacher="carol", cluster=[lab_host.name])
    course = Course.objects.get(slug="devops-starter")
    Enrolment.objects.create(course=course, student=sam)
    exercise = course.exercises.get(slug="compose-two-tier")

    teacher = page
    login(teacher, live_server, "carol", PASSWORD)
    teacher.goto(f"{live_server.url}/labs/courses/{course.pk}/")
    cell = "document.querySelector('#lab-grid tr[data-student=\"sam\"] td[data-exercise=\"compose-two-tier\"]')"
    assert teacher.evaluate(f"{cell}.innerText.trim()") == "—"

    student_context = chromium.new_context(viewport={"width": 1280, "height": 900})
    student = student_context.new_page()
    try:
        login(student, live_server, "sam", PASSWORD)
        student.goto(f"{live_server.url}/labs/exercises/{exercise.pk}/")
        student.click("#launch")
        student.wait_for_url(lambda url: "/labs/environments/" in url)
        wait_in_page(student, "document.querySelector('#environment-state [data-state]').dataset.state === 'ready'", 90, "the environment to become ready")
        wait_in_page(teacher, f"!!{cell}.querySelector('[data-state=\"ready\"]')", 30, "the grid to show the environment ready without a reload")
        student.screenshot(path=str(artifacts / "lab-docker-student-ready.png"), full_page=True)

        student.reload()  # the page's actions (the compose link among them) are drawn for the state it was loaded in
        student.click("#compose-link")
        student.wait_for_selector("#compose-form")
        port = Environment.objects.get(owner=sam).access["ports"]["web"]
        assert str(port) in student.locator("#compose-ports").inner_text()
        student.fill("#id_compose", HOSTILE)
        student.click("#compose-run")
        student.wait_for_selector("#compose-problems")
        problems = student.locator("#compose-problems").inner_text()
        assert "line 5: services.app.privileged: privileged containers are not allowed" in problems
        assert "/var/run/docker.sock: mounting the Docker socket is refused" in problems
        student.screenshot(path=str(artifacts / "lab-docker-student-compose-refused.png"), full_page=True)
        student.fill("#id_compose", SOLUTION)
        student.click("#compose-run")
        student.wait_for_url(lambda url: "/jobs/" in url)
        wait_in_page(student, "document.querySelector('#job-status').innerText.toLowerCase().includes('succeeded')", 90, "the compose job to succeed")
        assert "web started" in student.locator("#log-lines").inner_text()
        student.screenshot(path=str(artifacts / "lab-docker-student-compose-job.png"), full_page=True)

        student.goto(f"{live_server.url}/labs/environments/{Environment.objects.get(owner=sam).pk}/")
        student.click("#check-my-work")
        wait_in_page(student, "document.querySelector('#score').innerText.trim() === '8/8'", 90, "the score 8/8 on the student's page")
        results = student.locator("#latest-attempt").inner_text()
        assert "The data lives on a named volume" in results
        student.screenshot(path=str(artifacts / "lab-docker-student-scored.png"), full_page=True)

        wait_in_page(teacher, f"{cell}.querySelector('.score').innerText.trim() === '8/8'", 30, "the teacher's grid to show 8/8 live")
        teacher.screenshot(path=str(artifacts / "lab-docker-teacher-grid.png"), full_page=True)
    finally:
        student_context.close()
