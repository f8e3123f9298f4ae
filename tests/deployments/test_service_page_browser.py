"""A person deploys from the service page in a real Chromium and watches the rollout
progress bar and the replicas' states change live (htmx polling), on a real engine."""

import pytest

from tests.fixtures.actors import PASSWORD
from tests.fixtures.browser import login
from tests.support.ports import wait_until

from .conftest import make_service

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_in_page(page, expression, timeout, message):
    """Poll a JS expression from Python: the deadline is this process's clock, like the worker's."""
    wait_until(lambda: page.evaluate(expression), timeout=timeout, interval=0.2, message=message)


def replicas_text(page):
    return "document.querySelector('#replicas').innerText"


def test_deploying_from_the_service_page_shows_the_rollout_and_replica_states_live(live_server, page, artifacts, worker, bob, docker_cluster, pushed_images, project):
    service = make_service(docker_cluster, project, image=pushed_images["repository"], tag="1", replicas=2,
                           update={"parallelism": 1, "delay": 1.5, "monitor": 15})
    login(page, live_server, "bob", PASSWORD)
    page.goto(f"{live_server.url}/services/{service.pk}/")
    assert "No replica observed" in page.locator("#replicas").inner_text()

    page.click("#deploy-button")
    wait_in_page(page, "!!document.querySelector('#rollout progress')", 15, "the rollout bar to appear")
    wait_in_page(page, f"{replicas_text(page)}.includes('r1')", 30, "a revision 1 replica to show up live")
    page.screenshot(path=str(artifacts / "service-first-deploy.png"), full_page=True)
    wait_in_page(page, "document.getElementById('replicas-healthy').innerText.trim() === '2' && !document.getElementById('rollout')", 60, "2 healthy replicas")
    assert page.locator("#service-status").inner_text().strip() == "Deployed"

    # Now an update to v2: the page shows old and new replicas side by side while it runs.
    page.fill("#id_tag", "2")
    page.click("#deploy-button")
    wait_in_page(page, "!!document.getElementById('rollout')", 15, "the rollout of revision 2 to show")
    wait_in_page(page, f"{replicas_text(page)}.includes('r2')", 30, "a revision 2 replica to show up live")
    seen_both = page.evaluate(f"{replicas_text(page)}.includes('r1')")
    progress_seen = page.evaluate("document.querySelector('#rollout-count') && document.querySelector('#rollout-count').innerText")
    page.screenshot(path=str(artifacts / "service-rolling-update.png"), full_page=True)
    wait_in_page(page, f"!document.getElementById('rollout') && !{replicas_text(page)}.includes('r1')", 60, "the update to finish")
    page.screenshot(path=str(artifacts / "service-updated.png"), full_page=True)

    assert seen_both, "during the update the page should show revision 1 and 2 replicas together"
    assert progress_seen in ("0/2", "1/2"), progress_seen
    rows = page.locator("#replicas tbody tr").all_inner_texts()
    assert len(rows) == 2 and all("r2" in row and "healthy" in row for row in rows), rows
    assert page.locator("#releases tbody tr").count() == 2
    assert "current" in page.locator("#releases tbody tr").first.inner_text()
