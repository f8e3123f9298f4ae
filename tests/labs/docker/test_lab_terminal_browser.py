"""A student opens a terminal into their own container of a Docker exercise, changes what it
serves, and the checks score that work."""

import pytest

from labs.models import Attempt
from terminals.models import TerminalSession
from tests.terminals.conftest import type_line, wait_for_screen, wait_for_state

from .conftest import run_job_now

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.docker, pytest.mark.browser]

COMPOSE = """services:
  web:
    image: filrouge-lab/busybox:1
    command: ["sh", "-c", "mkdir -p /www; echo waiting > /www/index.html; exec httpd -f -p 8080 -h /www"]
    ports:
      - "${PORT_WEB}:8080"
"""


def test_a_student_scores_by_work_done_in_their_container_terminal(sam, ready_environment, docker_exercise, asgi_server, browser_as, artifacts):
    docker_exercise.checks = [{"name": "The page says it", "type": "http", "points": 2, "hint": "Write the page.",
                               "params": {"port": "web", "path": "/", "status": 200, "contains": "typed-in-the-terminal"}}]
    docker_exercise.save()
    environment = ready_environment(sam)
    compose = run_job_now(sam, "lab-compose", environment, compose=COMPOSE)
    assert compose.status == "succeeded"
    before = run_job_now(sam, "lab-check", environment)
    assert Attempt.objects.get(job=before).score == 0

    page = browser_as(sam)
    page.goto(f"{asgi_server.url}/labs/environments/{environment.pk}/")
    wait_for_state(page, "connected")
    type_line(page, "echo typed-in-the-terminal > /www/index.html; cat /www/index.html | wc -c")
    wait_for_screen(page, "22")
    page.screenshot(path=str(artifacts / "terminal-lab-docker.png"), full_page=True)

    after = run_job_now(sam, "lab-check", environment)
    attempt = Attempt.objects.get(job=after)
    assert attempt.score == 2, attempt.results
    session = TerminalSession.objects.get()
    assert session.kind == "lab" and session.user == sam and session.target_label.startswith("compose-two-tier")
