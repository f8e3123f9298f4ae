"""In a real Chromium: paste the api-poc manifests, see the diff, apply, and watch the
rollout progress arrive live in the page until the job succeeds."""

import pytest

from tests.fixtures.actors import PASSWORD
from tests.fixtures.browser import login
from tests.support.ports import wait_until

from tests.clusters.kubernetes.conftest import api_poc_sources

pytestmark = [pytest.mark.browser, pytest.mark.k8s, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_in_page(page, expression, timeout, message):
    wait_until(lambda: page.evaluate(expression), timeout=timeout, interval=0.1, message=message)


def test_an_operator_diffs_applies_and_watches_the_rollout_live(live_server, page, artifacts, worker, bob, kube_target):
    text = "\n---\n".join(body for _name, body in api_poc_sources(kube_target))
    login(page, live_server, "bob", PASSWORD)
    page.goto(f"{live_server.url}/inventory/clusters/{kube_target.cluster.pk}/manifests/")
    page.fill("#id_namespace", kube_target.namespace)
    page.fill("#id_manifests", text)

    page.click("#show-diff")
    wait_in_page(page, "document.querySelector('#manifest-job')?.dataset.kind === 'kube-manifests-diff'", 30, "the diff job to start")
    diff_job = page.evaluate("document.querySelector('#manifest-job').dataset.job")
    wait_in_page(page, f"document.querySelector('#manifest-job[data-job=\"{diff_job}\"]')?.dataset.status === 'succeeded'", 30, "the diff job to finish")
    diff = page.locator("#manifest-diff").inner_text()
    assert "Deployment/api-poc" in diff and "created" in diff and "+  replicas: 2" in diff
    page.screenshot(path=str(artifacts / "kube-manifests-diff.png"), full_page=True)

    if kube_target.is_standin:
        kube_target.api.kubelet_mode = "manual"  # pods wait until this test plays the kubelet
    page.click("#apply")
    # Wait for the apply job itself: until it shows, #manifest-job is still the diff job, whose status is already "succeeded".
    wait_in_page(page, f"(el => el && el.dataset.kind === 'kube-manifests-apply' && el.dataset.job !== '{diff_job}')(document.querySelector('#manifest-job'))",
                 30, "the apply job to start")
    apply_job = page.evaluate("document.querySelector('#manifest-job').dataset.job")
    if kube_target.is_standin:
        wait_in_page(page, f"document.querySelector('#manifest-job[data-job=\"{apply_job}\"]')?.dataset.status === 'running' && document.querySelector('#manifest-log').innerText.includes('ready 0/2')", 30, "rollout progress while the job runs")
        page.screenshot(path=str(artifacts / "kube-manifests-rollout-live.png"), full_page=True)
        pods = lambda: [pod["metadata"]["name"] for pod in kube_target.api.objects("/pods", kube_target.namespace)]  # noqa: E731
        kube_target.wait_for(lambda: len(pods()) == 2, message="the two pods")
        kube_target.api.set_pod_phase(kube_target.namespace, pods()[0], ready=True)
        wait_in_page(page, "document.querySelector('#manifest-log').innerText.includes('ready 1/2')", 30, "the first ready pod to show live")
        kube_target.api.set_pod_phase(kube_target.namespace, pods()[1], ready=True)
    wait_in_page(page, f"document.querySelector('#manifest-job[data-job=\"{apply_job}\"]')?.dataset.status === 'succeeded'", 120, "the apply job to succeed")
    log = page.locator("#manifest-log").inner_text()
    assert "ready 2/2" in log
    assert "Deployment/api-poc · created" in page.locator("#manifest-applied").inner_text()
    page.screenshot(path=str(artifacts / "kube-manifests-applied.png"), full_page=True)
