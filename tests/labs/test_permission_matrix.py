"""The permission matrix: every lab page and API endpoint, for the course's teacher, the
environment's own student, another student of the same course, a user with no role and
an anonymous visitor. "ok" is 200, or for a POST the redirect/202 of an action that started."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from labs.models import Attempt, Environment, EnvironmentState, Exercise
from panel.jobs.models import Job
from tests.fixtures.actors import api_client, logged_in

pytestmark = pytest.mark.django_db

ACTORS = ("teacher", "own", "other", "norole", "anon")


@pytest.fixture
def world(exercise, enrolled, carol, sam, dave, charlie):
    environment = Environment.objects.create(exercise=exercise, owner=sam, state=EnvironmentState.READY, expires_at=timezone.now() + timedelta(hours=1))
    environment.access = {"host": "127.0.0.1", "ports": {"web": 20001}, "kubeconfig": "apiVersion: v1\nusers: [{user: {token: sekrit-token-123}}]\n", "token": "sekrit-token-123"}
    environment.save()
    attempt = Attempt.objects.create(environment=environment, requested_by=sam, score=2, max_score=3, results=[])
    second = Exercise.objects.create(course=exercise.course, slug="second", title="Second", target="docker")
    return {
        "course": exercise.course.pk, "exercise": exercise.pk, "second": second.pk, "env": environment.pk, "attempt": attempt.pk,
        "users": {"teacher": carol, "own": sam, "other": dave, "norole": charlie, "anon": None},
    }


def page_client(user):
    return logged_in(user) if user is not None else Client()


def outcome(response):
    if response.status_code == 302 and "/accounts/login/" in response["Location"]:
        return "login"
    if response.status_code in (200, 202) or (response.status_code == 302):
        return "ok"
    return response.status_code


PAGES = [
    # (method, url template, extra, expected for teacher, own, other, norole, anon)
    ("get", "/labs/", {}, ("ok", "ok", "ok", 403, "login")),
    ("get", "/labs/courses/{course}/", {}, ("ok", "ok", "ok", 403, "login")),
    ("get", "/labs/courses/{course}/", {"HTTP_HX_REQUEST": "true"}, ("ok", 403, 403, 403, "login")),
    ("get", "/labs/courses/{course}/grades.csv", {}, ("ok", 403, 403, 403, "login")),
    ("get", "/labs/exercises/{exercise}/", {}, ("ok", "ok", "ok", 403, "login")),
    ("get", "/labs/exercises/{exercise}/export/", {}, ("ok", 403, 403, 403, "login")),
    ("get", "/labs/environments/{env}/", {}, ("ok", "ok", 404, 403, "login")),
    ("get", "/labs/environments/{env}/", {"HTTP_HX_REQUEST": "true"}, ("ok", "ok", 404, 403, "login")),
    ("get", "/labs/environments/{env}/kubeconfig/", {}, (404, "ok", 404, 403, "login")),
    ("get", "/labs/attempts/{attempt}/", {}, ("ok", "ok", 404, 403, "login")),
    ("get", "/labs/environments/{env}/compose/", {}, ("ok", "ok", 404, 404, "login")),
    ("post", "/labs/environments/{env}/check/", {}, ("ok", "ok", 404, 403, "login")),
    ("post", "/labs/environments/{env}/reset/", {}, ("ok", "ok", 404, 403, "login")),
    ("post", "/labs/environments/{env}/destroy/", {}, ("ok", "ok", 404, 403, "login")),
    ("post", "/labs/environments/{env}/extend/", {"data": {"minutes": 30}}, ("ok", 403, 404, 403, "login")),
    ("post", "/labs/environments/{env}/expire/", {}, ("ok", 403, 404, 403, "login")),
    ("post", "/labs/exercises/{second}/launch/", {}, ("ok", "ok", "ok", 403, "login")),
    ("post", "/labs/exercises/{exercise}/class-start/", {}, ("ok", 403, 403, 403, "login")),
    ("post", "/labs/courses/{course}/all/extend/", {"data": {"minutes": 30}}, ("ok", 403, 403, 403, "login")),
    ("post", "/labs/courses/{course}/all/expire/", {}, ("ok", 403, 403, 403, "login")),
    ("post", "/labs/courses/{course}/enrol/", {"data": {"name": "Eve Example", "email": "eve@example.test"}}, ("ok", 403, 403, 403, "login")),
    ("post", "/labs/courses/{course}/import/", {}, ("ok", 403, 403, 403, "login")),
    ("get", "/labs/courses/new/", {}, ("ok", 403, 403, 403, "login")),
    ("get", "/labs/courses/{course}/edit/", {}, ("ok", 403, 403, 403, "login")),
    ("post", "/labs/courses/{course}/edit/", {"data": {"title": "Renamed", "slug": "renamed", "code": "RENAMED-1"}}, ("ok", 403, 403, 403, "login")),
]


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("method, url, extra, expected", PAGES, ids=[f"{p[0]} {p[1]}{' htmx' if 'HTTP_HX_REQUEST' in p[2] else ''}" for p in PAGES])
def test_pages_answer_each_actor_as_they_should(world, actor, method, url, extra, expected):
    client = page_client(world["users"][actor])
    extra = dict(extra)
    data = extra.pop("data", {})
    jobs_before = Job.objects.count()

    response = getattr(client, method)(url.format(**world), data, **extra)

    assert outcome(response) == expected[ACTORS.index(actor)], (response.status_code, response.get("Location"))
    if method == "post" and expected[ACTORS.index(actor)] != "ok":
        assert Job.objects.count() == jobs_before  # a refused action starts nothing
    if response.status_code == 200 and method == "get":
        body = response.content.decode()
        assert "sekrit-token-123" not in body or url.endswith("/kubeconfig/")


API = [
    ("get", "/api/labs/courses/", {}, ("ok", "ok", "ok", 403, 401)),
    ("get", "/api/labs/courses/{course}/", {}, ("ok", "ok", "ok", 403, 401)),
    ("get", "/api/labs/courses/{course}/grid/", {}, ("ok", 403, 403, 403, 401)),
    ("get", "/api/labs/exercises/", {}, ("ok", "ok", "ok", 403, 401)),
    ("get", "/api/labs/exercises/{exercise}/", {}, ("ok", "ok", "ok", 403, 401)),
    ("get", "/api/labs/environments/", {}, ("ok", "ok", "ok", 403, 401)),
    ("get", "/api/labs/environments/{env}/", {}, ("ok", "ok", 404, 403, 401)),
    ("get", "/api/labs/attempts/", {}, ("ok", "ok", "ok", 403, 401)),
    ("get", "/api/labs/attempts/{attempt}/", {}, ("ok", "ok", 404, 403, 401)),
    ("post", "/api/labs/environments/{env}/check/", {}, ("ok", "ok", 404, 403, 401)),
    ("post", "/api/labs/environments/{env}/reset/", {}, ("ok", "ok", 404, 403, 401)),
    ("post", "/api/labs/environments/{env}/destroy/", {}, ("ok", "ok", 404, 403, 401)),
    ("post", "/api/labs/environments/{env}/extend/", {"minutes": 30}, ("ok", 403, 404, 403, 401)),
    ("post", "/api/labs/environments/{env}/expire/", {}, ("ok", 403, 404, 403, 401)),
    ("post", "/api/labs/exercises/{second}/launch/", {}, ("ok", "ok", "ok", 403, 401)),
    ("post", "/api/labs/exercises/{exercise}/class-start/", {}, ("ok", 403, 403, 403, 401)),
]


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("method, url, data, expected", API, ids=[f"{a[0]} {a[1]}" for a in API])
def test_api_answers_each_actor_as_it_should(world, actor, method, url, data, expected):
    user = world["users"][actor]
    client = api_client(user) if user is not None else APIClient()
    jobs_before = Job.objects.count()

    response = getattr(client, method)(url.format(**world), data, format="json")

    want = expected[ACTORS.index(actor)]
    assert (response.status_code in (200, 202) if want == "ok" else response.status_code == want), (response.status_code, getattr(response, "data", None))
    if method == "post" and want != "ok":
        assert Job.objects.count() == jobs_before
    assert "sekrit-token-123" not in response.content.decode()


def test_lists_show_a_student_only_their_own_environments_and_attempts(world, sam, dave, carol):
    Environment.objects.create(exercise_id=world["second"], owner=dave)

    own = api_client(sam).get("/api/labs/environments/").json()["results"]
    other = api_client(dave).get("/api/labs/environments/").json()["results"]
    teacher = api_client(carol).get("/api/labs/environments/").json()["results"]

    assert [e["owner"] for e in own] == ["sam"] and [e["owner"] for e in other] == ["dave"]
    assert sorted(e["owner"] for e in teacher) == ["dave", "sam"]
    assert api_client(dave).get("/api/labs/attempts/").json()["results"] == []


def test_only_the_owner_reads_the_access_and_never_its_secrets(world, sam, carol):
    own = api_client(sam).get(f"/api/labs/environments/{world['env']}/").json()
    teacher = api_client(carol).get(f"/api/labs/environments/{world['env']}/").json()

    assert own["access"] == {"host": "127.0.0.1", "ports": {"web": 20001}, "kubeconfig_download": f"/labs/environments/{world['env']}/kubeconfig/"}
    assert teacher["access"] is None
    kubeconfig = logged_in(sam).get(f"/labs/environments/{world['env']}/kubeconfig/")
    assert kubeconfig.status_code == 200 and b"sekrit-token-123" in kubeconfig.content
    assert kubeconfig["Content-Disposition"].startswith("attachment;")


def test_the_enrolment_code_is_shown_to_teachers_only(world, sam, carol):
    assert api_client(carol).get(f"/api/labs/courses/{world['course']}/").json()["code"] == "DEVOPS101"
    assert api_client(sam).get(f"/api/labs/courses/{world['course']}/").json()["code"] is None


def test_every_lab_post_needs_the_csrf_token(world, sam):
    client = Client(enforce_csrf_checks=True)
    client.force_login(sam)

    response = client.post(f"/labs/environments/{world['env']}/check/")

    assert response.status_code == 403
    assert not Job.objects.exists()
