"""The services API: a CI pipeline deploys a tag with one authenticated request; field
errors are 400, a busy service 409, secrets are write-only, roles and scopes hold."""

import pytest

from clusters.models import Cluster
from deployments.models import Release, Service
from panel.accounts.models import TokenScope
from panel.jobs.models import Job
from tests.fixtures.actors import api_client

from .conftest import make_service

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(db):
    cluster = Cluster.objects.create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")
    return make_service(cluster, "shop", image="127.0.0.1:5000/shop/web", tag="1")


def test_a_ci_pipeline_deploys_a_new_tag_with_one_request(bob, service):
    response = api_client(bob).post(f"/api/services/{service.pk}/deploy/", {"tag": "1.4.3"}, format="json")

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["release"]["revision"] == 1 and body["release"]["spec"]["tag"] == "1.4.3"
    assert body["job"]["kind"] == "service-deploy" and body["job"]["status"] == "queued"
    service.refresh_from_db()
    assert service.spec["tag"] == "1.4.3"
    busy = api_client(bob).post(f"/api/services/{service.pk}/deploy/", {"tag": "1.4.4"}, format="json")
    assert busy.status_code == 409 and "already working" in busy.json()["detail"]


def test_bad_input_is_a_400_with_field_paths(bob, service):
    client = api_client(bob)

    bad_tag = client.post(f"/api/services/{service.pk}/deploy/", {"tag": "no spaces"}, format="json")
    bad_scale = client.post(f"/api/services/{service.pk}/scale/", {"replicas": -1}, format="json")
    bad_revision = client.post(f"/api/services/{service.pk}/rollback/", {"revision": 7}, format="json")
    bad_spec = client.post("/api/services/", {"name": "api", "cluster": "local", "project": "shop", "spec": {"image": "x", "ports": [{"container": 70000}]}}, format="json")

    assert bad_tag.status_code == 400 and "tag" in bad_tag.json()
    assert bad_scale.status_code == 400 and "replicas" in bad_scale.json()
    assert bad_revision.status_code == 400 and bad_revision.json() == {"revision": ["shop/web has no revision 7."]}
    assert bad_spec.status_code == 400 and "container" in bad_spec.json()["spec"]["ports"]["0"]
    assert Release.objects.count() == 0 and Job.objects.count() == 0


def test_secrets_are_write_only_and_names_are_listed(bob, db):
    Cluster.objects.create(name="local", kind="docker")
    created = api_client(bob).post("/api/services/", {
        "name": "api", "cluster": "local", "project": "shop", "spec": {"image": "app/api", "secrets": [{"name": "TOKEN"}]},
        "secrets": {"TOKEN": "t-0987654321"},
    }, format="json")

    assert created.status_code == 201, created.json()
    assert "t-0987654321" not in created.content.decode() and created.json()["secret_names"] == ["TOKEN"]
    assert Service.objects.get(name="api").get_secrets() == {"TOKEN": "t-0987654321"}
    listed = api_client(bob).get("/api/services/")
    assert "t-0987654321" not in listed.content.decode()


def test_releases_are_listed_and_rollback_makes_a_new_revision(bob, service):
    client = api_client(bob)
    client.post(f"/api/services/{service.pk}/deploy/", {"tag": "2"}, format="json")
    Job.objects.update(status="succeeded")

    rollback = client.post(f"/api/services/{service.pk}/rollback/", {"revision": 1}, format="json")

    assert rollback.status_code == 202 and rollback.json()["release"]["revision"] == 2 and rollback.json()["release"]["rollback_of"] == 1
    revisions = [item["revision"] for item in client.get(f"/api/services/{service.pk}/releases/").json()["results"]]
    assert revisions == [2, 1]


def test_roles_and_scopes_are_enforced(bob, charlie, service):
    assert api_client(charlie).get("/api/services/").status_code == 403
    assert api_client(charlie).post(f"/api/services/{service.pk}/deploy/", {}, format="json").status_code == 403
    read_only = api_client(bob, scope=TokenScope.READ)
    assert read_only.get(f"/api/services/{service.pk}/").status_code == 200
    assert read_only.post(f"/api/services/{service.pk}/deploy/", {}, format="json").status_code == 403


def test_clusters_are_created_with_endpoint_rules_and_their_jobs_started(bob, db):
    client = api_client(bob)

    refused = client.post("/api/clusters/", {"name": "remote", "kind": "docker", "endpoint": "tcp://10.0.0.5:2376"}, format="json")
    created = client.post("/api/clusters/", {"name": "local", "kind": "docker", "endpoint": ""}, format="json")

    assert refused.status_code == 400 and "docker-tls credential" in refused.json()["credential"][0]
    assert created.status_code == 201 and created.json()["endpoint"] == "unix:///var/run/docker.sock"
    started = client.post(f"/api/clusters/{created.json()['id']}/test/")
    assert started.status_code == 202 and started.json()["kind"] == "engine-connect-test"
