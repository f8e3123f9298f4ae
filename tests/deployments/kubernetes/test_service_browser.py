"""A person deploys a Kubernetes service from its page in a real Chromium and watches the
rollout bar, the pods and the events change live (htmx polling, a real RQ worker)."""

import pytest

from tests.fixtures.actors import PASSWORD
from tests.fixtures.browser import login
from tests.support.ports import wait_until

from tests.support.kube_jobs import kube_service

pytestmark = [pytest.mark.browser, pytest.mark.k8s, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_in_page(page, expression, timeout, message):
    wait_until(lambda: page.evaluate(expression), timeout=timeout, interval=0.2, message=message)


def test_deploying_a_kubernetes_service_shows_the_rollout_pods_and_events_live(live_server, page, artifacts, worker, bob, kube_target):
    service = kube_service(kube_target, replicas=2, update={"monitor": 60})
    if kube_target.api is not None:
        kube_target.api.kubelet_mode = "manual"  # the test decides when pods become ready
    login(page, live_server, "bob", PASSWORD)
    page.goto(f"{live_server.url}/services/{service.pk}/")
    page.click("#deploy-button")

    wait_in_page(page, "!!document.querySelector('#rollout progress')", 20, "the rollout bar to appear")
    wait_in_page(page, "document.querySelector('#replicas').innerText.includes('r1')", 30, "the new pods to show up live")
    if kube_target.api is not None:
        wait_in_page(page, "(document.querySelector('#rollout-count') || {innerText: ''}).innerText.trim() === '2/6'", 20, "the bar at 'updated 2/2' (2/6)")
        page.screenshot(path=str(artifacts / "kube-rollout-waiting.png"), full_page=True)
        pods = [row["metadata"]["name"] for row in kube_target.api.objects("/pods", kube_target.namespace)]
        for name in pods:
            kube_target.api.set_pod_phase(kube_target.namespace, name, ready=True)
    wait_in_page(page, "document.getElementById('replicas-healthy').innerText.trim() === '2' && !document.getElementById('rollout')", 60, "2 healthy pods and the rollout finished")
    page.screenshot(path=str(artifacts / "kube-rollout-done.png"), full_page=True)

    assert page.locator("#service-status").inner_text().strip() == "Deployed"
    rows = page.locator("#replicas tbody tr").all_inner_texts()
    assert len(rows) == 2 and all("healthy" in row and "r1" in row for row in rows), rows
    assert "ScalingReplicaSet" in page.locator("#kube-events").inner_text() or "Scheduled" in page.locator("#kube-events").inner_text()
