"""Compose import: the course's example file, old and new formats, interpolation,
unsupported keys listed, broken files refused with their line; and the command line."""

import os
import textwrap
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from clusters.models import Cluster
from deployments.compose import ComposeError, parse_compose, target_problems
from deployments.models import Service

EXAMPLE = Path(os.environ.get("FILROUGE_SHARED", Path(__file__).resolve().parents[4] / "shared")) / "examples/compose/notes-stack.yaml"


def example_text():
    if not EXAMPLE.exists():
        pytest.fail(f"the shared compose example is missing at {EXAMPLE}")
    return EXAMPLE.read_text()


def test_the_notes_stack_example_becomes_two_services_with_everything_the_panel_supports(tmp_path):
    (tmp_path / ".env").write_text("DEBUG=0\n")
    plan = parse_compose(example_text(), filename="notes-stack.yaml", project="notes", variables={"NOTES_DB_PASSWORD": "s3cret-pw"}, base_dir=tmp_path)

    db, web = {item.name: item for item in plan.services}["db"], {item.name: item for item in plan.services}["web"]
    assert (db.spec["image"], db.spec["tag"]) == ("postgres", "16")
    assert db.spec["restart_policy"] == "always"
    assert db.spec["env"] == {"POSTGRES_DB": "notes", "POSTGRES_USER": "notes"}
    assert db.secrets == {"POSTGRES_PASSWORD": "s3cret-pw"}
    assert db.spec["volumes"] == [{"source": "db_data", "target": "/var/lib/postgresql/data", "read_only": False, "size_mib": None}]
    assert db.spec["health_check"]["command"] == ["pg_isready -U notes"]
    assert db.spec["health_check"]["interval"] == 10 and db.spec["health_check"]["retries"] == 5
    assert (web.spec["image"], web.spec["tag"]) == ("registry.example.test/notes/web", "1.4.2")
    assert web.spec["replicas"] == 2 and web.spec["depends_on"] == ["db"]
    assert web.spec["ports"] == [{"container": 8000, "published": 8000, "protocol": "tcp", "host_ip": "0.0.0.0", "mode": "ingress"}]
    assert web.spec["resources"]["cpu"] == 0.5 and web.spec["resources"]["memory_mib"] == 256
    assert web.spec["update"]["parallelism"] == 1 and web.spec["update"]["delay"] == 10
    assert web.spec["restart_policy"] == "on-failure"
    assert web.spec["env"] == {"DEBUG": "0"}
    assert web.secrets == {"DATABASE_URL": "postgres://notes:s3cret-pw@db:5432/notes"}  # it carries the password
    assert "deployed after db is healthy" in web.notes
    assert plan.unsupported == [] and plan.warnings == []
    assert "s3cret-pw" not in plan.preview()


def test_an_unset_variable_without_default_is_a_warning_and_a_required_one_an_error_with_its_line():
    plan = parse_compose(example_text(), filename="notes-stack.yaml", project="notes", variables={})
    assert "variable NOTES_DB_PASSWORD is not set; an empty string was used." in plan.warnings
    assert "services.web.env_file[0] (line 24): .env cannot be read from pasted text; add its variables to the environment instead." in plan.unsupported

    text = "services:\n  web:\n    image: app:${TAG:?give the tag}\n"
    with pytest.raises(ComposeError, match=r"^compose.yaml, line 3, column 12: variable TAG is required: give the tag.$"):
        parse_compose(text)


def test_an_old_version_3_file_with_anchors_and_unsupported_keys_is_read_and_they_are_listed():
    text = textwrap.dedent("""\
        version: "3.8"
        x-common: &common
          restart: unless-stopped
          labels:
            team: ops
        services:
          api:
            <<: *common
            image: "${REGISTRY:-127.0.0.1:5000}/api"
            build: .
            container_name: the-api
            command: httpd -f -p 8080
            ports: ["127.0.0.1:8080:8080", "9000-9001:9000-9001"]
            cap_add: [NET_ADMIN]
            deploy:
              placement: {constraints: [node.role == manager]}
              update_config: {parallelism: 2, delay: 500ms, order: stop-first}
            volumes: ["cache:/cache:ro", "./conf:/conf"]
            environment: ["PRICE=$$5", "MODE=${MODE-prod}"]
        secrets:
          token: {file: ./token.txt}
        """)

    plan = parse_compose(text, filename="old.yml", project="shop")

    api = plan.services[0]
    assert (api.spec["image"], api.spec["tag"]) == ("127.0.0.1:5000/api", "latest")
    assert api.spec["command"] == ["httpd", "-f", "-p", "8080"]
    assert api.spec["restart_policy"] == "unless-stopped" and api.spec["labels"] == {"team": "ops"}
    assert api.spec["env"] == {"PRICE": "$5", "MODE": "prod"}
    assert api.spec["ports"] == [{"container": 8080, "published": 8080, "protocol": "tcp", "host_ip": "127.0.0.1", "mode": "ingress"}]
    assert api.spec["update"]["parallelism"] == 2 and api.spec["update"]["delay"] == 0.5 and api.spec["update"]["order"] == "stop-first"
    assert api.spec["volumes"] == [{"source": "cache", "target": "/cache", "read_only": True, "size_mib": None}]
    assert plan.unsupported == [
        "secrets.token.file (line 21): ./token.txt cannot be read from pasted text; upload the project folder as an archive, or set the value on the service.",
        "services.api.container_name (line 11): not supported (the panel names containers itself (<project>-<service>-r<revision>-<n>); other services reach it by its service name)",
        "services.api.cap_add (line 14): not supported",
        "services.api.build (line 10): the build context cannot be read from pasted text; the image 127.0.0.1:5000/api is deployed as it is (upload the project folder as an archive to build it)",
        "services.api.ports[1] (line 13): 9000-9001:9000-9001 (port ranges and IPv6 short syntax are not supported; use the long syntax)",
        "services.api.volumes[1] (line 18): ./conf is a path relative to the compose file; give an absolute path or a named volume",
        "services.api.deploy.placement (line 16): not supported",
    ]
    assert any(note.startswith("version: '3.8' is obsolete") for note in plan.notes)
    assert "services.api.volumes[0] (line 18): cache is not declared under the top-level volumes; it is created as a named volume." in plan.warnings
    preview = plan.preview()
    assert "Not supported (not imported):" in preview and "cap_add" in preview


@pytest.mark.parametrize("text, message", [
    ("services:\n  web:\n    image: app\n   ports: [80]\n", r"^broken.yaml, line 4, column 4: "),
    ("services:\n\tweb:\n    image: app\n", r"^broken.yaml, line 2, column 1: .*tabs cannot indent YAML"),
    ("services:\r\n  web:\r\n    image: [app\r\n", r"^broken.yaml, line 4, column 1: "),
    ("services:\n  web:\n    command: run\n", r"^broken.yaml: services.web \(line 2\): a service needs an `image` or a `build` \(neither is given\).$"),
    ("- just\n- a list\n", r"^broken.yaml: a compose file is a mapping"),
    ("services:\n  web:\n    image: app\n    depends_on: [db]\n", r"services.web.depends_on \(line 4\): unknown service\(s\): db"),
])
def test_broken_files_are_refused_with_the_file_and_line(text, message):
    with pytest.raises(ComposeError, match=message):
        parse_compose(text, filename="broken.yaml")


@pytest.fixture
def compose_dir(tmp_path):
    (tmp_path / "notes-stack.yaml").write_text(example_text())
    (tmp_path / ".env").write_text("NOTES_DB_PASSWORD=from-dotenv-pw\n")
    return tmp_path


def test_the_command_prints_the_preview_and_a_dry_run_saves_nothing(compose_dir, db):
    Cluster.objects.create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")
    out = StringIO()

    call_command("import_compose", str(compose_dir / "notes-stack.yaml"), "--cluster", "local", "--project", "notes", "--dry-run", stdout=out)

    text = out.getvalue()
    assert "Project notes: 2 service(s)" in text
    assert "db: postgres:16 x1" in text and "web: registry.example.test/notes/web:1.4.2 x2" in text
    assert "from-dotenv-pw" not in text
    assert "Dry run: nothing was saved or deployed." in text
    assert Service.objects.count() == 0


def test_the_command_refuses_a_broken_file_with_its_line(tmp_path, db):
    Cluster.objects.create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  web:\n    image: app\n  ports: [\n")

    with pytest.raises(CommandError, match=r"compose.yaml, line 5, column 1: "):
        call_command("import_compose", str(path), "--cluster", "local", "--dry-run")


def test_the_command_names_the_known_clusters_when_the_cluster_is_unknown(compose_dir, db):
    Cluster.objects.create(name="local", kind="docker")

    with pytest.raises(CommandError, match="No cluster named 'prod'. Docker and Swarm clusters: local."):
        call_command("import_compose", str(compose_dir / "notes-stack.yaml"), "--cluster", "prod")


FIXED_PORT_REPLICAS = textwrap.dedent("""\
    services:
      web:
        image: app/web:1
        ports: ["8080:80"]
        deploy: {replicas: 3}
      api:
        image: app/api:1
        ports: ["9000:9000"]
      admin:
        image: app/admin:1
        ports: ["9000:9000"]
      spread:
        image: app/spread:1
        ports: ["80"]
        deploy: {replicas: 4}
""")


def test_several_replicas_on_one_fixed_host_port_are_flagged_for_a_docker_host_but_not_for_a_swarm():
    plan = parse_compose(FIXED_PORT_REPLICAS, project="shop")

    docker = target_problems(plan, "docker")
    assert docker[0] == ("services.web: 3 replicas cannot share host port 8080 on one Docker host. Leave the published port empty "
                         "to give each replica its own port, use 1 replica, or deploy to a Swarm cluster.")
    assert docker[1] == "services.admin: host port 9000/tcp is also published by services.api; a host port can be published by one service only."
    assert len(docker) == 2
    plan.problems = docker
    assert "Cannot be deployed as written:" in plan.preview()
    assert target_problems(plan, "swarm") == [docker[1]]


def test_the_command_refuses_to_import_what_a_docker_host_cannot_run_and_its_dry_run_says_so(tmp_path, db):
    Cluster.objects.create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")
    path = tmp_path / "compose.yaml"
    path.write_text(FIXED_PORT_REPLICAS)
    out = StringIO()

    call_command("import_compose", str(path), "--cluster", "local", "--project", "shop", "--dry-run", stdout=out)
    assert "services.web: 3 replicas cannot share host port 8080" in out.getvalue() and "Importing would be refused" in out.getvalue()
    with pytest.raises(CommandError, match="Nothing was saved: local cannot run this file as written"):
        call_command("import_compose", str(path), "--cluster", "local", "--project", "shop", "--no-deploy", stdout=StringIO())
    assert Service.objects.count() == 0
