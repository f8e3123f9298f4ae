"""Teachers open and edit courses from the browser; nobody else can."""

import pytest

from clusters.models import Cluster
from labs.models import Course
from tests.fixtures.actors import logged_in, make_user

pytestmark = pytest.mark.django_db


def test_a_teacher_creates_a_course_and_teaches_it(carol):
    docker = Cluster.objects.create(name="lab-host", kind="docker", endpoint="unix:///var/run/docker.sock")
    response = logged_in(carol).post("/labs/courses/new/", {"title": "DevOps 101", "slug": "devops-101", "code": "", "clusters": [docker.pk]})

    course = Course.objects.get(slug="devops-101")
    assert response.status_code == 302 and response["Location"] == f"/labs/courses/{course.pk}/"
    assert list(course.teachers.all()) == [carol]
    assert list(course.clusters.all()) == [docker]
    assert len(course.code) == 8  # a random code when none is given


def test_it_refuses_an_enrolment_code_another_course_uses(carol):
    Course.objects.create(title="Taken", slug="taken", code="CODE-1")
    response = logged_in(carol).post("/labs/courses/new/", {"title": "Mine", "slug": "mine", "code": "code-1"})

    assert response.status_code == 200
    assert "Another course already uses this enrolment code." in response.content.decode()
    assert not Course.objects.filter(slug="mine").exists()


def test_it_offers_only_docker_and_kubernetes_clusters_and_teachers(carol, sam):
    Cluster.objects.create(name="a-swarm", kind="swarm", endpoint="unix:///var/run/docker.sock")
    kube = Cluster.objects.create(name="a-kube", kind="kubernetes", endpoint="https://127.0.0.1:6443")
    form = logged_in(carol).get("/labs/courses/new/").context["form"]

    assert list(form.fields["clusters"].queryset) == [kube]
    assert list(form.fields["teachers"].queryset) == [carol]  # sam is a student


def test_only_a_teacher_of_the_course_edits_it(carol):
    other_teacher = make_user("tess", "teacher")
    course = Course.objects.create(title="Carol's", slug="carols", code="CAROL-1")
    course.teachers.add(carol)

    assert logged_in(other_teacher).get(f"/labs/courses/{course.pk}/edit/").status_code == 404
    response = logged_in(carol).post(f"/labs/courses/{course.pk}/edit/", {"title": "Carol's course", "slug": "carols", "code": "CAROL-1"})

    assert response.status_code == 302
    course.refresh_from_db()
    assert course.title == "Carol's course"
    assert list(course.teachers.all()) == [carol]  # unticking everyone keeps the editor


def test_students_cannot_open_courses(sam):
    assert logged_in(sam).post("/labs/courses/new/", {"title": "x", "slug": "x"}).status_code == 403
    assert not Course.objects.filter(slug="x").exists()
