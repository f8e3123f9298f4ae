"""The 600-byte nine-level alias bomb through every place the panel reads YAML from a
person: pages, API, uploads, management commands, and the job side (recipes, manifests,
kubeconfigs). Each refuses it with a message naming the limit, saves nothing, and the
web process's memory stays where it was."""

import json
import shutil
from pathlib import Path

import psutil
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from clusters.models import Cluster, Credential, Group, Server
from deployments.models import Service
from labs.models import Course, Exercise
from tests.fixtures.actors import api_client, logged_in
from tests.support.hostile import yaml_bomb

from .test_yaml_limits import refused_long_before

pytestmark = pytest.mark.django_db

BOMB = yaml_bomb()
LIMIT = "YAML_MAX_NODES"
LABS_DATA = Path(__file__).resolve().parents[2] / "labs" / "data"


@pytest.fixture
def docker_cluster(db):
    return Cluster.objects.create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")


@pytest.fixture
def course(db, carol):
    course = Course.objects.create(title="DevOps 101", slug="devops-101", code="DEVOPS101")
    course.teachers.add(carol)
    return course


def refused(response, status=400):
    text = response.content.decode()
    assert response.status_code == status, text[:2000]
    assert LIMIT in text, text[:4000]
    return text


def test_server_variables_in_the_form_refuse_the_bomb(bob):
    with refused_long_before():
        response = logged_in(bob).post("/inventory/servers/new/", {"name": "web01", "address": "10.0.0.1", "port": "22", "user": "root", "variables_text": BOMB})
    refused(response)
    assert not Server.objects.exists()


def test_group_variables_in_the_form_refuse_the_bomb(bob):
    with refused_long_before():
        response = logged_in(bob).post("/inventory/groups/new/", {"name": "europe", "variables_text": BOMB})
    refused(response)
    assert not Group.objects.exists()


def test_the_inventory_import_page_refuses_the_bomb(bob):
    with refused_long_before():
        response = logged_in(bob).post("/inventory/import/", {"text": BOMB, "format": "yaml", "confirm": "1"})
    refused(response)
    assert not Server.objects.exists()


def test_the_inventory_import_api_refuses_the_bomb(bob):
    with refused_long_before():
        response = api_client(bob).post("/api/inventory/import/", {"text": BOMB, "source": "hosts.yml", "format": "yaml"}, format="json")
    refused(response)
    assert LIMIT in response.json()["text"][0]


def test_the_import_inventory_command_refuses_the_bomb(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(BOMB)
    with refused_long_before(), pytest.raises(CommandError, match=LIMIT):
        call_command("import_inventory", str(path))


def test_a_playbook_sent_to_the_recipe_run_api_refuses_the_bomb(bob):
    with refused_long_before():
        response = api_client(bob).post("/api/recipe-runs/", {"playbook": BOMB, "limit": "all"}, format="json")
    refused(response)


def test_the_run_recipe_command_refuses_a_bomb_playbook(tmp_path):
    path = tmp_path / "site.yml"
    path.write_text(BOMB)
    with refused_long_before(), pytest.raises(CommandError, match=LIMIT):
        call_command("run_recipe", str(path), "--limit", "all")


def test_the_compose_import_page_refuses_the_bomb(bob, docker_cluster):
    with refused_long_before():
        response = logged_in(bob).post("/services/import/", {"cluster": docker_cluster.pk, "project": "shop", "text": BOMB, "confirm": "1"})
    refused(response)
    assert not Service.objects.exists()


def test_the_import_compose_command_refuses_the_bomb(tmp_path, docker_cluster):
    path = tmp_path / "compose.yaml"
    path.write_text(BOMB)
    with refused_long_before(), pytest.raises(CommandError, match=LIMIT):
        call_command("import_compose", str(path), "--cluster", docker_cluster.name, "--dry-run")


def test_a_students_compose_file_for_a_lab_refuses_the_bomb():
    from deployments.compose import ComposeError
    from labs.compose.guard import guard_compose

    with refused_long_before(), pytest.raises(ComposeError, match=LIMIT):
        guard_compose(BOMB, {"web": 20001})


def test_the_service_form_refuses_a_bomb_in_its_yaml_settings(bob, docker_cluster):
    with refused_long_before():
        response = logged_in(bob).post("/services/new/", {"name": "api", "cluster": docker_cluster.pk, "project": "shop", "image": "app/api", "tag": "1",
                                                           "replicas": 1, "spec_yaml": BOMB})
    refused(response)
    assert not Service.objects.exists()


def test_the_exercise_upload_refuses_the_bomb(course, carol):
    upload = SimpleUploadedFile("bomb.yaml", BOMB.encode(), content_type="application/yaml")
    with refused_long_before():
        response = logged_in(carol).post(f"/labs/courses/{course.pk}/import/", {"file": upload}, follow=True)
    assert LIMIT in response.content.decode()
    assert not Exercise.objects.exists()


def test_the_load_course_command_refuses_a_bomb_in_course_or_exercise_files(tmp_path):
    folder = tmp_path / "containers"
    shutil.copytree(LABS_DATA / "course-ok", folder)
    (folder / "a-two-tier.yaml").write_text(BOMB)
    with refused_long_before(), pytest.raises(CommandError, match=LIMIT):
        call_command("load_course", str(folder))
    (folder / "course.yaml").write_text(BOMB)
    with refused_long_before(), pytest.raises(CommandError, match=LIMIT):
        call_command("load_course", str(folder))
    assert not Course.objects.exists()


def test_a_kubeconfig_credential_refuses_the_bomb(bob):
    with refused_long_before():
        response = logged_in(bob).post("/inventory/credentials/new/?kind=kubeconfig", {"kind": "kubeconfig", "name": "kube", "secret_kubeconfig": BOMB})
    refused(response)
    assert not Credential.objects.exists()


def test_the_kubernetes_cluster_page_and_api_refuse_a_bomb_kubeconfig(bob):
    with refused_long_before():
        page = logged_in(bob).post("/inventory/clusters/kubernetes/new/", {"mode": "kubeconfig", "name": "k", "kubeconfig": BOMB})
        api = api_client(bob).post("/api/clusters/kubernetes/", {"name": "k", "kubeconfig": BOMB}, format="json")
    refused(page)
    refused(api)
    assert not Cluster.objects.exists()


def test_the_driver_refuses_a_stored_bomb_kubeconfig():
    from clusters.drivers.base import DriverError
    from clusters.drivers.kubernetes import parse_kubeconfig

    with refused_long_before(), pytest.raises(DriverError, match=LIMIT):
        parse_kubeconfig(BOMB)


def test_manifests_refuse_the_bomb_as_a_whole_stream_and_as_a_later_document():
    from clusters.kubernetes.manifests import ManifestInvalid, parse_documents

    first = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n"
    with refused_long_before(), pytest.raises(ManifestInvalid) as caught:
        parse_documents([("bomb.yaml", BOMB), ("later.yaml", first + BOMB)])
    problems = " ".join(caught.value.problems)
    assert "bomb.yaml, document 1" in problems and "later.yaml, document 2" in problems
    assert problems.count(LIMIT) == 2


def test_the_web_process_memory_stays_within_50_mb_while_refusing_bombs(bob, docker_cluster):
    """RSS of this (the web) process around bombs sent to three entry points, three times each."""
    client, api = logged_in(bob), api_client(bob)
    client.get("/inventory/servers/new/")  # warm up templates and imports first
    process = psutil.Process()
    idle = process.memory_info().rss
    peak = idle
    with refused_long_before(60):
        for _ in range(3):
            for response in (
                client.post("/inventory/servers/new/", {"name": "web01", "address": "10.0.0.1", "port": "22", "user": "root", "variables_text": BOMB}),
                api.post("/api/inventory/import/", {"text": BOMB, "source": "hosts.yml", "format": "yaml"}, format="json"),
                client.post("/services/import/", {"cluster": docker_cluster.pk, "project": "shop", "text": BOMB}),
            ):
                refused(response)
                peak = max(peak, process.memory_info().rss)
    growth_mb = (peak - idle) / 1024 / 1024
    assert growth_mb < 50, json.dumps({"idle_mb": idle / 1048576, "peak_mb": peak / 1048576})
