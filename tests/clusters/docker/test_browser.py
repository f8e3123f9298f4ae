"""The cluster page in a real Chromium after a real probe: engine, containers, ages."""

import pytest

from clusters.docker.jobs import probe_cluster
from clusters.models import Cluster
from tests.fixtures.actors import PASSWORD
from tests.fixtures.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.django_db(transaction=True)]


def test_the_cluster_page_shows_what_the_probe_saw(live_server, page, artifacts, bob, docker_client, container_factory, http_app_images):
    container = container_factory(http_app_images["1"], ports={"8080/tcp": ("127.0.0.1",)})
    cluster = Cluster.objects.create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")
    probe_cluster(cluster)

    login(page, live_server, "bob", PASSWORD)
    page.goto(f"{live_server.url}/inventory/clusters/{cluster.pk}/")
    page.screenshot(path=str(artifacts / "cluster-detail.png"), full_page=False)

    facts = page.locator(".facts").first.inner_text()
    assert docker_client.version()["Version"] in facts and "ago" in facts and "API calls" in facts
    row = page.locator("#containers tr", has_text=container.name)
    assert row.count() == 1 and "running" in row.inner_text() and "->8080/tcp" in row.inner_text()
    page.goto(f"{live_server.url}/inventory/clusters/")
    assert page.locator("td", has_text="local").count() >= 1
