"""The lab pages in a real Chromium: the student's environment page (access, results with hints)
and the teacher's grid, which updates itself when an environment changes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from labs.models import Attempt, Environment, EnvironmentState
from tests.fixtures.actors import PASSWORD
from tests.fixtures.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def checked(exercise, enrolled, sam):
    environment = Environment.objects.create(exercise=exercise, owner=sam, state=EnvironmentState.READY, score=2,
                                             last_checked_at=timezone.now(), expires_at=timezone.now() + timedelta(minutes=90))
    environment.access = {"host": "127.0.0.1", "ports": {"web": 20017, "api": 20018}, "docker": {"project": environment.name, "network": environment.name},
                          "ssh": {"command": "ssh -p 20019 student@127.0.0.1", "host_key_fingerprint": "SHA256:abc", "known_hosts": "[127.0.0.1]:20019 ssh-ed25519 AAAA"}}
    environment.save()
    Attempt.objects.create(environment=environment, requested_by=sam, score=2, max_score=3, finished_at=timezone.now(), results=[
        {"name": "The web tier answers", "type": "test.answer", "passed": True, "points": 2, "earned": 2, "detail": "200 OK", "hint": ""},
        {"name": "Something else", "type": "test.answer", "passed": False, "points": 1, "earned": 0, "detail": "observed 'nothing'", "hint": "Say other."},
    ])
    return environment


def test_the_student_sees_access_results_and_hints(checked, page, live_server, artifacts):
    login(page, live_server, "sam", PASSWORD)
    page.goto(f"{live_server.url}/labs/environments/{checked.pk}/")

    assert page.inner_text("#environment-state") == "Ready"
    assert "127.0.0.1:20017" in page.inner_text("#access-ports")
    assert page.inner_text("#ssh-command") == "ssh -p 20019 student@127.0.0.1"
    failed = page.locator("tr[data-check='Something else']")
    assert "failed" in failed.inner_text() and "Hint: Say other." in failed.inner_text()
    assert "Hint" not in page.locator("tr[data-check='The web tier answers']").inner_text()
    assert page.inner_text("#score") == "2/3"
    page.screenshot(path=str(artifacts / "labs-student-environment.png"), full_page=True)


def test_the_teachers_grid_updates_itself(checked, dave, exercise, page, live_server, artifacts):
    login(page, live_server, "carol", PASSWORD)
    page.goto(f"{live_server.url}/labs/courses/{exercise.course_id}/")
    cell = page.locator("tr[data-student='sam'] td[data-exercise='two-tier']")
    assert "Ready" in cell.inner_text() and "2/3" in cell.inner_text()

    Environment.objects.create(exercise=exercise, owner=dave, state=EnvironmentState.LAUNCHING)

    page.locator("tr[data-student='dave'] td[data-exercise='two-tier'] [data-state='launching']").wait_for(timeout=15000)
    page.screenshot(path=str(artifacts / "labs-teacher-grid.png"), full_page=True)
