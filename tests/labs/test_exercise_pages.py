"""Exercise pages: instructions rendered safely, file import (refused with its line) and export, launch and class start from the pages."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labs.models import Environment, EnvironmentState, Exercise
from panel.jobs.models import Job
from tests.fixtures.actors import logged_in

from .conftest import GOOD_EXERCISE

pytestmark = pytest.mark.django_db


def test_the_exercise_page_renders_markdown_and_shows_raw_html_as_text(exercise, enrolled, sam):
    html = logged_in(sam).get(f"/labs/exercises/{exercise.pk}/").content.decode()

    assert "<h1>Build it</h1>" in html and "<strong>web</strong>" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_teacher_imports_an_exercise_file_and_exports_it_back(course, carol):
    upload = SimpleUploadedFile("two-tier.yaml", GOOD_EXERCISE.encode(), content_type="application/yaml")

    response = logged_in(carol).post(f"/labs/courses/{course.pk}/import/", {"file": upload}, follow=True)

    exercise = Exercise.objects.get(course=course, slug="two-tier")
    assert "Exercise two-tier saved." in response.content.decode()
    exported = logged_in(carol).get(f"/labs/exercises/{exercise.pk}/export/")
    assert exported.content.decode() == GOOD_EXERCISE
    assert exported["Content-Disposition"] == 'attachment; filename="two-tier.yaml"'


def test_a_broken_import_is_refused_with_its_file_and_line(course, carol):
    upload = SimpleUploadedFile("broken.yaml", GOOD_EXERCISE.replace("ttl: 2h", "ttl: 2 weeks").encode())

    response = logged_in(carol).post(f"/labs/courses/{course.pk}/import/", {"file": upload}, follow=True)

    assert "broken.yaml, line 4, column 6: ttl must look like 30m, 2h or 1d" in response.content.decode()
    assert not Exercise.objects.exists()


def test_a_student_launches_from_the_page_and_lands_on_the_environment_with_its_job(exercise, enrolled, sam):
    response = logged_in(sam).post(f"/labs/exercises/{exercise.pk}/launch/")

    environment = Environment.objects.get(owner=sam)
    assert response["Location"] == f"/labs/environments/{environment.pk}/"
    job = Job.objects.get(kind="lab-launch")
    assert job.target == environment and job.user == sam
    page = logged_in(sam).get(response["Location"]).content.decode()
    assert "lab-launch" in page and 'hx-trigger="every 2s"' in page  # live progress while it runs
    again = logged_in(sam).post(f"/labs/exercises/{exercise.pk}/launch/", follow=True)
    assert "still running" in again.content.decode() and Job.objects.count() == 1


def test_an_unenrolled_teacher_of_another_course_cannot_launch_here(exercise, enrolled, alice, charlie):
    charlie.role = "teacher"
    charlie.save()

    assert logged_in(charlie).post(f"/labs/exercises/{exercise.pk}/launch/").status_code == 404
    assert logged_in(alice).post(f"/labs/exercises/{exercise.pk}/launch/").status_code == 302  # admins may
    assert not Environment.objects.filter(owner=charlie).exists()


def test_class_start_from_the_page_launches_every_enrolled_student_once(exercise, enrolled, carol, sam):
    Environment.objects.create(exercise=exercise, owner=sam, state=EnvironmentState.READY)

    response = logged_in(carol).post(f"/labs/exercises/{exercise.pk}/class-start/", follow=True)

    jobs = Job.objects.filter(kind="lab-launch")
    assert [job.target.owner.username for job in jobs] == ["dave"]
    assert "1 environment(s) launching, 1 already up or busy" in response.content.decode()


def test_an_environment_whose_launch_job_was_lost_can_be_launched_again(exercise, enrolled, sam):
    environment = Environment.objects.create(exercise=exercise, owner=sam, state=EnvironmentState.LAUNCHING)
    Job.objects.create(kind="lab-launch", timeout=60, status="lost", target_id=str(environment.pk))

    response = logged_in(sam).post(f"/labs/exercises/{exercise.pk}/launch/")

    assert response["Location"] == f"/labs/environments/{environment.pk}/"
    assert Job.objects.filter(kind="lab-launch", status="queued").count() == 1
