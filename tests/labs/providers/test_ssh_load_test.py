"""A teacher's load test on a port of a student's Debian host (real container, real sshd tunnel)."""

import pytest

from labs.models import Environment
from metrics.models import Series
from panel.jobs.models import Status
from tests.labs.jobhelpers import job_text, run_now
from tests.labs.providers.conftest import make_exercise
from tests.support.ports import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("lab_host_base", "lab_sweep"), pytest.mark.ssh, pytest.mark.docker]


def host_container(docker_client, environment):
    labels = environment.labels()
    [container] = docker_client.containers.list(filters={"label": [f"filrouge.lab={labels['filrouge.lab']}", f"filrouge.env={labels['filrouge.env']}"]})
    return container


def test_a_teacher_loads_the_app_on_a_students_host_through_the_panels_tunnel(ssh_course, sam, carol, docker_client):
    environment = Environment.objects.create(exercise=make_exercise(ssh_course, "ssh-harden-systemd"), owner=sam)
    launch = run_now("lab-launch", environment, user=sam)
    assert launch.status == "succeeded", job_text(launch)
    # What the starter exercise asks for: the notes app on port 8000, which only the host itself reaches.
    container = host_container(docker_client, environment)
    container.exec_run(["sh", "-c", "mkdir -p /srv/notes && echo 'my notes' > /srv/notes/index.html && "
                                    "nohup python3 -m http.server 8000 --directory /srv/notes >/tmp/notes.log 2>&1 &"], detach=True)
    wait_until(lambda: container.exec_run(["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/', timeout=1)"]).exit_code == 0,
               timeout=20, message="the notes app did not start on the lab host")
    assert 8000 not in environment.ports  # not published: the load must go through the host's sshd

    job = run_now("lab-load-test", environment, user=carol, port="8000", path="/index.html", duration=3, concurrency=4)

    assert job.status == Status.SUCCEEDED, job_text(job)
    assert job.result["requests"] > 20 and job.result["errors"] == 0 and job.result["tunnel_refused"] == 0
    text = job_text(job)
    assert f"GET http://{environment.name}:8000/index.html: 4 clients" in text and "through the panel's SSH tunnel" in text
    assert "PRIVATE KEY" not in text
    rps = Series.objects.get(name="filrouge_loadtest_requests_per_second", object_type="environment", object_id=environment.pk)
    assert rps.points.count() >= 2 and rps.last_value > 0

    # A port where nothing listens fails at once with the reason; the SSH ports are refused before anything runs.
    nothing = run_now("lab-load-test", environment, user=carol, port="8001", duration=2, concurrency=2)
    assert nothing.status == Status.FAILED and "nothing answers on port 8001" in nothing.error
    from rest_framework.exceptions import ValidationError

    for port in ("22", "2222", "0", "http://192.0.2.1/"):
        with pytest.raises(ValidationError):
            run_now("lab-load-test", environment, user=carol, port=port, duration=2)
