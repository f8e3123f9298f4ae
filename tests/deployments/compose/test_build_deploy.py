"""Compose projects built from source on the real engine: two `build:` services built from
their stored contexts, deployed, updated after a source change (new release, new image,
containers replaced), rolled back after the image was deleted (rebuilt from the stored
context), a failing build reported with its step; and on a single-node Swarm, pushed to a
real registry with a registry credential and run from there.

The base image is the test http app built from nothing (tests/support/images.py): no pull
is possible here, and the builds never pull (their FROM is on the engine)."""

import io

import pytest
from django.core.management import call_command

from deployments import naming, releases
from deployments.models import BuildContext, Service
from panel.jobs.models import Job

from ..conftest import answer, containers_of, job_text, registry_credential, versions_served, wait_for_job

pytestmark = [pytest.mark.docker, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

COMPOSE = """\
services:
  front:
    build: ./front
    ports: [{ports}]
    depends_on: [api]
  api:
    build:
      context: api
      dockerfile: docker/Dockerfile
      args: {{PAGE_TITLE: api}}
    ports: [{ports}]
    secrets: [api_token]
secrets:
  api_token:
    file: ./secrets/token.txt
"""
DOCKER_PORTS = '"127.0.0.1::8080"'
SWARM_PORTS = "{target: 8080, mode: host}"


def write_project(root, base_image, ports, front_page="front v1"):
    (root / "front" / "www").mkdir(parents=True, exist_ok=True)
    (root / "front" / "Dockerfile").write_text(f"FROM {base_image}\nCOPY www/ /www/\n")
    (root / "front" / "www" / "index.html").write_text(front_page)
    (root / "api" / "docker").mkdir(parents=True, exist_ok=True)
    (root / "api" / "www").mkdir(exist_ok=True)
    (root / "api" / "docker" / "Dockerfile").write_text(
        f"FROM {base_image}\nARG PAGE_TITLE\nCOPY www/ /www/\nRUN [\"/bin/sh\", \"-c\", \"echo \\\"$PAGE_TITLE v1\\\" > /www/index.html\"]\n"
    )
    (root / "api" / "www" / "health").write_text("ok\n")
    (root / "secrets").mkdir(exist_ok=True)
    (root / "secrets" / "token.txt").write_text("api-token-8848")
    (root / "compose.yaml").write_text(COMPOSE.format(ports=ports))
    return root


@pytest.fixture
def built_images(docker_client, project):
    """Removes the images the panel built for the project (and their registry tags) afterwards."""
    yield
    for image in docker_client.images.list():
        for tag in image.tags:
            if f"filrouge/{project}-" in tag:
                try:
                    docker_client.images.remove(tag, force=True, noprune=False)
                except Exception:  # noqa: BLE001 - a container of another test may hold it
                    pass


def import_and_deploy(folder, cluster, project, *extra):
    before = set(Job.objects.filter(kind="stack-deploy").values_list("pk", flat=True))
    out = io.StringIO()
    call_command("import_compose", str(folder), "--cluster", cluster.name, "--project", project, *extra, stdout=out)
    job = Job.objects.filter(kind="stack-deploy").exclude(pk__in=before).get()
    wait_for_job(job, timeout=300)
    assert job.status == "succeeded", f"{job.error}\n{job_text(job)}"
    return job, out.getvalue()


def test_two_build_services_are_built_deployed_and_updated_after_a_source_change(worker, alice, docker_client, docker_cluster, http_app_images, project, built_images, tmp_path):
    root = write_project(tmp_path / "shop", http_app_images["1"], DOCKER_PORTS)

    job, printed = import_and_deploy(root, docker_cluster, project)

    assert "built from source" in printed and "api-token-8848" not in printed
    log = job_text(job)
    front, api = Service.objects.get(project=project, name="front"), Service.objects.get(project=project, name="api")
    assert f"built filrouge/{project}-front:{front.spec['tag']}" in log and f"built filrouge/{project}-api:{api.spec['tag']}" in log
    assert "Step 1/2 : FROM" in log and "Step 4/4 : RUN" in log  # the build output streams into the job log
    assert job.result["services"] == ["api", "front"]  # dependencies first
    assert versions_served(docker_client, front) == ["front v1"]
    assert versions_served(docker_client, api) == ["api v1"]  # the build arg reached the Dockerfile
    (api_container,) = containers_of(docker_client, api, all=False)
    mounted = docker_client.api.get_archive(api_container["Id"], "/run/secrets/api_token")[0]
    assert b"api-token-8848" in b"".join(mounted)  # the compose secret is a file in the container
    assert "api-token-8848" not in log
    first_tag = front.spec["tag"]
    old_front = {item["Id"] for item in containers_of(docker_client, front)}

    (root / "front" / "www" / "index.html").write_text("front v2")
    job, _ = import_and_deploy(root, docker_cluster, project)

    front.refresh_from_db()
    api.refresh_from_db()
    assert front.spec["tag"] != first_tag and front.current_release.revision == 2
    assert front.current_release.spec["tag"] == front.spec["tag"]
    assert docker_client.images.get(f"filrouge/{project}-front:{front.spec['tag']}")
    assert versions_served(docker_client, front) == ["front v2"]
    assert not old_front & {item["Id"] for item in containers_of(docker_client, front)}  # containers replaced
    assert f"image filrouge/{project}-api:{api.spec['tag']} is already built from these sources" in job_text(job)
    assert BuildContext.objects.filter(service=front).count() == 2  # both revisions can be rebuilt

    # Rolling back to revision 1 after its image was deleted builds it again from the stored context.
    docker_client.images.remove(f"filrouge/{project}-front:{first_tag}", force=True)
    release, rollback_job = releases.rollback(front, alice, 1)
    wait_for_job(rollback_job, timeout=240)
    assert rollback_job.status == "succeeded", f"{rollback_job.error}\n{job_text(rollback_job)}"
    assert f"built filrouge/{project}-front:{first_tag}" in job_text(rollback_job)
    assert versions_served(docker_client, front) == ["front v1"]


def test_a_failing_build_fails_the_job_naming_the_step_and_the_engines_error(worker, alice, docker_client, docker_cluster, http_app_images, project, built_images, tmp_path):
    root = write_project(tmp_path / "broken", http_app_images["1"], DOCKER_PORTS)
    (root / "front" / "Dockerfile").write_text(f"FROM {http_app_images['1']}\nRUN [\"/bin/false\"]\n")
    out = io.StringIO()
    call_command("import_compose", str(root), "--cluster", docker_cluster.name, "--project", project, stdout=out)
    job = Job.objects.get(kind="stack-deploy")
    wait_for_job(job, timeout=240)
    assert job.status == "failed", job_text(job)
    assert f"The build of filrouge/{project}-front:" in job.error
    assert 'failed at Step 2/2 : RUN ["/bin/false"]' in job.error
    assert "returned a non-zero code: 1" in job.error
    assert "Service front failed" in job.error and "Deployed before it: api" in job.error


def test_on_swarm_the_built_images_are_pushed_to_the_registry_with_the_chosen_credential_and_run_from_it(
        worker, alice, docker_client, swarm_engine, swarm_cluster, registry_with_auth, http_app_images, project, built_images, tmp_path):
    registry = registry_with_auth
    credential = registry_credential(registry)
    root = write_project(tmp_path / "shop", http_app_images["1"], SWARM_PORTS)

    job, _ = import_and_deploy(root, swarm_cluster, project, "--registry", f"{registry.address}/lab", "--registry-credential", credential.name)

    front = Service.objects.get(project=project, name="front")
    assert front.spec["image"] == f"{registry.address}/lab/filrouge/{project}-front"
    assert front.registry_credential == credential
    assert front.spec["tag"] in registry.tags(f"lab/filrouge/{project}-front")
    assert f"pushed {front.spec['image']}:{front.spec['tag']}" in job_text(job)
    swarm_service = swarm_engine.api.inspect_service(naming.swarm_service_name(front))
    assert swarm_service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].startswith(f"{front.spec['image']}:{front.spec['tag']}")

    def served():
        containers = swarm_engine.api.containers(filters=naming.label_filter(naming.service_labels(front)))
        # IPv4 rows only: the engine may publish the IPv6 side on another port.
        ports = {p["PublicPort"] for item in containers for p in item.get("Ports") or [] if p.get("PublicPort") and ":" not in p.get("IP", "")}
        return [answer(port) for port in sorted(ports)]

    from tests.support.ports import wait_until

    seen = []
    try:
        wait_until(lambda: seen.append(served()) or seen[-1] == ["front v1"], timeout=90, message="the Swarm task to serve front v1")
    except TimeoutError:
        tasks = [(t["Status"]["State"], t["Status"].get("Err"), t["DesiredState"]) for t in swarm_engine.api.tasks(filters={"service": naming.swarm_service_name(front)})]
        raise AssertionError(f"served {seen[-3:]}; tasks {tasks}") from None
    api = Service.objects.get(project=project, name="api")
    secrets = swarm_engine.api.inspect_service(naming.swarm_service_name(api))["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"]
    assert [ref["File"]["Name"] for ref in secrets] == ["/run/secrets/api_token"]
    assert "api-token-8848" not in job_text(job) and registry.credentials[1] not in job_text(job)
