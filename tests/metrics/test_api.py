"""GET /api/metrics/: the series of one object, on a grid, for the people allowed to see it."""

import time
from datetime import timezone as dt_timezone

import pytest
from django.utils import timezone

import metrics
from clusters.models import Server
from labs.models import Course, Environment, EnvironmentState, Exercise
from tests.fixtures.actors import api_client, logged_in
from tests.labs.conftest import GOOD_EXERCISE

pytestmark = pytest.mark.django_db


def environment_of(owner, course):
    from labs.exercise_file import exercise_fields, parse_exercise

    exercise, _ = Exercise.objects.get_or_create(course=course, slug="two-tier", defaults=exercise_fields(parse_exercise(GOOD_EXERCISE, "two-tier.yaml")))
    return Environment.objects.create(exercise=exercise, owner=owner, state=EnvironmentState.READY)


@pytest.fixture
def course(carol):
    course = Course.objects.create(title="DevOps 101", slug="devops-101", code="DEVOPS101")
    course.teachers.add(carol)
    return course


def samples_over_the_last_minutes(name, obj, labels, minutes=10):
    now = timezone.now()
    for n in range(minutes * 4):
        metrics.record(name, n, labels, obj=obj, at=now - timezone.timedelta(seconds=15 * (minutes * 4 - n)))


def test_an_operator_reads_a_servers_series_on_a_step_grid(bob):
    server = Server.objects.create(name="web01", address="127.0.0.1")
    samples_over_the_last_minutes("filrouge_server_load1", server, {"server": "web01"})

    answer = api_client(bob).get("/api/metrics/", {"object_type": "server", "object_id": server.pk, "range": "15m", "step": 60})

    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["source"] == "database" and body["step"] == 60 and body["empty_reason"] == ""
    assert len(body["times"]) in (15, 16) and all(t % 60 == 0 for t in body["times"])  # and the minute still filling
    [series] = body["series"]
    assert series["name"] == "filrouge_server_load1" and series["labels"] == {"server": "web01"} and series["unit"] == "load"
    filled = [v for v in series["values"] if v is not None]
    assert 9 <= len(filled) <= 11 and filled == sorted(filled)


def test_a_live_chart_asks_only_for_what_came_after_its_cursor(bob):
    server = Server.objects.create(name="web01", address="127.0.0.1")
    samples_over_the_last_minutes("filrouge_server_load1", server, {"server": "web01"})
    cursor = (time.time() // 60) * 60 - 180

    body = api_client(bob).get("/api/metrics/", {"object_type": "server", "object_id": server.pk, "start": cursor, "step": 60}).json()

    assert body["times"][0] == cursor + 60 and len(body["times"]) in (3, 4)


def test_a_student_reads_their_environments_series_and_nobody_elses(sam, dave, carol, course):
    mine, theirs = environment_of(sam, course), environment_of(dave, course)
    for environment in (mine, theirs):
        samples_over_the_last_minutes("filrouge_lab_environment_cpu_cores", environment, {"environment": environment.name}, minutes=2)

    own = api_client(sam).get("/api/metrics/", {"object_type": "environment", "object_id": mine.pk, "range": "15m"})
    other = api_client(sam).get("/api/metrics/", {"object_type": "environment", "object_id": theirs.pk, "range": "15m"})
    teacher = api_client(carol).get("/api/metrics/", {"object_type": "environment", "object_id": theirs.pk, "range": "15m"})

    assert own.status_code == 200 and [s["labels"]["environment"] for s in own.json()["series"]] == [mine.name]
    assert other.status_code == 404
    assert teacher.status_code == 200 and teacher.json()["series"][0]["labels"]["environment"] == theirs.name


def test_servers_and_the_job_queue_are_for_operators_only(sam, charlie):
    server = Server.objects.create(name="web01", address="127.0.0.1")
    assert api_client(sam).get("/api/metrics/", {"object_type": "server", "object_id": server.pk}).status_code == 404
    assert api_client(charlie).get("/api/metrics/", {"object_type": "jobs"}).status_code == 403
    assert api_client(sam).get("/api/metrics/", {"object_type": "nonsense", "object_id": 1}).status_code == 404


def test_it_says_why_a_chart_is_empty_and_refuses_too_many_points(bob):
    server = Server.objects.create(name="web01", address="127.0.0.1")
    client = api_client(bob)
    assert client.get("/api/metrics/", {"object_type": "server", "object_id": server.pk}).json()["empty_reason"] == "no-series"
    metrics.record("filrouge_server_load1", 1, {"server": "web01"}, obj=server, at=timezone.now() - timezone.timedelta(hours=3))
    assert client.get("/api/metrics/", {"object_type": "server", "object_id": server.pk, "range": "15m"}).json()["empty_reason"] == "no-points"
    refused = client.get("/api/metrics/", {"object_type": "server", "object_id": server.pk, "range": "7d", "step": 15})
    assert refused.status_code == 400 and "step" in str(refused.json())


def test_metrics_exposes_every_recent_series_with_its_labels_and_sample_time(client, bob):
    server = Server.objects.create(name="web01", address="127.0.0.1")
    moment = timezone.now()
    metrics.record("filrouge_server_load1", 0.75, {"server": "web01"}, obj=server, at=moment)

    text = client.get("/metrics").content.decode()

    assert f'filrouge_server_load1{{server="web01"}} 0.75 {int(moment.timestamp() * 1000)}' in text
    assert "filrouge_jobs{" in text  # the core's figures are still there


def test_the_server_service_and_dashboard_pages_carry_their_charts(bob):
    server = Server.objects.create(name="web01", address="127.0.0.1")
    page = logged_in(bob).get(f"/inventory/servers/{server.pk}/").content.decode()
    assert 'class="metric-chart"' in page and 'data-names="filrouge_server_load1"' in page and "<script>" not in page
    dashboard = logged_in(bob).get("/").content.decode()
    assert 'id="chart-dashboard-queue"' in dashboard and "Hosts over 90% disk" in dashboard


def test_at_the_samples_own_step_each_point_lands_in_its_slot_and_two_in_one_step_are_averaged(bob):
    server = Server.objects.create(name="web01", address="127.0.0.1")
    now = (time.time() // 15) * 15
    moment = timezone.datetime.fromtimestamp(now - 600, tz=dt_timezone.utc)
    for n in range(10):
        metrics.record("filrouge_server_load1", n, {"server": "web01"}, obj=server, at=moment + timezone.timedelta(seconds=15 * n))
    metrics.record("filrouge_server_load1", 4.0, {"server": "web01"}, obj=server, at=moment + timezone.timedelta(seconds=15 * 9 - 5))

    answer = api_client(bob).get("/api/metrics/", {"object_type": "server", "object_id": server.pk, "range": "15m", "step": 15}, HTTP_ACCEPT_ENCODING="gzip")

    assert answer.status_code == 200 and answer["Content-Encoding"] == "gzip" and answer["Content-Type"] == "application/json"
    import gzip
    import json

    body = json.loads(gzip.decompress(answer.content))
    [series] = body["series"]
    slot = body["times"].index(int(now - 600))
    assert series["values"][slot:slot + 10] == [0, 1, 2, 3, 4, 5, 6, 7, 8, (9 + 4) / 2]
    assert all(value is None for value in series["values"][:slot] + series["values"][slot + 10:])
    assert "Accept-Encoding" in answer["Vary"]
    plain = api_client(bob).get("/api/metrics/", {"object_type": "server", "object_id": server.pk, "range": "15m", "step": 15})
    assert not plain.has_header("Content-Encoding") and json.loads(plain.content)["series"][0]["values"][slot:slot + 10] == series["values"][slot:slot + 10]
