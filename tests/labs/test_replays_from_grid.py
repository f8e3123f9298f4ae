"""Teachers reach their students' terminal recordings from the grid and an attempt."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labs.models import Attempt, Course, Environment, EnvironmentState, Exercise
from panel.accounts.models import Role
from terminals.models import TerminalSession
from tests.fixtures.actors import logged_in, make_user

pytestmark = pytest.mark.django_db


def lab_session(environment, user, label="recorded"):
    return TerminalSession.objects.create(user=user, username=user.username, kind="lab", target_label=label,
                                          object_type="labs.environment", object_id=str(environment.pk))


@pytest.fixture
def recorded(exercise, enrolled, sam, dave):
    second = Exercise.objects.create(course=exercise.course, slug="second", title="Second", target="docker", position=1)
    sams = Environment.objects.create(exercise=exercise, owner=sam, state=EnvironmentState.READY)
    daves = Environment.objects.create(exercise=second, owner=dave, state=EnvironmentState.READY)
    Environment.objects.create(exercise=second, owner=sam, state=EnvironmentState.READY)  # no session: no link
    first, _ = lab_session(sams, sam, "sam-first"), lab_session(sams, sam, "sam-second")
    lab_session(daves, dave, "dave-only")
    return {"sams": sams, "daves": daves, "first": first}


def test_the_grid_links_each_cell_to_its_replays_with_the_count_in_one_query(recorded, carol):
    course_id = recorded["sams"].exercise.course_id
    with CaptureQueriesContext(connection) as queries:
        response = logged_in(carol).get(f"/labs/courses/{course_id}/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert sum("terminals_terminalsession" in q["sql"] for q in queries.captured_queries) == 1
    page = response.content.decode()
    sams_link = f'href="/terminals/sessions/?kind=lab&amp;object={recorded["sams"].pk}">Replays (2)</a>'
    daves_link = f'href="/terminals/sessions/?kind=lab&amp;object={recorded["daves"].pk}">Replays (1)</a>'
    assert sams_link in page and daves_link in page
    assert page.count("Replays (") == 2  # the cell without a session has no link
    rows = {row["student"].username: row for row in response.context["grid"]["rows"]}
    assert [cell["replays"] for cell in rows["sam"]["cells"]] == [2, 0]


def test_the_filtered_list_shows_only_that_environments_sessions(recorded, carol):
    page = logged_in(carol).get(f"/terminals/sessions/?kind=lab&object={recorded['sams'].pk}")
    assert page.status_code == 200
    text = page.content.decode()
    assert "sam-first" in text and "sam-second" in text and "dave-only" not in text
    assert f"/terminals/sessions/{recorded['first'].pk}/" in text
    assert logged_in(carol).get(f"/terminals/sessions/{recorded['first'].pk}/").status_code == 200


def test_another_courses_teacher_cannot_list_or_replay_them(recorded):
    tina = make_user("tina", Role.TEACHER)
    Course.objects.create(title="Other", slug="other", code="OTHER").teachers.add(tina)
    client = logged_in(tina)
    assert client.get(f"/terminals/sessions/?kind=lab&object={recorded['sams'].pk}").status_code == 404
    assert client.get(f"/terminals/sessions/{recorded['first'].pk}/").status_code == 404
    assert "sam-first" not in client.get("/terminals/sessions/").content.decode()


def test_a_student_lists_their_own_replays_but_not_another_students(recorded, sam, dave):
    own = logged_in(sam).get(f"/terminals/sessions/?kind=lab&object={recorded['sams'].pk}")
    assert own.status_code == 200 and "sam-first" in own.content.decode()
    assert logged_in(dave).get(f"/terminals/sessions/?kind=lab&object={recorded['sams'].pk}").status_code == 404
    assert logged_in(dave).get(f"/terminals/sessions/{recorded['first'].pk}/").status_code == 404


def test_an_unknown_kind_or_object_is_a_404(recorded, alice):
    assert logged_in(alice).get("/terminals/sessions/?kind=nope&object=1").status_code == 404
    assert logged_in(alice).get("/terminals/sessions/?kind=lab&object=x").status_code == 404


def test_an_attempt_links_to_its_environments_sessions(recorded, carol):
    attempt = Attempt.objects.create(environment=recorded["sams"], score=1, max_score=3)
    page = logged_in(carol).get(f"/labs/attempts/{attempt.pk}/").content.decode()
    assert f'href="/terminals/sessions/?kind=lab&amp;object={recorded["sams"].pk}"' in page
