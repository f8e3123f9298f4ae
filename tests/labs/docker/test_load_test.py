"""A teacher's load test on a student's Docker lab environment, on the real engine."""

import pytest

from metrics.models import Series
from panel.jobs.models import JobEvent, Status
from tests.fixtures.actors import logged_in
from tests.labs.docker.conftest import job_text, run_job_now

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]

WEB = """
services:
  web:
    image: filrouge-lab/busybox:1
    command: ["sh", "-c", "mkdir -p /www && echo 'my notes' > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: ["${PORT_WEB}:8080"]
"""


def test_a_teacher_loads_a_students_web_port_and_sees_the_figures(carol, sam, ready_environment):
    environment = ready_environment(sam)
    compose = run_job_now(sam, "lab-compose", environment, compose=WEB)
    assert compose.status == Status.SUCCEEDED, job_text(compose)
    port = environment.port_map()["web"]

    job = run_job_now(carol, "lab-load-test", environment, port="web", path="/index.html", duration=3, concurrency=4)

    assert job.status == Status.SUCCEEDED, job_text(job)
    assert job.result["requests"] > 50 and job.result["errors"] == 0 and job.result["rps"] > 0 and job.result["p95"] > 0
    text = job_text(job)
    assert f"GET http://127.0.0.1:{port}/index.html: 4 clients" in text and f"web ({port})" in text
    seconds = [e.text for e in JobEvent.objects.filter(job=job, task="load").order_by("seq")][1:]
    assert len(seconds) >= 2 and all("req/s" in line and "p95" in line for line in seconds)
    # The series are the environment's: its page's chart reads them with the environment's permissions.
    rps = Series.objects.get(name="filrouge_loadtest_requests_per_second", object_type="environment", object_id=environment.pk)
    assert rps.labels == {"environment": environment.name} and rps.points.count() >= 2 and rps.last_value > 0
    assert Series.objects.filter(name="filrouge_loadtest_latency_p95_seconds", object_type="environment", object_id=environment.pk).exists()
    assert Series.objects.filter(name="filrouge_loadtest_errors_per_second", object_type="environment", object_id=environment.pk).exists()
    # The running containers publishing that port, charted beside the load (read every few seconds).
    replicas = Series.objects.get(name="filrouge_service_replicas_running", object_type="environment", object_id=environment.pk)
    assert replicas.labels == rps.labels and replicas.last_value == 1 and replicas.points.count() >= 2
    api = logged_in(carol).get("/api/metrics/", {"object_type": "environment", "object_id": environment.pk,
                                                 "names": "filrouge_loadtest_requests_per_second", "range": "15m"})
    assert api.status_code == 200 and any(v for s in api.json()["series"] for v in s["values"] if v)
    page = logged_in(carol).get(f"/labs/environments/{environment.pk}/").content.decode()
    assert f'data-job="{job.pk}"' in page and "req/s, p95" in page and "filrouge_service_replicas_running" in page


def test_it_fails_clearly_when_no_container_of_the_environment_publishes_the_port(carol, sam, ready_environment):
    environment = ready_environment(sam)

    job = run_job_now(carol, "lab-load-test", environment, port="web", duration=2, concurrency=2)

    assert job.status == Status.FAILED
    assert f"No running container of this environment publishes port {environment.port_map()['web']} (web)" in job.error
    assert not Series.objects.filter(object_type="environment", object_id=environment.pk, name__startswith="filrouge_loadtest").exists()
