"""Who may start a lab load test, on what, and within which bounds (pages, API, the kind itself).

No Docker here: what is refused is refused before anything runs. tests/labs/docker/test_load_test.py
runs it for real."""

from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.test import override_settings
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from clusters.models import Cluster
from labs.models import AllocatedPort, Course, Enrolment, Environment, EnvironmentState, Exercise
from panel.accounts.models import Role
from panel.audit.models import AuditEvent
from panel.jobs.models import Job, Status
from panel.jobs.services import start_job
from tests.fixtures.actors import api_client, logged_in, make_user

pytestmark = pytest.mark.django_db

KIND = "lab-load-test"


@pytest.fixture
def tina(db):
    """A teacher of another course."""
    return make_user("tina", Role.TEACHER)


@pytest.fixture
def lab(carol, sam, dave, tina):
    host = Cluster.objects.create(name="lab-docker", kind="docker", endpoint="unix:///var/run/docker.sock")
    course = Course.objects.create(title="DevOps 101", slug="devops-101", code="DEVOPS101")
    course.teachers.add(carol)
    course.clusters.add(host)
    exercise = Exercise.objects.create(course=course, slug="web", title="Web", target="docker", start={"ports": ["web", "api"]})
    for student in (sam, dave):
        Enrolment.objects.create(course=course, student=student)
    environment = Environment.objects.create(exercise=exercise, owner=sam, cluster=host, state=EnvironmentState.READY,
                                             expires_at=timezone.now() + timedelta(hours=1))
    AllocatedPort.objects.create(environment=environment, cluster=host, name="web", port=20001)
    AllocatedPort.objects.create(environment=environment, cluster=host, name="api", port=20002)
    other_course = Course.objects.create(title="Other", slug="other", code="OTHER1")
    other_course.teachers.add(tina)
    return {"host": host, "course": course, "exercise": exercise, "environment": environment}


def params(environment, **extra):
    return {"environment": environment.pk, "port": "web", "duration": 5, "concurrency": 2, **extra}


def jobs():
    return Job.objects.filter(kind=KIND).count()


def test_a_teacher_starts_one_from_the_page_and_the_start_is_audited(lab, carol):
    environment = lab["environment"]
    client = logged_in(carol)

    response = client.post(f"/labs/environments/{environment.pk}/load-test/", {
        "port": "web", "path": "/index.html", "method": "GET", "concurrency": 3, "duration": 4, "expected_status": 200})

    assert response.status_code == 302 and response["Location"].endswith(f"/labs/environments/{environment.pk}/#load-test")
    job = Job.objects.get(kind=KIND)
    assert job.user == carol and job.target == environment
    assert job.params == {"environment": environment.pk, "port": "web", "service": "", "path": "/index.html", "method": "GET",
                          "concurrency": 3, "rate": None, "duration": 4, "expected_status": 200}
    audit = AuditEvent.objects.get(object_type=ContentType.objects.get_for_model(Job), object_id=str(job.pk))
    assert audit.action == "create" and audit.username == "carol" and audit.after["kind"] == KIND

    page = client.get(f"/labs/environments/{environment.pk}/").content.decode()
    assert 'id="load-test-form"' in page and 'id="chart-environment-loadtest"' in page
    assert "filrouge_loadtest_requests_per_second,filrouge_loadtest_latency_p95_seconds,filrouge_loadtest_errors_per_second" in page
    assert f'data-job="{job.pk}"' in page and "GET port web /index.html" in page
    grid = client.get(f"/labs/courses/{lab['course'].pk}/").content.decode()
    assert f'href="/labs/environments/{environment.pk}/#load-test"' in grid


def test_a_teacher_starts_one_through_the_jobs_api_and_the_start_is_audited(lab, carol):
    environment = lab["environment"]

    response = api_client(carol).post("/api/jobs/", {"kind": KIND, "params": params(environment, port="api")}, format="json")

    assert response.status_code == 201, response.data
    job = Job.objects.get(pk=response.data["id"])
    assert job.params["environment"] == environment.pk and job.params["port"] == "api"
    assert AuditEvent.objects.filter(object_type=ContentType.objects.get_for_model(Job), object_id=str(job.pk), username="carol", action="create").exists()


def test_a_student_never_starts_one_not_even_on_their_own_environment(lab, sam, dave):
    environment = lab["environment"]
    for student in (sam, dave):
        with pytest.raises(PermissionDenied):
            start_job(KIND, params(environment), student, target=environment)
        with pytest.raises(PermissionDenied):
            start_job(KIND, params(environment), student)
        assert api_client(student).post("/api/jobs/", {"kind": KIND, "params": params(environment)}, format="json").status_code == 403
    # The page: the owner is refused (403), another student does not even see the environment (404).
    assert logged_in(sam).post(f"/labs/environments/{environment.pk}/load-test/", {"port": "web"}).status_code == 403
    assert logged_in(dave).post(f"/labs/environments/{environment.pk}/load-test/", {"port": "web"}).status_code == 404
    owner_page = logged_in(sam).get(f"/labs/environments/{environment.pk}/").content.decode()
    assert 'id="load-test"' not in owner_page
    assert jobs() == 0


def test_a_teacher_of_another_course_and_an_operator_are_refused(lab, tina, bob):
    environment = lab["environment"]
    with pytest.raises(ValidationError) as refused:
        start_job(KIND, params(environment), tina)
    assert "No such environment" in str(refused.value.detail["environment"])
    with pytest.raises(PermissionDenied):
        start_job(KIND, params(environment), tina, target=environment)
    answer = api_client(tina).post("/api/jobs/", {"kind": KIND, "params": params(environment)}, format="json")
    assert answer.status_code == 400 and "No such environment" in str(answer.data["params"]["environment"])
    assert logged_in(tina).post(f"/labs/environments/{environment.pk}/load-test/", {"port": "web"}).status_code == 404
    # An operator runs load tests on the inventory, not on a course's students.
    with pytest.raises(PermissionDenied):
        start_job(KIND, params(environment), bob)
    assert jobs() == 0


def test_a_teacher_who_owns_an_environment_elsewhere_cannot_load_it(lab, tina):
    # tina sees her own environment of carol's course (as its owner), but does not teach that course.
    Enrolment.objects.create(course=lab["course"], student=tina)
    own = Environment.objects.create(exercise=lab["exercise"], owner=tina, cluster=lab["host"], state=EnvironmentState.READY)
    AllocatedPort.objects.create(environment=own, cluster=lab["host"], name="web", port=20003)
    with pytest.raises(PermissionDenied, match="Only a teacher of this environment's course"):
        start_job(KIND, params(own), tina)
    assert jobs() == 0


def test_no_url_and_no_port_outside_the_environment_can_be_given(lab, carol):
    environment = lab["environment"]
    client = api_client(carol)

    answer = client.post("/api/jobs/", {"kind": KIND, "params": params(environment, url="http://192.0.2.10/")}, format="json")
    assert answer.status_code == 400 and "loads the environment's own ports only" in str(answer.data["params"]["url"])
    for port in ("http://192.0.2.10:80/", "20001", "22", "ssh"):
        answer = client.post("/api/jobs/", {"kind": KIND, "params": params(environment, port=port)}, format="json")
        assert answer.status_code == 400 and "api, web" in str(answer.data["params"]["port"]), (port, answer.data)
    # Nor a path that is a URL of its own.
    answer = client.post("/api/jobs/", {"kind": KIND, "params": params(environment, path="http://192.0.2.10/")}, format="json")
    assert answer.status_code == 400 and "path" in answer.data["params"]
    # The page's form offers the environment's own port names only.
    response = logged_in(carol).post(f"/labs/environments/{environment.pk}/load-test/", {
        "port": "elsewhere", "path": "/", "method": "GET", "concurrency": 1, "duration": 1, "expected_status": 200})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert jobs() == 0


def test_it_is_bounded_by_the_lab_caps_and_the_load_test_settings(lab, carol):
    environment = lab["environment"]
    with override_settings(LABS_LOADTEST_MAX_CONCURRENCY=20, LABS_LOADTEST_MAX_SECONDS=60, LABS_LOADTEST_MAX_RATE=100):
        with pytest.raises(ValidationError) as refused:
            start_job(KIND, params(environment, concurrency=21, duration=61, rate=101), carol, target=environment)
    detail = refused.value.detail
    assert "FILROUGE_LABS_LOADTEST_MAX_CONCURRENCY" in str(detail["concurrency"])
    assert "FILROUGE_LABS_LOADTEST_MAX_SECONDS" in str(detail["duration"]) and "FILROUGE_LABS_LOADTEST_MAX_RATE" in str(detail["rate"])
    # The operator's limits of every load test hold too, whichever is lower.
    with override_settings(LOADTEST_MAX_CONCURRENCY=5, LABS_LOADTEST_MAX_CONCURRENCY=50):
        with pytest.raises(ValidationError) as refused:
            start_job(KIND, params(environment, concurrency=6), carol, target=environment)
    assert "FILROUGE_LOADTEST_MAX_CONCURRENCY" in str(refused.value.detail["concurrency"])
    assert jobs() == 0


def test_only_a_ready_environment_and_one_load_test_at_a_time(lab, carol):
    environment = lab["environment"]
    first = start_job(KIND, params(environment), carol, target=environment)
    with pytest.raises(ValidationError) as refused:
        start_job(KIND, params(environment), carol, target=environment)
    assert f"Load test #{first.pk} is still running" in str(refused.value.detail["environment"])

    Job.objects.filter(pk=first.pk).update(status=Status.SUCCEEDED)
    Environment.objects.filter(pk=environment.pk).update(state=EnvironmentState.LAUNCHING)
    environment.refresh_from_db()
    with pytest.raises(ValidationError) as refused:
        start_job(KIND, params(environment), carol, target=environment)
    assert "only a ready environment" in str(refused.value.detail["environment"])
    page = logged_in(carol).get(f"/labs/environments/{environment.pk}/").content.decode()
    assert 'id="load-test-unavailable"' in page and 'id="load-test-form"' not in page


def test_an_admin_may_and_a_retry_revalidates(lab, alice, carol):
    environment = lab["environment"]
    job = start_job(KIND, params(environment), alice, target=environment)
    Job.objects.filter(pk=job.pk).update(status=Status.SUCCEEDED)
    job.refresh_from_db()
    from panel.jobs.services import retry_job

    again = retry_job(job, carol)
    assert again.params == job.params and again.target == environment

