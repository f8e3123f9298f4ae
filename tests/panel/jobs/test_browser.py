"""A real Chromium logs in, starts the diagnostics job, and watches it live."""

import pytest

from panel.jobs.models import Job
from tests.fixtures.actors import PASSWORD
from tests.fixtures.browser import login
from tests.support.ports import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_an_operator_starts_diagnostics_and_watches_lines_arrive_without_reloading(page, live_server, worker, bob, artifacts):
    login(page, live_server, "bob", PASSWORD)
    page.goto(f"{live_server.url}/jobs/")
    page.click("text=Run Diagnostics")
    page.fill("#id_rounds", "4")
    page.fill("#id_interval", "1")
    page.click("#start-job")
    page.wait_for_url(f"{live_server.url}/jobs/*/")
    page.evaluate("window.__sameDocument = true")  # vanishes if the page reloads

    page.wait_for_selector("#log-lines .line.o-ok", timeout=15000)
    first_count = page.locator("#log-lines .line").count()
    page.wait_for_selector("#job-status .status-succeeded", timeout=30000)

    lines = page.locator("#log-lines .line")
    assert lines.count() > first_count, "lines arrived after the first ones were shown"
    assert page.locator("#log-lines .line.o-ok").count() == 16
    assert page.locator("#log-lines .line.end").inner_text().endswith("Finished: succeeded.")
    assert page.evaluate("window.__sameDocument") is True
    assert page.locator("#job-header progress").get_attribute("value") == "16"
    job = Job.objects.get()
    assert job.status == "succeeded" and job.user == bob
    page.screenshot(path=str(artifacts / "job-diagnostics-live.png"), full_page=True)

    # The poller stopped itself: no more requests once the end marker arrived.
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.wait_for_timeout(2500)
    assert not [url for url in requests if "/log/" in url]


def test_the_overview_panels_refresh_on_their_own(page, live_server, worker, bob, artifacts):
    login(page, live_server, "bob", PASSWORD)
    page.goto(f"{live_server.url}/")
    before = page.locator("#panel-running small").inner_text()

    # Polled from here: wait_for_function evaluates a string, which the Content-Security-Policy forbids (no 'unsafe-eval').
    wait_until(lambda: page.evaluate(f"document.querySelector('#panel-running small').innerText !== {before!r}"), timeout=10, interval=0.2,
               message="the running-jobs panel to refresh")

    assert page.locator("#panel-counts").is_visible() and page.locator("#panel-failures").is_visible()
    page.screenshot(path=str(artifacts / "overview.png"), full_page=True)
