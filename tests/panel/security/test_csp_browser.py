"""The Content-Security-Policy is enforced in a real Chromium, and the panel still works:
htmx polling, the live job log, the behaviour that used to be inline handlers, the API docs
and the admin. Not one violation is reported (the `securitypolicyviolation` event and the
console both listened to)."""

import pytest

from clusters.models import Server
from panel.accounts.models import ApiToken, TokenScope
from tests.fixtures.actors import PASSWORD
from tests.fixtures.browser import login
from tests.support.ports import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__csp.push(event.violatedDirective + " blocked " + (event.blockedURI || "inline") + " at " + (event.sourceFile || location.pathname) + ":" + event.lineNumber);
});
"""


class Watch:
    """Violations seen by the page (event) and by the browser console, across navigations."""

    def __init__(self, page):
        self.page = page
        self.console = []
        self.events = []
        page.add_init_script(LISTEN)
        page.on("console", lambda message: self.console.append(message.text) if "Content Security Policy" in message.text or message.type == "error" else None)

    def collect(self):
        try:
            self.events.extend(f"{self.page.url}: {item}" for item in self.page.evaluate("window.__csp || []"))
            self.page.evaluate("window.__csp = []")
        except Exception:  # the page is navigating; the next collect reads it
            pass

    def goto(self, url):
        self.collect()
        response = self.page.goto(url)
        self.page.wait_for_load_state("networkidle")
        self.collect()
        return response

    def violations(self):
        self.collect()
        return self.events + [text for text in self.console if "Content Security Policy" in text]


@pytest.fixture
def watch(page):
    return Watch(page)


def test_every_main_page_carries_an_enforced_policy_and_reports_no_violation(watch, page, live_server, alice, bob):
    Server.objects.create(name="web01", address="10.0.0.1")
    Server.objects.create(name="web02", address="10.0.0.2")
    ApiToken.issue(alice, "ci", TokenScope.READ)
    login(page, live_server, "alice", PASSWORD)

    pages = ["/", "/jobs/", "/inventory/", "/inventory/groups/", "/inventory/credentials/", "/inventory/import/", "/inventory/run/",
             "/services/", "/services/import/", "/labs/", "/audit/", "/accounts/tokens/", "/api/docs/", "/admin/", "/admin/accounts/user/"]
    for path in pages:
        response = watch.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy, path
        assert "content-security-policy-report-only" not in response.headers

    # The API docs really rendered (their init script is a separate file now).
    watch.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info", timeout=15000)
    assert watch.violations() == []


def test_behaviour_moved_out_of_inline_handlers_still_works(watch, page, live_server, alice):
    Server.objects.create(name="web01", address="10.0.0.1")
    Server.objects.create(name="web02", address="10.0.0.2")
    token, _plaintext = ApiToken.issue(alice, "ci", TokenScope.READ)
    login(page, live_server, "alice", PASSWORD)

    # Select all (was onclick)
    watch.goto(f"{live_server.url}/inventory/")
    page.click("#server-table th input[type=checkbox]")
    assert page.locator("#server-table input[name=servers]:checked").count() == 2

    # A confirmation (was onsubmit="return confirm(...)"): dismissed, nothing happens; accepted, it is revoked.
    watch.goto(f"{live_server.url}/accounts/tokens/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("button:has-text(\"Revoke\")")
    token.refresh_from_db()
    assert token.revoked_at is None
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click("button:has-text(\"Revoke\")")
    token.refresh_from_db()
    assert token.revoked_at is not None

    # The language switch (ui.js: its button)
    page.select_option("#language", "fr")
    with page.expect_navigation():
        page.click(".langswitch button[type=submit]")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert watch.violations() == []


@pytest.mark.worker
def test_htmx_polling_and_the_live_job_log_work_under_the_policy(watch, page, live_server, worker, bob):
    login(page, live_server, "bob", PASSWORD)

    watch.goto(f"{live_server.url}/")
    before = page.locator("#panel-running small").inner_text()
    wait_until(lambda: page.evaluate(f"document.querySelector('#panel-running small').innerText !== {before!r}"), timeout=15, interval=0.2,
               message="the running-jobs panel to refresh by itself")

    watch.goto(f"{live_server.url}/jobs/")
    page.click("text=Run Diagnostics")
    page.fill("#id_rounds", "3")
    page.fill("#id_interval", "1")
    page.click("#start-job")
    page.wait_for_url(f"{live_server.url}/jobs/*/")
    page.evaluate("window.__sameDocument = true")
    page.wait_for_selector("#log-lines .line.o-ok", timeout=15000)
    page.wait_for_selector("#job-status .status-succeeded", timeout=30000)

    assert page.locator("#log-lines .line.end").inner_text().endswith("Finished: succeeded.")
    assert page.evaluate("window.__sameDocument") is True
    assert watch.violations() == []
