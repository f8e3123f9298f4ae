"""A course whose exercises have no cluster to run on warns its teachers (load_course, the course
page, an exercise import, the course form), and students are never shown an operator's
instruction: they read what happened in their words, teachers read the detail."""

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from clusters.models import Cluster
from labs.models import Course, Enrolment, Environment, EnvironmentState
from tests.fixtures.actors import api_client, logged_in

from .jobhelpers import run_now

pytestmark = pytest.mark.django_db
STARTER = Path(__file__).resolve().parents[2] / "labs" / "starter"
OPERATOR_WORDS = ("--cluster", "load_course", "Django admin", "FILROUGE_", "Edit on the course page", "has no cluster")


def load(*args):
    out, err = StringIO(), StringIO()
    call_command("load_course", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def starter(tmp_path):
    """The starter course: a Docker, an SSH and two Kubernetes exercises."""
    folder = tmp_path / "starter"
    shutil.copytree(STARTER, folder)
    return folder


def test_load_course_warns_that_kubernetes_exercises_have_no_kubernetes_cluster(starter):
    Cluster.objects.create(name="lab-docker", kind="docker", endpoint="unix:///var/run/docker.sock")

    out, err = load(str(starter), "--cluster", "lab-docker")

    assert "Created course" in out
    assert "Warning: Kubernetes exercises (k8s-api-hpa, k8s-rolling-update) cannot be launched: the course has no Kubernetes cluster." in err
    assert "load_course --cluster NAME" in err
    assert "Docker exercises" not in err and "SSH host exercises" not in err  # the Docker host runs both


def test_load_course_warns_about_every_target_without_a_cluster_and_is_quiet_once_they_have_one(starter):
    _out, err = load(str(starter))
    assert err.count("Warning:") == 3 and "Docker host (a Docker cluster)" in err and "SSH host exercises (ssh-harden-systemd)" in err

    Cluster.objects.create(name="lab-docker", kind="docker", endpoint="unix:///var/run/docker.sock")
    Cluster.objects.create(name="lab-k8s", kind="kubernetes", endpoint="https://127.0.0.1:6443")
    _out, err = load(str(starter), "--cluster", "lab-docker", "--cluster", "lab-k8s")
    assert err == ""


def test_the_course_page_warns_its_teachers_and_not_its_students(starter, carol, sam):
    load(str(starter), "--teacher", "carol")
    course = Course.objects.get()
    Enrolment.objects.create(course=course, student=sam)

    teacher_page = logged_in(carol).get(f"/labs/courses/{course.pk}/").content.decode()
    student_page = logged_in(sam).get(f"/labs/courses/{course.pk}/").content.decode()

    assert 'id="setup-warnings"' in teacher_page and "Kubernetes exercises (k8s-api-hpa, k8s-rolling-update) cannot be launched" in teacher_page
    assert 'id="setup-warnings"' not in student_page
    assert not any(word in student_page for word in OPERATOR_WORDS)


def test_a_student_sees_that_an_exercise_is_not_set_up_without_operator_instructions(starter, carol, sam):
    Cluster.objects.create(name="lab-docker", kind="docker", endpoint="unix:///var/run/docker.sock")
    load(str(starter), "--teacher", "carol", "--cluster", "lab-docker")
    course = Course.objects.get()
    Enrolment.objects.create(course=course, student=sam)
    kube, docker = course.exercises.get(slug="k8s-api-hpa"), course.exercises.get(slug="compose-two-tier")

    page = logged_in(sam).get(f"/labs/exercises/{kube.pk}/").content.decode()

    assert "This exercise cannot start yet: the lab is not set up for it." in page
    assert not any(word in page for word in OPERATOR_WORDS)
    assert 'id="not-set-up"' not in logged_in(sam).get(f"/labs/exercises/{docker.pk}/").content.decode()
    teacher_page = logged_in(carol).get(f"/labs/exercises/{kube.pk}/").content.decode()
    assert "the course has no Kubernetes cluster" in teacher_page


@pytest.mark.django_db(transaction=True)
def test_a_failed_launch_shows_the_student_their_words_and_the_teacher_the_detail(starter, carol, sam):
    load(str(starter), "--teacher", "carol")
    course = Course.objects.get()
    Enrolment.objects.create(course=course, student=sam)
    environment = Environment.objects.create(exercise=course.exercises.get(slug="k8s-api-hpa"), owner=sam)
    job = run_now("lab-launch", environment, sam)

    student_env = logged_in(sam).get(f"/labs/environments/{environment.pk}/").content.decode()
    student_job = logged_in(sam).get(f"/jobs/{job.pk}/").content.decode()
    teacher_env = logged_in(carol).get(f"/labs/environments/{environment.pk}/").content.decode()
    grid = logged_in(carol).get(f"/labs/courses/{course.pk}/").content.decode()

    for page in (student_env, student_job):
        assert "the lab is not set up for it" in page
        assert not any(word in page for word in OPERATOR_WORDS), [word for word in OPERATOR_WORDS if word in page]
    assert environment.state == EnvironmentState.FAILED
    assert 'id="environment-error-detail"' in teacher_env and "has no cluster for kubernetes exercises" in teacher_env
    assert "has no cluster for kubernetes exercises" in grid
    student_api = api_client(sam, "read").get(f"/api/labs/environments/{environment.pk}/").json()
    teacher_api = api_client(carol, "read").get(f"/api/labs/environments/{environment.pk}/").json()
    assert student_api["error_detail"] is None and "--cluster" not in student_api["error"]
    assert "has no cluster for kubernetes exercises" in teacher_api["error_detail"]


def test_importing_an_exercise_the_course_cannot_run_warns_the_teacher(carol):
    course = Course.objects.create(title="Kube", slug="kube", code="KUBE-1")
    course.teachers.add(carol)
    upload = (STARTER / "k8s-rolling-update.yaml").open("rb")

    response = logged_in(carol).post(f"/labs/courses/{course.pk}/import/", {"file": upload}, follow=True)

    text = response.content.decode()
    assert "Exercise k8s-rolling-update saved." in text
    assert "Kubernetes exercises (k8s-rolling-update) cannot be launched: the course has no Kubernetes cluster." in text


def test_saving_the_course_form_without_the_needed_cluster_warns_and_adding_it_clears_the_warning(starter, carol):
    load(str(starter), "--teacher", "carol")
    course = Course.objects.get()
    docker = Cluster.objects.create(name="lab-docker", kind="docker", endpoint="unix:///var/run/docker.sock")
    kube = Cluster.objects.create(name="lab-k8s", kind="kubernetes", endpoint="https://127.0.0.1:6443")
    form = {"title": course.title, "slug": course.slug, "description": "", "code": course.code, "teachers": [carol.pk]}

    saved = logged_in(carol).post(f"/labs/courses/{course.pk}/edit/", {**form, "clusters": [docker.pk]}, follow=True).content.decode()
    assert "Kubernetes exercises (k8s-api-hpa, k8s-rolling-update) cannot be launched" in saved

    saved = logged_in(carol).post(f"/labs/courses/{course.pk}/edit/", {**form, "clusters": [docker.pk, kube.pk]}, follow=True).content.decode()
    assert "cannot be launched" not in saved and 'id="setup-warnings"' not in saved
