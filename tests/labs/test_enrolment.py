"""Enrolment: a student by code, a teacher by hand or from a CSV (new accounts get a one-time password shown once)."""

import pytest

from labs.enrolment import EnrolmentError, enrol_csv, parse_csv
from labs.models import Enrolment
from panel.accounts.models import Role, User
from tests.fixtures.actors import api_client, logged_in

pytestmark = pytest.mark.django_db

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx7tI3Jm0bqFq9qzZ0a2mQk5rQm9b6K8f2n3QwzYxZ eve@laptop"


def test_a_student_enrols_with_the_code_in_any_case(course, sam):
    response = logged_in(sam).post("/labs/enrol/", {"code": " devops101 "})

    assert response.status_code == 302 and response["Location"] == f"/labs/courses/{course.pk}/"
    assert Enrolment.objects.filter(course=course, student=sam).exists()
    assert logged_in(sam).get(f"/labs/courses/{course.pk}/").status_code == 200


def test_a_wrong_code_enrols_nobody_and_says_so(course, sam):
    response = logged_in(sam).post("/labs/enrol/", {"code": "NOPE"}, follow=True)

    assert "No course has this code" in response.content.decode()
    assert not Enrolment.objects.exists()


def test_a_teacher_cannot_join_as_a_student_through_the_code(course, carol, dave):
    other = course.__class__.objects.create(title="Other", slug="other", code="OTHER-1")
    logged_in(carol).post("/labs/enrol/", {"code": "OTHER-1"})
    assert not Enrolment.objects.filter(course=other).exists()

    response = api_client(dave).post("/api/labs/enrol/", {"code": "OTHER-1"}, format="json")
    assert response.status_code == 201 and response.json()["code"] is None
    assert api_client(dave).post("/api/labs/enrol/", {"code": "OTHER-1"}, format="json").status_code == 200


def test_the_teacher_enrols_a_csv_creating_accounts_with_one_time_passwords(course, carol, sam):
    sam.email = "Sam@Example.test"
    sam.save()
    csv_text = f"name,email,ssh_public_key\nEve Example,eve@example.test,{KEY}\nSam,sam@example.test,\n\nMallory M,mallory@example.test\n"

    response = logged_in(carol).post(f"/labs/courses/{course.pk}/enrol/", {"csv_text": csv_text})

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0") or "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    eve = User.objects.get(email="eve@example.test")
    assert (eve.username, eve.role, eve.must_change_password, eve.get_full_name()) == ("eve", Role.STUDENT, True, "Eve Example")
    assert Enrolment.objects.get(course=course, student=eve).ssh_public_key == KEY
    assert Enrolment.objects.filter(course=course, student=sam).exists()  # attached by email, no new account
    assert User.objects.filter(email__iexact="sam@example.test").count() == 1
    page = response.content.decode()
    passwords = [row["password"] for row in response.context["results"] if row["password"]]
    assert len(passwords) == 2 and all(p in page for p in passwords)
    assert eve.check_password(passwords[0]) and passwords[0] not in eve.password


def test_a_bad_csv_line_is_named_and_nobody_is_enrolled(course):
    with pytest.raises(EnrolmentError, match="Line 3: 'not-an-email' is not an email address"):
        enrol_csv(course, "Eve,eve@example.test\nBob,bob@example.test\nX,not-an-email\n")
    with pytest.raises(EnrolmentError, match="Line 1: This is not an OpenSSH public key"):
        enrol_csv(course, "Eve,eve@example.test,hello\n")
    with pytest.raises(EnrolmentError, match="Line 2: expected name, email"):
        parse_csv("Eve,eve@example.test\njust-one-cell\n")
    assert not User.objects.filter(email__in=["eve@example.test", "bob@example.test"]).exists()
    assert not Enrolment.objects.exists()


def test_the_teacher_enrols_an_existing_user_by_username(course, carol, dave):
    response = logged_in(carol).post(f"/labs/courses/{course.pk}/enrol/", {"username": "dave"})

    assert response.status_code == 200 and "already" not in response.content.decode()
    assert Enrolment.objects.filter(course=course, student=dave).exists()
    assert response.context["results"][0]["password"] == ""
