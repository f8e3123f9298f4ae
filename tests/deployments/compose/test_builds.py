"""Compose `build:`, `secrets:`, networks and uploaded project folders, read by the panel
(nothing runs here: the real builds on the engine are in test_compose_build_deploy.py)."""

import io
import tarfile
import textwrap
import zipfile
from io import StringIO

import pytest
from django.core.management import call_command

from clusters.models import Cluster
from deployments.builds import ArchiveError, extract_archive
from deployments.compose import ComposeError, parse_compose
from deployments.models import BuildContext, Service
from panel.jobs.models import Job
from tests.fixtures.actors import logged_in

TWO_SERVICES = textwrap.dedent("""\
    services:
      front:
        build: ./front
        ports: ["127.0.0.1::8080"]
        depends_on: [api]
      api:
        build:
          context: api
          dockerfile: docker/Dockerfile
          args: {GREETING: hello}
          target: final
        secrets: [api_token]
    secrets:
      api_token:
        file: ./secrets/token.txt
    """)


def write_project(root, front_page="front v1"):
    (root / "front" / "www").mkdir(parents=True, exist_ok=True)
    (root / "front" / "Dockerfile").write_text("FROM scratch\nCOPY www/ /www/\n")
    (root / "front" / "www" / "index.html").write_text(front_page)
    (root / "front" / "notes.tmp").write_text("ignored")
    (root / "front" / ".dockerignore").write_text("*.tmp\n")
    (root / "api" / "docker").mkdir(parents=True, exist_ok=True)
    (root / "api" / "docker" / "Dockerfile").write_text("FROM scratch AS final\nCOPY . /srv/\n")
    (root / "secrets").mkdir(exist_ok=True)
    (root / "secrets" / "token.txt").write_text("tok-123")
    (root / "compose.yaml").write_text(TWO_SERVICES)
    return root


def names_in(archive):
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return sorted(tar.getnames())


def test_a_build_becomes_a_context_archive_honouring_dockerignore_and_a_tag_that_follows_the_sources(tmp_path):
    root = write_project(tmp_path)
    plan = parse_compose(TWO_SERVICES, base_dir=str(root), project="shop")
    front, api = plan.services
    assert names_in(front.build_archive) == [".dockerignore", "Dockerfile", "www", "www/index.html"]
    assert front.spec["image"] == "filrouge/shop-front" and front.spec["tag"].startswith("b")
    assert front.spec["build"] == {"context": front.spec["build"]["context"], "dockerfile": "Dockerfile", "args": {}, "target": ""}
    assert api.spec["build"]["dockerfile"] == "docker/Dockerfile"
    assert api.spec["build"]["args"] == {"GREETING": "hello"} and api.spec["build"]["target"] == "final"
    assert api.secrets == {"api_token": "tok-123"}
    assert {"name": "api_token", "env": None, "path": "/run/secrets/api_token"} in api.spec["secrets"]
    assert "tok-123" not in plan.preview()
    assert "built from source" in plan.preview() and "secret files: /run/secrets/api_token" in plan.preview()

    again = parse_compose(TWO_SERVICES, base_dir=str(root), project="shop").services[0]
    assert (again.spec["tag"], again.build_archive) == (front.spec["tag"], front.build_archive)  # same sources, same bytes
    (root / "front" / "notes.tmp").write_text("changed but ignored")
    assert parse_compose(TWO_SERVICES, base_dir=str(root), project="shop").services[0].spec["tag"] == front.spec["tag"]
    (root / "front" / "www" / "index.html").write_text("front v2")
    assert parse_compose(TWO_SERVICES, base_dir=str(root), project="shop").services[0].spec["tag"] != front.spec["tag"]


def test_a_registry_prefixes_the_built_images_and_a_named_image_keeps_its_repository(tmp_path):
    root = write_project(tmp_path)
    text = TWO_SERVICES.replace("  api:\n", "  api:\n    image: team/api:1.0\n")
    plan = parse_compose(text, base_dir=str(root), project="shop", registry="127.0.0.1:5000/lab")
    assert [item.spec["image"] for item in plan.services] == ["127.0.0.1:5000/lab/filrouge/shop-front", "127.0.0.1:5000/lab/team/api"]


def test_pasted_text_with_builds_and_no_image_is_refused_naming_every_service_and_line():
    with pytest.raises(ComposeError) as caught:
        parse_compose(TWO_SERVICES, filename="compose.yaml")
    assert str(caught.value).startswith("compose.yaml: services.front.build (line 3), services.api.build (line 7): the build context cannot be read from pasted text.")


@pytest.mark.parametrize("text, message", [
    ("services:\n  web:\n    build: ../elsewhere\n", r"services.web.build \(line 3\): ../elsewhere is outside the uploaded folder"),
    ("services:\n  web:\n    build: {context: ., dockerfile: ../Dockerfile}\n", r"the Dockerfile ../Dockerfile is outside the build context"),
    ("services:\n  web:\n    build: https://github.com/example/app.git\n", r"is a remote context"),
    ("services:\n  web:\n    image: a\n    secrets: [nope]\n", r"services.web.secrets\[0\] \(line 4\): service web uses an undefined secret 'nope'"),
])
def test_a_build_or_secret_that_cannot_be_used_is_refused_with_its_line(tmp_path, text, message):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(ComposeError, match=message):
        parse_compose(text, base_dir=str(tmp_path), confine=True)


def test_static_addresses_ipam_and_aliases_are_listed_with_their_lines_never_dropped():
    text = textwrap.dedent("""\
        services:
          app:
            image: nginx
            container_name: app-1
            networks:
              backend:
                ipv4_address: 172.28.1.10
                aliases: [web]
        networks:
          backend:
            ipam:
              config:
                - subnet: 172.28.0.0/16
        """)
    plan = parse_compose(text)
    assert plan.unsupported == [
        "networks.backend.ipam (line 11): not supported (the panel creates one network per project with addresses chosen by the engine)",
        "services.app.container_name (line 4): not supported (the panel names containers itself (<project>-<service>-r<revision>-<n>); other services reach it by its service name)",
        "services.app.networks.backend.ipv4_address (line 7): 172.28.1.10 is not supported (the engine gives addresses on the project network; reach the service by its name)",
        "services.app.networks.backend.aliases (line 8): web not supported (other services reach it by its service name, app)",
    ]


def make_tar(entries):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                info.type, info.linkname = tarfile.SYMTYPE, payload
                tar.addfile(info)
    return buffer.getvalue()


@pytest.mark.parametrize("entries, message", [
    ([("../evil.txt", "file", b"x")], "points outside the project folder"),
    ([("/etc/evil.txt", "file", b"x")], "points outside the project folder"),
    ([("app/passwd", "link", "/etc/passwd")], "outside the project folder"),
    ([("app/up", "link", "../../etc")], "outside the project folder"),
])
def test_an_archive_entry_leaving_the_folder_is_refused(tmp_path, entries, message):
    with pytest.raises(ArchiveError, match=message):
        extract_archive(make_tar(entries), str(tmp_path), "project.tar.gz")
    assert list(tmp_path.iterdir()) == []


def test_a_zip_with_a_dotdot_name_or_a_link_is_refused_and_a_plain_one_unpacks(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../escape.txt", "x")
    with pytest.raises(ArchiveError, match="points outside"):
        extract_archive(buffer.getvalue(), str(tmp_path), "p.zip")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("app/link")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(ArchiveError, match="symbolic link"):
        extract_archive(buffer.getvalue(), str(tmp_path), "p.zip")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("project/compose.yaml", "services: {}\n")
    extract_archive(buffer.getvalue(), str(tmp_path / "ok"), "p.zip")
    assert (tmp_path / "ok" / "project" / "compose.yaml").read_text() == "services: {}\n"


def project_archive(root):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(root, arcname="shop")
    buffer.seek(0)
    buffer.name = "shop.tar.gz"
    return buffer


@pytest.mark.django_db
def test_the_import_page_previews_an_uploaded_project_folder_then_saves_it_with_its_contexts_encrypted(tmp_path, bob):
    cluster = Cluster.objects.create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")
    root = write_project(tmp_path / "shop")
    client = logged_in(bob)

    preview = client.post("/services/import/", {"cluster": cluster.pk, "project_archive": project_archive(root)})
    assert preview.status_code == 200, preview.content.decode()[:2000]
    page = preview.content.decode()
    assert "filrouge/shop-front" in page and "built from source" in page
    assert "tok-123" not in page
    token = preview.context["form"]["upload_token"].value()
    assert token and Service.objects.count() == 0

    saved = client.post("/services/import/", {"cluster": cluster.pk, "upload_token": token, "confirm": "1"})
    assert saved.status_code == 302
    front, api = Service.objects.get(name="front"), Service.objects.get(name="api")
    assert api.get_secrets() == {"api_token": "tok-123"}
    stored = BuildContext.objects.get(service=front)
    assert stored.digest == front.spec["build"]["context"]
    assert b"front v1" not in bytes(stored.archive_encrypted)  # encrypted at rest
    assert Job.objects.filter(kind="stack-deploy").count() == 1

    other = logged_in(bob)  # another session cannot use the token
    again = other.post("/services/import/", {"cluster": cluster.pk, "upload_token": token})
    assert again.status_code == 400 and "no longer kept" in again.content.decode()


@pytest.mark.django_db
def test_the_import_page_refuses_an_archive_leaving_its_folder(bob):
    cluster = Cluster.objects.create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")
    upload = io.BytesIO(make_tar([("../compose.yaml", "file", b"services: {}\n")]))
    upload.name = "evil.tar.gz"
    response = logged_in(bob).post("/services/import/", {"cluster": cluster.pk, "project_archive": upload})
    assert response.status_code == 400
    assert "points outside the project folder" in response.content.decode()


def test_the_command_warns_that_a_swarm_needs_a_registry_for_built_services(tmp_path, db):
    Cluster.objects.create(name="swarm", kind="swarm", endpoint="unix:///var/run/docker.sock")
    root = write_project(tmp_path / "shop")
    out = StringIO()
    call_command("import_compose", str(root), "--cluster", "swarm", "--dry-run", stdout=out)
    assert "front, api: built from source, but Swarm nodes run images from a registry" in out.getvalue()
    out = StringIO()
    call_command("import_compose", str(root), "--cluster", "swarm", "--dry-run", "--registry", "127.0.0.1:5000/lab", stdout=out)
    assert "Swarm nodes run images from a registry" not in out.getvalue()
    assert "front: 127.0.0.1:5000/lab/filrouge/shop-front:b" in out.getvalue()


def test_the_command_takes_a_project_folder(tmp_path, db):
    Cluster.objects.create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")
    root = write_project(tmp_path / "shop")
    out = StringIO()
    call_command("import_compose", str(root), "--cluster", "local", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "Project shop: 2 service(s)" in text
    assert "front: filrouge/shop-front:b" in text and "built from source" in text
