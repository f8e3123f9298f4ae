"""The `lab-compose` job and its page and API: a student runs a compose file in their own project only."""

import pytest
from rest_framework.exceptions import ValidationError

from labs.checks import load_all
from labs.checks.base import CHECKS
from labs.providers import provider_for
from panel.jobs.models import Job, Status
from tests.fixtures.actors import api_client, logged_in

from tests.labs.docker.conftest import job_text, labelled, run_job_now

pytestmark = pytest.mark.django_db(transaction=True)

GOOD = """
services:
  db:
    image: filrouge-lab/busybox:1
    command: ["sh", "-c", "mkdir -p /data && echo 'my notes' > /data/index.html && httpd -f -p 9000 -h /data"]
    volumes: ["db_data:/data"]
  web:
    image: filrouge-lab/busybox:1
    command: ["sh", "-c", "mkdir -p /www && until wget -q -O /www/index.html http://db:9000/; do sleep 0.2; done; httpd -f -p 8080 -h /www"]
    ports: ["${PORT_WEB}:8080"]
    depends_on: [db]
volumes:
  db_data: {}
"""

HOSTILE = """
services:
  pwn:
    image: filrouge-lab/busybox:1
    privileged: true
    network_mode: host
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
      - /:/host
"""


def test_it_runs_the_students_file_in_their_project_and_the_checks_pass_after_and_fail_before(sam, ready_environment, ctx, docker_client):
    environment = ready_environment(sam)
    load_all()
    with provider_for(environment, ctx).check_target() as target:
        before = CHECKS["http"]({"port": "web", "contains": "my notes"}, target)
        assert not before.passed and "nothing answers" in before.detail

    job = run_job_now(sam, "lab-compose", environment, compose=GOOD)
    assert job.status == Status.SUCCEEDED, job_text(job)
    assert job.result == {"services": ["db", "web"], "ports": {"web": environment.port_map()["web"]}}
    assert "2 service(s) accepted: db, web" in job_text(job)
    assert sorted(labelled(docker_client, environment)["containers"]) == sorted(
        [f"{environment.access['docker']['project']}-db", f"{environment.access['docker']['project']}-web"]
    )

    with provider_for(environment, ctx).check_target() as target:
        after = CHECKS["http"]({"port": "web", "contains": "my notes"}, target)
        assert after.passed, after.detail
        assert CHECKS["docker.volume_mounted"]({"service": "db", "target": "/data"}, target).passed

    again = run_job_now(sam, "lab-compose", environment, compose=GOOD.replace("my notes", "new notes"))
    assert again.status == Status.SUCCEEDED, job_text(again)
    assert len(labelled(docker_client, environment)["containers"]) == 2, "a second run replaces the containers"


def test_it_refuses_a_privileged_host_mounting_file_before_queueing_and_starts_nothing(sam, ready_environment, docker_client):
    environment = ready_environment(sam)
    from panel.jobs.services import start_job

    with pytest.raises(ValidationError) as caught:
        start_job("lab-compose", {"compose": HOSTILE}, sam, target=environment)
    problems = caught.value.detail["compose"]
    text = "\n".join(map(str, problems))
    assert "line 5: services.pwn.privileged: privileged containers are not allowed" in text
    assert "line 6: services.pwn.network_mode: network_mode: host is refused" in text
    assert "line 8: services.pwn.volumes[0]: /var/run/docker.sock: mounting the Docker socket is refused" in text
    assert "line 9: services.pwn.volumes[1]: / is a host path" in text
    assert not Job.objects.filter(kind="lab-compose").exists()
    assert labelled(docker_client, environment)["containers"] == []


def test_the_worker_guards_again_and_fails_the_job_when_the_file_is_refused(sam, ready_environment, docker_client):
    environment = ready_environment(sam)
    from django.contrib.contenttypes.models import ContentType

    from panel.jobs.runner import execute

    # As if the file had been accepted and the exercise changed before the worker ran it.
    job = Job.objects.create(
        kind="lab-compose", params={"compose": HOSTILE, "filename": "compose.yaml"}, user=sam, timeout=600,
        target_type=ContentType.objects.get_for_model(environment), target_id=str(environment.pk),
    )
    execute(job.pk)
    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert "The compose file was refused (4 problem(s)); nothing was started." in job.error
    assert "mounting the Docker socket is refused" in job_text(job)
    assert labelled(docker_client, environment)["containers"] == []


def test_the_page_shows_what_the_student_was_given_and_starts_a_job(sam, ready_environment):
    environment = ready_environment(sam)
    client = logged_in(sam)
    url = f"/labs/environments/{environment.pk}/compose/"
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert environment.access["docker"]["project"] in body
    assert f"<td>{environment.port_map()['web']}</td>" in body and "${PORT_WEB}:CONTAINER_PORT" in body

    refused = client.post(url, {"compose": HOSTILE})
    assert refused.status_code == 400
    assert "privileged containers are not allowed" in refused.content.decode()
    assert not Job.objects.filter(kind="lab-compose").exists()

    accepted = client.post(url, {"compose": GOOD})
    job = Job.objects.get(kind="lab-compose")
    assert accepted.status_code == 302 and accepted["Location"] == f"/jobs/{job.pk}/"
    assert job.user == sam and job.target_id == str(environment.pk)
    assert "my notes" in client.get(url).content.decode(), "the page offers the last file again"


def test_only_the_owner_submits_a_teacher_reads_and_others_do_not_see_it(sam, dave, carol, charlie, ready_environment):
    environment = ready_environment(sam)
    url = f"/labs/environments/{environment.pk}/compose/"
    assert logged_in(dave).get(url).status_code == 404
    assert logged_in(dave).post(url, {"compose": GOOD}).status_code == 404
    assert logged_in(charlie).get(url).status_code == 404
    teacher = logged_in(carol)
    assert teacher.get(url).status_code == 200
    assert 'id="compose-form"' not in teacher.get(url).content.decode()
    assert teacher.post(url, {"compose": GOOD}).status_code == 403
    assert not Job.objects.filter(kind="lab-compose").exists()


def test_the_api_takes_the_file_from_the_owner_only(sam, dave, carol, ready_environment):
    environment = ready_environment(sam)
    url = f"/api/labs/environments/{environment.pk}/compose/"
    assert api_client(dave).post(url, {"compose": GOOD}, format="json").status_code == 404
    assert api_client(carol).post(url, {"compose": GOOD}, format="json").status_code == 403
    bad = api_client(sam).post(url, {"compose": HOSTILE}, format="json")
    assert bad.status_code == 400 and any("Docker socket" in problem for problem in bad.json()["compose"])
    good = api_client(sam).post(url, {"compose": GOOD}, format="json")
    assert good.status_code == 202 and good.json()["job"]["kind"] == "lab-compose"


def test_images_come_from_the_registry_the_exercise_allows_and_no_other(sam, ready_environment, registry, http_app_images, docker_client):
    from tests.support.registry import push_image

    environment = ready_environment(sam)
    image = push_image(docker_client, http_app_images["1"], registry, "lab/web", "1")
    file = f'services:\n  web:\n    image: {image}\n    ports: ["${{PORT_WEB}}:8080"]\n'

    with pytest.raises(ValidationError) as caught:
        run_job_now(sam, "lab-compose", environment, compose=file)
    assert f"line 3: services.web.image: registry {registry.address} is not allowed for this exercise" in str(caught.value.detail["compose"])

    exercise = environment.exercise
    exercise.start = {**exercise.start, "registries": [registry.address]}
    exercise.save(update_fields=["start"])
    environment.refresh_from_db()
    job = run_job_now(sam, "lab-compose", environment, compose=file)
    assert job.status == Status.SUCCEEDED, job_text(job)
    assert f"pulled {image}" in job_text(job)
    load_all()
    from tests.support.ports import wait_until

    with provider_for(environment, None).check_target() as target:
        wait_until(lambda: CHECKS["http"]({"port": "web", "contains": "version 1"}, target).passed, timeout=20, message="the pulled image to answer")


def test_an_image_missing_from_the_lab_host_fails_the_job_with_what_to_do_and_starts_nothing(sam, ready_environment, docker_client):
    environment = ready_environment(sam)
    job = run_job_now(sam, "lab-compose", environment, compose="services:\n  web:\n    image: filrouge-test/not-built-anywhere:7\n")
    assert job.status == Status.FAILED
    assert job.error == (
        "Image filrouge-test/not-built-anywhere:7 (service web) is not on the lab Docker host, and its registry "
        "is not one this course allows. Use an image your teacher named."
    )
    assert labelled(docker_client, environment)["containers"] == []
