"""Service pages and the compose import page: access, forms with field errors, actions
that start jobs (no worker needed: the job stays queued), live partial."""

import pytest

from clusters.models import Cluster
from deployments.models import Release, Service
from panel.jobs.models import Job
from tests.fixtures.actors import logged_in

from .conftest import make_service

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster(db):
    return Cluster.objects.create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")


@pytest.fixture
def service(cluster):
    return make_service(cluster, "shop", image="127.0.0.1:5000/shop/web", tag="1", replicas=2)


def test_operators_see_services_and_others_get_403_and_no_link(bob, charlie, service):
    page = logged_in(bob).get("/services/")
    assert page.status_code == 200 and b"shop/web" in page.content and b'href="/services/"' in page.content
    assert logged_in(charlie).get("/services/").status_code == 403
    assert logged_in(charlie).get(f"/services/{service.pk}/").status_code == 403
    assert b'href="/services/"' not in logged_in(charlie).get("/").content


def test_a_service_is_created_from_the_form_with_its_yaml_settings(bob, cluster):
    response = logged_in(bob).post("/services/new/", {
        "name": "api", "cluster": cluster.pk, "project": "shop", "image": "app/api", "tag": "2", "replicas": 3,
        "spec_yaml": "ports: [{container: 8080, host_ip: 127.0.0.1}]\nenv: {MODE: prod}\n", "secrets_text": "API_KEY=k-123\n",
    })

    service = Service.objects.get(name="api")
    assert response.status_code == 302 and response["Location"] == f"/services/{service.pk}/"
    assert service.spec["replicas"] == 3 and service.spec["env"] == {"MODE": "prod"} and service.spec["ports"][0]["host_ip"] == "127.0.0.1"
    assert service.get_secrets() == {"API_KEY": "k-123"}
    edit = logged_in(bob).get(f"/services/{service.pk}/edit/")
    assert b"k-123" not in edit.content and b"MODE: prod" in edit.content


def test_broken_yaml_and_bad_values_are_field_errors(bob, cluster):
    client = logged_in(bob)
    base = {"name": "api", "cluster": cluster.pk, "project": "shop", "image": "app/api", "replicas": 1}

    broken = client.post("/services/new/", {**base, "tag": "1", "spec_yaml": "ports:\n  - container: 80\n bad: [\n"})
    bad_tag = client.post("/services/new/", {**base, "tag": "not a tag", "spec_yaml": "replicas_typo: 2\nhealth_check: {type: command}\n"})

    assert broken.status_code == 400 and "Line 3, column 2" in broken.content.decode()
    assert bad_tag.status_code == 400
    text = bad_tag.content.decode()
    assert "A tag is letters, digits" in text and "A command health check needs a command." in text
    assert not Service.objects.exists()


def test_deploy_from_the_page_makes_a_release_and_a_queued_job_and_a_second_deploy_is_refused(bob, service):
    client = logged_in(bob)

    first = client.post(f"/services/{service.pk}/deploy/", {"tag": "2"}, follow=True)
    second = client.post(f"/services/{service.pk}/deploy/", {"tag": "3"}, follow=True)

    release = Release.objects.get(service=service)
    job = Job.objects.get(kind="service-deploy")
    assert release.revision == 1 and release.spec["tag"] == "2" and release.job == job and job.params == {"release": release.pk}
    assert "Deploying revision 1" in first.content.decode()
    assert f"Job #{job.pk} (service-deploy) is already working on shop/web" in second.content.decode()
    live = client.get(f"/services/{service.pk}/", HTTP_HX_REQUEST="true")
    assert 'id="rollout"' in live.content.decode() and "<html" not in live.content.decode()


def test_the_live_part_shows_desired_running_healthy_and_each_replica(bob, service):
    Service.objects.filter(pk=service.pk).update(observed={"desired": 2, "running": 2, "healthy": 1, "replicas": [
        {"name": "shop-web-r1-1", "state": "running", "status": "Up 3 seconds (healthy)", "health": "healthy", "image": "x:1", "release": "1", "ports": ["127.0.0.1:32768->8080/tcp"]},
        {"name": "shop-web-r1-2", "state": "running", "status": "Up 3 seconds (unhealthy)", "health": "unhealthy", "image": "x:1", "release": "1", "ports": []},
    ]})

    text = logged_in(bob).get(f"/services/{service.pk}/", HTTP_HX_REQUEST="true").content.decode()

    assert '<dd id="replicas-running">2</dd>' in text and 'id="replicas-healthy" class="error-text">1<' in text
    assert "shop-web-r1-2" in text and "unhealthy" in text and "127.0.0.1:32768-&gt;8080/tcp" in text


def test_compose_import_previews_lists_unsupported_keys_and_refuses_broken_files_with_the_line(bob, cluster):
    client = logged_in(bob)
    text = "services:\n  web:\n    image: app/web:1\n    build: .\n    ports: ['127.0.0.1::8080']\n"

    preview = client.post("/services/import/", {"cluster": cluster.pk, "project": "shop", "text": text})
    broken = client.post("/services/import/", {"cluster": cluster.pk, "text": "services:\n  web:\n    image: [a\n"})

    assert preview.status_code == 200
    assert "services.web.build (line 4): the build context cannot be read from pasted text; the image app/web:1 is deployed as it is" in preview.content.decode()
    assert broken.status_code == 400 and "compose.yaml, line 4, column 1" in broken.content.decode()
    assert not Service.objects.exists()

    confirmed = client.post("/services/import/", {"cluster": cluster.pk, "project": "shop", "text": text, "confirm": "1"})
    job = Job.objects.get(kind="stack-deploy")
    assert confirmed.status_code == 302 and confirmed["Location"] == f"/jobs/{job.pk}/"
    assert Service.objects.get(project="shop", name="web").spec["ports"][0]["host_ip"] == "127.0.0.1"
    assert job.params == {"project": "shop"} and job.target == cluster


def test_compose_import_flags_replicas_on_one_fixed_host_port_and_refuses_to_save_them(bob, cluster):
    client = logged_in(bob)
    text = "services:\n  web:\n    image: app/web:1\n    ports: ['8080:80']\n    deploy: {replicas: 2}\n"

    preview = client.post("/services/import/", {"cluster": cluster.pk, "project": "shop", "text": text})
    confirmed = client.post("/services/import/", {"cluster": cluster.pk, "project": "shop", "text": text, "confirm": "1"})

    assert cluster.kind == "docker"
    page = preview.content.decode()
    assert "2 replicas cannot share host port 8080 on one Docker host" in page and 'id="confirm-import"' not in page
    assert confirmed.status_code == 400 and "Nothing was saved" in confirmed.content.decode()
    assert not Service.objects.exists() and not Job.objects.filter(kind="stack-deploy").exists()
