"""The teacher's grid (page and htmx partial) and the grades CSV."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from labs.models import Attempt, Environment, EnvironmentState, Exercise
from tests.fixtures.actors import api_client, logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def graded(exercise, enrolled, sam, dave):
    second = Exercise.objects.create(course=exercise.course, slug="second", title="Second", target="docker", position=1,
                                     checks=[{"name": "a", "type": "test.answer", "points": 5, "params": {}}])
    first_try = Environment.objects.create(exercise=exercise, owner=sam, state=EnvironmentState.DESTROYED, score=3)
    Attempt.objects.create(environment=first_try, score=3, max_score=3)
    now = timezone.now()
    live = Environment.objects.create(exercise=exercise, owner=sam, state=EnvironmentState.READY, score=1, last_checked_at=now - timedelta(minutes=3), expires_at=now + timedelta(minutes=45))
    Attempt.objects.create(environment=live, score=1, max_score=3)
    Environment.objects.create(exercise=second, owner=dave, state=EnvironmentState.LAUNCHING)
    return {"exercise": exercise, "second": second, "live": live}


def test_the_grid_partial_shows_state_score_best_last_check_and_time_left(graded, carol):
    response = logged_in(carol).get(f"/labs/courses/{graded['exercise'].course_id}/", HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert [t.name for t in response.templates][0] == "labs/partials/grid.html"
    grid = response.context["grid"]
    assert [row["student"].username for row in grid["rows"]] == ["dave", "sam"]
    rows = {row["student"].username: row for row in grid["rows"]}
    two_tier = rows["sam"]["cells"][0]
    assert two_tier["environment"] == graded["live"] and two_tier["best"] == 3
    assert rows["dave"]["cells"][1]["environment"].state == EnvironmentState.LAUNCHING
    assert rows["dave"]["cells"][0]["environment"] is None
    html = response.content.decode()
    assert 'hx-trigger="every 2s"' in html  # something is launching: poll faster
    assert "1/3" in html and "best 3" in html and "3 min ago" in html and "44 min" in html
    assert 'data-state="launching"' in html


def test_the_grid_polls_slowly_when_nothing_moves(exercise, enrolled, carol):
    response = logged_in(carol).get(f"/labs/courses/{exercise.course_id}/", HTTP_HX_REQUEST="true")

    assert 'hx-trigger="every 5s"' in response.content.decode()


def test_the_grades_csv_has_the_best_score_per_exercise_and_the_total(graded, carol, sam):
    sam.first_name, sam.last_name = "=cmd|' /C calc'!A0", "S"
    sam.save()

    response = logged_in(carol).get(f"/labs/courses/{graded['exercise'].course_id}/grades.csv")

    assert response["Content-Type"].startswith("text/csv") and "devops-101-grades.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["username", "name", "email", "two-tier", "second", "total", "out_of"]
    assert rows[1] == ["dave", "", "dave@example.test", "", "", "0", "8"]
    assert rows[2] == ["sam", "'=cmd|' /C calc'!A0 S", "sam@example.test", "3", "", "3", "8"]


def test_the_grid_api_gives_the_same_cells(graded, carol):
    data = api_client(carol).get(f"/api/labs/courses/{graded['exercise'].course_id}/grid/").json()

    assert [e["slug"] for e in data["exercises"]] == ["two-tier", "second"]
    sam = next(row for row in data["rows"] if row["student"]["username"] == "sam")
    assert sam["cells"][0]["state"] == "ready" and sam["cells"][0]["score"] == 1 and sam["cells"][0]["best"] == 3
    assert sam["cells"][0]["expires_at"] and sam["cells"][1]["environment"] is None
