"""Services on a real single-node Swarm: deploy, scale, update, automatic and manual
rollback, remove, node drain and activate. Ports are published in host mode (the
routing mesh does not answer on these machines; see ENVIRONMENT.md)."""

import pytest

from deployments import naming, releases
from deployments.models import ReleaseStatus
from panel.jobs.services import start_job

from tests.deployments.conftest import answer, assert_succeeded, job_text, make_service, wait_for_job

pytestmark = [pytest.mark.docker, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

HOST_PORT = [{"container": 8080, "host_ip": "127.0.0.1", "mode": "host"}]


def task_containers(client, service):
    labels = naming.label_filter(naming.service_labels(service))
    return client.api.containers(filters=labels)


def served(client, service):
    versions = []
    for item in task_containers(client, service):
        port = next((p["PublicPort"] for p in item.get("Ports") or [] if p.get("PublicPort")), None)
        versions.append(answer(port) if port else None)
    return sorted(filter(None, versions))


def test_a_swarm_service_is_deployed_scaled_updated_rolled_back_and_removed(worker, bob, swarm_engine, swarm_cluster, pushed_images, project):
    client = swarm_engine
    service = make_service(swarm_cluster, project, image=pushed_images["repository"], tag="1", replicas=2, ports=HOST_PORT,
                           update={"parallelism": 1, "delay": 0, "monitor": 8},
                           secrets=[{"name": "db_password", "path": "/run/secrets/db_password"}])
    service.set_secrets({"db_password": "swarm-pw-4669"})
    service.save()

    release1, job = releases.deploy(service, bob)
    assert_succeeded(job)
    assert "swarm-pw-4669" not in job_text(job)
    task = client.containers.get(task_containers(client, service)[0]["Id"])
    assert task.exec_run("cat /run/secrets/db_password").output == b"swarm-pw-4669"
    assert [s["Spec"]["Name"] for s in client.api.secrets(filters={"label": f"{naming.PROJECT}={project}"})] == [f"{project}_web_db_password_" + __import__("hashlib").sha256(b"swarm-pw-4669").hexdigest()[:10]]
    swarm_service = client.api.inspect_service(f"{project}_web")
    assert swarm_service["Spec"]["UpdateConfig"]["Parallelism"] == 1
    assert swarm_service["Spec"]["UpdateConfig"]["FailureAction"] == "rollback"
    assert swarm_service["Spec"]["Labels"][naming.RELEASE] == "1"
    assert served(client, service) == ["version 1"] * 2

    assert_succeeded(releases.act(service, bob, "service-scale", {"replicas": 3}))
    assert served(client, service) == ["version 1"] * 3

    _release2, job = releases.deploy(service, bob, tag="2")
    assert_succeeded(job)
    assert served(client, service) == ["version 2"] * 3

    release3, job = releases.deploy(service, bob, tag="3")
    wait_for_job(job, timeout=240)
    assert job.status == "failed", job_text(job)
    assert "Swarm rolled revision 3 back" in job.error and "previous revision is serving again" in job.error, job.error
    release3.refresh_from_db()
    assert release3.status == ReleaseStatus.FAILED
    assert served(client, service) == ["version 2"] * 3

    release4, job = releases.rollback(service, bob, revision=1)
    assert_succeeded(job)
    assert release4.spec["tag"] == "1" and release4.rollback_of == release1
    assert served(client, service) == ["version 1"] * 3
    service.refresh_from_db()
    assert service.observed["desired"] == 3 and service.observed["running"] == 3

    assert_succeeded(releases.act(service, bob, "service-remove"))
    project_filter = {"label": [f"{naming.PROJECT}={project}"]}
    assert client.api.services(filters=project_filter) == []
    assert client.api.containers(all=True, filters=project_filter) == []
    assert client.api.networks(filters=project_filter) == []
    assert client.api.secrets(filters=project_filter) == []


def test_a_drained_node_sees_its_tasks_leave_and_an_activated_one_takes_them_back(worker, bob, swarm_engine, swarm_cluster, pushed_images, project):
    client = swarm_engine
    service = make_service(swarm_cluster, project, image=pushed_images["repository"], tag="1", replicas=2, ports=HOST_PORT)
    assert_succeeded(releases.deploy(service, bob)[1])
    node = client.api.nodes()[0]
    hostname = node["Description"]["Hostname"]

    try:
        job = assert_succeeded(start_job("swarm-node-availability", {"node": hostname, "availability": "drain", "wait_seconds": 30}, bob, target=swarm_cluster))
        text = job_text(job)
        assert "availability set to drain" in text and f"no task runs on {hostname} any more" in text, text
        assert task_containers(client, service) == []
        swarm_cluster.refresh_from_db()
        assert swarm_cluster.observed["nodes"][0]["availability"] == "drain"
    finally:
        job = assert_succeeded(start_job("swarm-node-availability", {"node": hostname, "availability": "active"}, bob, target=swarm_cluster))

    assert_succeeded(releases.act(service, bob, "service-restart"))
    assert served(client, service) == ["version 1"] * 2


def test_the_notes_stack_example_is_imported_and_deployed_as_a_stack(worker, alice, swarm_engine, swarm_cluster, pushed_images, http_app_images, project, tmp_path):
    import io

    from django.core.management import call_command

    from deployments.models import Service
    from panel.jobs.models import Job
    from tests.support.registry import push_image

    from tests.deployments.compose.test_import import example_text

    client, registry = swarm_engine, pushed_images["registry"]
    # The database stands in as the http app with a pg_isready that answers "ready".
    dockerfile = f"FROM {http_app_images['1']}\nRUN printf '#!/bin/sh\\nexit 0\\n' > /bin/pg_isready && chmod 755 /bin/pg_isready\n"
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag="filrouge-test/notes-db:16", rm=True)
    db_image = push_image(client, "filrouge-test/notes-db:16", registry, "filrouge/notes-db", "16")
    text = example_text().replace("postgres:16", db_image).replace("registry.example.test/notes/web:1.4.2", f"{pushed_images['repository']}:2")
    (tmp_path / "notes-stack.yaml").write_text(text)
    (tmp_path / ".env").write_text("NOTES_DB_PASSWORD=stack-pw-1618\n")
    out = io.StringIO()

    call_command("import_compose", str(tmp_path / "notes-stack.yaml"), "--cluster", swarm_cluster.name, "--project", project, stdout=out)

    job = Job.objects.get(kind="stack-deploy")
    assert f"Deploy job #{job.pk} started" in out.getvalue()
    wait_for_job(job, timeout=240)
    assert job.status == "succeeded", f"{job.error}\n{job_text(job)}"
    assert job.result == {"project": project, "services": ["db", "web"]}
    web = client.api.inspect_service(f"{project}_web")
    assert web["Spec"]["Mode"]["Replicated"]["Replicas"] == 2
    assert web["Spec"]["TaskTemplate"]["Resources"]["Limits"] == {"NanoCPUs": 500_000_000, "MemoryBytes": 256 * 1024 * 1024}
    assert web["Spec"]["UpdateConfig"]["Delay"] == 10_000_000_000
    assert "DATABASE_URL=postgres://notes:stack-pw-1618@db:5432/notes" in web["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert web["Spec"]["EndpointSpec"]["Ports"][0]["PublishMode"] == "ingress"
    db = client.api.inspect_service(f"{project}_db")
    assert db["Spec"]["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["Source"] == f"{project}_db_data"
    assert {s.name: s.status for s in Service.objects.filter(project=project)} == {"db": "deployed", "web": "deployed"}
    assert "stack-pw-1618" not in job_text(job)
