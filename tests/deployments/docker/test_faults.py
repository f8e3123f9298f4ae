"""Each fault ends in a failed job with a message a person can act on, and whatever ran
before keeps serving. Real engine, real registry (with and without auth), real worker."""

import socket

import pytest

from clusters.models import Cluster
from deployments import releases
from deployments.models import ServiceStatus
from panel.jobs.models import JobEvent
from tests.support.registry import push_image

from tests.deployments.conftest import assert_succeeded, containers_of, job_text, make_service, registry_credential, versions_served, wait_for_job

pytestmark = [pytest.mark.docker, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def deploy_and_fail(service, user, **kwargs):
    _release, job = releases.deploy(service, user, **kwargs)
    wait_for_job(job)
    assert job.status == "failed", f"{job.status}: {job.error}\n{job_text(job)}"
    return job


def test_an_image_missing_from_the_registry_fails_and_the_previous_release_keeps_serving(worker, bob, docker_client, docker_cluster, pushed_images, project):
    service = make_service(docker_cluster, project, image=pushed_images["repository"], tag="1")
    assert_succeeded(releases.deploy(service, bob)[1])

    job = deploy_and_fail(service, bob, tag="no-such-tag")

    assert "is not in its registry" in job.error and "no-such-tag" in job.error
    assert versions_served(docker_client, service) == ["version 1"]


def test_a_private_registry_is_pulled_from_with_its_credential_and_a_wrong_password_is_refused(worker, bob, docker_client, docker_cluster, http_app_images, registry_with_auth, project):
    pushed = push_image(docker_client, http_app_images["2"], registry_with_auth, f"private/{project}", "2")
    docker_client.images.remove(pushed)  # the deploy must pull it, with the credential
    service = make_service(docker_cluster, project, image=pushed.rsplit(":", 1)[0], tag="2")
    service.registry_credential = registry_credential(registry_with_auth, password="wrong-password-123")
    service.save()

    job = deploy_and_fail(service, bob)
    assert "refused" in job.error and "registry credential" in job.error, job.error
    assert "wrong-password-123" not in job_text(job)

    service.registry_credential = registry_credential(registry_with_auth)
    service.save()
    assert_succeeded(releases.deploy(service, bob)[1])
    assert versions_served(docker_client, service) == ["version 2"]
    assert registry_with_auth.credentials[1] not in job_text(service.releases.first().job)


def test_a_taken_host_port_fails_with_the_port_named(worker, bob, docker_client, docker_cluster, pushed_images, project):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        service = make_service(docker_cluster, project, image=pushed_images["repository"], tag="1",
                               ports=[{"container": 8080, "published": port, "host_ip": "127.0.0.1"}])

        job = deploy_and_fail(service, bob)

    assert "already taken" in job.error and str(port) in job.error, job.error
    assert containers_of(docker_client, service) == []


def test_a_container_that_exits_at_once_fails_with_its_exit_code_and_output(worker, bob, docker_client, docker_cluster, pushed_images, project):
    service = make_service(docker_cluster, project, image=pushed_images["repository"], tag="1", command=["sh", "-c", "echo cannot open config; exit 3"], restart_policy="no")

    job = deploy_and_fail(service, bob)

    assert "exited at once (exit code 3)" in job.error and "cannot open config" in job.error, job.error
    assert containers_of(docker_client, service) == []
    service.refresh_from_db()
    assert service.status == ServiceStatus.FAILED and service.current_release is None


def test_a_health_check_that_never_passes_rolls_back_and_the_previous_release_keeps_serving(worker, bob, docker_client, docker_cluster, pushed_images, project):
    service = make_service(docker_cluster, project, image=pushed_images["repository"], tag="1")
    assert_succeeded(releases.deploy(service, bob)[1])
    service.refresh_from_db()
    service.spec = {**service.spec, "tag": "2", "health_check": {"type": "http", "port": 8080, "path": "/not-there", "interval": 0.5, "timeout": 1, "retries": 2, "start_period": 0, "command": []}}
    service.save()

    job = deploy_and_fail(service, bob)

    assert "unhealthy" in job.error and "404" in job.error and "Rolled back to revision 1" in job.error, job.error
    assert versions_served(docker_client, service) == ["version 1"]


def test_more_replicas_than_one_on_a_fixed_host_port_are_refused_before_anything_changes(worker, bob, docker_client, docker_cluster, pushed_images, project):
    service = make_service(docker_cluster, project, image=pushed_images["repository"], tag="1", replicas=2,
                           ports=[{"container": 8080, "published": 18080, "host_ip": "127.0.0.1"}])

    job = deploy_and_fail(service, bob)

    assert "cannot share host port 18080" in job.error and "Swarm" in job.error
    assert containers_of(docker_client, service) == []


def test_an_unreachable_engine_fails_the_deploy_with_the_endpoint_named(worker, bob, db, project):
    for endpoint, expected in (("unix:///tmp/filrouge-no-such.sock", "No Docker socket at /tmp/filrouge-no-such.sock"),
                               ("tcp://127.0.0.1:9", "needs a 'docker-tls' credential")):
        cluster = Cluster.objects.create(name=f"gone-{endpoint[-4:].strip('/.:')}", kind="docker", endpoint=endpoint)
        service = make_service(cluster, project, image="filrouge-test/httpapp", tag="1")

        job = deploy_and_fail(service, bob)

        assert expected in job.error, job.error


def test_secrets_reach_the_container_as_env_and_file_but_never_a_job_line(worker, bob, docker_client, docker_cluster, pushed_images, project):
    service = make_service(
        docker_cluster, project, image=pushed_images["repository"], tag="1",
        command=["sh", "-c", "echo token is $API_TOKEN; exec httpd -f -p 8080 -h /www"],
        secrets=[{"name": "API_TOKEN"}, {"name": "db_password", "path": "/run/secrets/db_password"}],
        config_files=[{"path": "/etc/app/app.ini", "content": "[app]\nmode = test\n"}],
    )
    service.set_secrets({"API_TOKEN": "tok-31415926535", "db_password": "pw-27182818284"})
    service.save()

    _release, job = releases.deploy(service, bob)
    assert_succeeded(job)
    log_job = assert_succeeded(releases.act(service, bob, "service-logs", {"tail": 10}))

    container = docker_client.containers.get(containers_of(docker_client, service)[0]["Id"])
    assert container.exec_run("cat /run/secrets/db_password").output == b"pw-27182818284"
    assert container.exec_run("cat /etc/app/app.ini").output == b"[app]\nmode = test\n"
    assert b"tok-31415926535" in container.exec_run("sh -c 'echo $API_TOKEN'").output
    stored = "\n".join(JobEvent.objects.filter(job__in=[job, log_job]).values_list("text", flat=True))
    assert "token is [redacted]" in stored
    assert "tok-31415926535" not in stored and "pw-27182818284" not in stored


def test_a_stopped_service_scales_back_up_with_fresh_replicas_and_restart_keeps_it_serving(worker, bob, docker_client, docker_cluster, pushed_images, project):
    service = make_service(docker_cluster, project, image=pushed_images["repository"], tag="1")
    assert_succeeded(releases.deploy(service, bob)[1])

    assert_succeeded(releases.act(service, bob, "service-stop"))
    service.refresh_from_db()
    assert service.status == ServiceStatus.STOPPED and versions_served(docker_client, service) == []
    assert [c["State"] for c in containers_of(docker_client, service)] == ["exited"]

    assert_succeeded(releases.act(service, bob, "service-scale", {"replicas": 2}))
    assert versions_served(docker_client, service) == ["version 1", "version 1"]
    assert_succeeded(releases.act(service, bob, "service-restart"))
    assert versions_served(docker_client, service) == ["version 1", "version 1"]
    stats = assert_succeeded(releases.act(service, bob, "service-stats"))
    service.refresh_from_db()
    assert stats.result == {"containers": 2} and len(service.observed["stats"]["rows"]) == 2
    assert all(row["memory_bytes"] > 0 for row in service.observed["stats"]["rows"])
