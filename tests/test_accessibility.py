"""Accessibility measured with axe-core in Chromium on the main pages of each role, with data
on them: no critical and no serious violation. Plus what axe cannot see: the skip link is the
first stop, the language list does not reload the page while the arrow keys move through it,
and the user menu closes with Escape.

axe-core is vendored (static/vendor/axe-core-*/, from npm) and only these tests use it; it is
evaluated through the browser's debugging protocol, so a Content-Security-Policy does not stop it.
"""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from clusters.models import Cluster, Credential, Group, Server
from deployments.models import Service
from deployments.spec import normalize_spec
from labs.exercise_file import exercise_fields, parse_exercise
from labs.models import Attempt, Course, Enrolment, Environment, EnvironmentState, Exercise
from panel.accounts.models import ApiToken
from panel.audit.context import acting_as
from panel.jobs.models import Job, JobEvent, Status
from tests.fixtures.actors import PASSWORD
from tests.fixtures.browser import login
from tests.labs.conftest import GOOD_EXERCISE
from tests.support.ports import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[1]
AXE = next((ROOT / "static" / "vendor").glob("axe-core-*/axe.min.js"))
BLOCKING = ("critical", "serious")


def make_job(user, kind, status, lines, target_repr=""):
    job = Job.objects.create(kind=kind, user=user, status=status, timeout=600, target_repr=target_repr, line_count=len(lines),
                             error="web03 refused the change: disk full." if status == Status.FAILED else "")
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(started_at=now - timedelta(seconds=40),
                                         finished_at=now if status not in (Status.RUNNING, Status.QUEUED) else None)
    JobEvent.objects.bulk_create([
        JobEvent(job=job, seq=seq, time=now, text=text, host=host, task=task, outcome=outcome, is_end=is_end)
        for seq, (host, task, outcome, text, is_end) in enumerate(lines, 1)
    ])
    return job


LOG = [
    ("web01", "apt", "ok", "nginx is installed", False),
    ("web02", "template", "changed", "/etc/nginx/nginx.conf updated", False),
    ("web03", "apt", "failed", "E: Could not get lock /var/lib/dpkg/lock", False),
    ("web04", "service", "skipped", "no change needed", False),
    ("", "", "", "Finished: failed.", True),
]


@pytest.fixture
def world(alice, bob, carol, sam, dave):
    """Every kind of object the main pages list, as a real panel would have them."""
    with acting_as(user=alice, source="web"):
        key = Credential(name="deploy-key", kind="ssh_key", username="ops", description="Deploy key")
        key.set_secret({"private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n"})
        key.save()
        web = Group.objects.create(name="web", description="Web servers")
        servers = []
        for number, reachable in ((1, True), (2, False), (3, None)):
            server = Server.objects.create(name=f"web0{number}", address=f"10.0.0.{number}", credential=key, labels={"env": "prod"},
                                           reachable=reachable, load_1m=0.42, last_seen_at=timezone.now() if reachable else None)
            server.groups.add(web)
            servers.append(server)
        docker = Cluster.objects.create(name="local-docker", kind="docker", endpoint="unix:///var/run/docker.sock")
        kube = Cluster.objects.create(name="lab-k8s", kind="kubernetes", endpoint="https://127.0.0.1:6443", default_namespace="default")
        service = Service.objects.create(name="web", cluster=docker, project="shop", status="deployed", spec=normalize_spec(
            {"image": "127.0.0.1:5000/shop/web", "tag": "2", "replicas": 2, "ports": [{"container": 8080, "host_ip": "127.0.0.1"}]}))
        Service.objects.create(name="api", cluster=docker, project="shop", status="failed", spec=normalize_spec({"image": "shop/api", "tag": "1"}))
        for user in (alice, bob, carol, sam):
            ApiToken.issue(user, "ci", "read", timezone.now() + timedelta(days=90))
            revoked, _plaintext = ApiToken.issue(user, "old laptop", "write", None)
            revoked.revoke()
        course = Course.objects.create(title="DevOps 101", slug="devops-101", code="DEVOPS101", description="Containers and hosts")
        course.teachers.add(carol)
        course.clusters.add(docker, kube)
        exercise = Exercise.objects.create(course=course, slug="two-tier", **exercise_fields(parse_exercise(GOOD_EXERCISE, "two-tier.yaml")))
        Enrolment.objects.create(course=course, student=sam)
        Enrolment.objects.create(course=course, student=dave)
    ready = Environment.objects.create(exercise=exercise, owner=sam, state=EnvironmentState.READY, score=2, cluster=docker,
                                       last_checked_at=timezone.now(), expires_at=timezone.now() + timedelta(minutes=90))
    ready.access = {"host": "127.0.0.1", "ports": {"web": 20017, "api": 20018}, "docker": {"project": ready.name, "network": ready.name}}
    ready.save()
    Attempt.objects.create(environment=ready, requested_by=sam, score=2, max_score=3, finished_at=timezone.now(), results=[
        {"name": "The web tier answers", "type": "test.answer", "passed": True, "points": 2, "earned": 2, "detail": "200 OK", "hint": ""},
        {"name": "Something else", "type": "test.answer", "passed": False, "points": 1, "earned": 0, "detail": "observed 'nothing'", "hint": "Say other."},
    ])
    Environment.objects.create(exercise=exercise, owner=dave, state=EnvironmentState.FAILED, error="The lab host did not answer.")
    jobs = {
        "failed": make_job(bob, "diagnostics", Status.FAILED, LOG),
        "succeeded": make_job(bob, "diagnostics", Status.SUCCEEDED, [("", "", "ok", "all good", False), ("", "", "", "Finished: succeeded.", True)]),
        "running": make_job(bob, "diagnostics", Status.RUNNING, LOG[:2]),
        "queued": make_job(alice, "diagnostics", Status.QUEUED, []),
        "lab": make_job(sam, "lab-check", Status.SUCCEEDED, [("", "The web tier answers", "ok", "2/2 200 OK", False), ("", "", "", "Finished: succeeded.", True)],
                        target_repr=ready.name),
    }
    Job.objects.filter(pk__in=[job.pk for job in jobs.values()]).update(target_repr="web01")
    return {"servers": servers, "docker": docker, "kube": kube, "service": service, "course": course, "exercise": exercise,
            "environment": ready, "jobs": jobs}


def pages_of(role, world):
    job, lab_job = world["jobs"]["failed"], world["jobs"]["lab"]
    course, exercise, environment = world["course"], world["exercise"], world["environment"]
    operator = ["/", "/jobs/", f"/jobs/{job.pk}/", "/inventory/", f"/inventory/servers/{world['servers'][0].pk}/", "/inventory/groups/",
                "/inventory/credentials/", "/inventory/clusters/", f"/inventory/clusters/{world['docker'].pk}/",
                f"/inventory/clusters/{world['kube'].pk}/", "/services/", f"/services/{world['service'].pk}/", "/accounts/tokens/"]
    return {
        "admin": [*operator, "/audit/", "/labs/", f"/labs/courses/{course.pk}/"],
        "operator": operator,
        "teacher": ["/", "/labs/", f"/labs/courses/{course.pk}/", f"/labs/exercises/{exercise.pk}/", f"/labs/environments/{environment.pk}/",
                    "/jobs/", "/accounts/tokens/"],
        "student": ["/", "/labs/", f"/labs/courses/{course.pk}/", f"/labs/exercises/{exercise.pk}/", f"/labs/environments/{environment.pk}/",
                    "/jobs/", f"/jobs/{lab_job.pk}/", "/accounts/tokens/"],
    }[role]


def axe_violations(page):
    """axe-core's violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text() + "\n;true")
    return page.evaluate("axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact, "
                         "help: v.help, nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary}))})))")


def audit(page, url, artifacts, name):
    response = page.goto(url, wait_until="networkidle")
    assert response.status == 200, url
    page.screenshot(path=str(artifacts / f"a11y-{name}.png"), full_page=True)
    return [dict(violation, url=url) for violation in axe_violations(page)]


def report(violations):
    lines = []
    for violation in violations:
        lines.append(f"{violation['impact']} {violation['id']} on {violation['url']}: {violation['help']}")
        lines += [f"    {node['target']}: {node['summary'].splitlines()[-1].strip()}" for node in violation["nodes"][:6]]
    return "\n".join(lines)


@pytest.mark.parametrize("role,username", [("admin", "alice"), ("operator", "bob"), ("teacher", "carol"), ("student", "sam")])
def test_the_main_pages_of_each_role_have_no_critical_or_serious_violation(role, username, world, page, live_server, artifacts):
    login(page, live_server, username, PASSWORD)
    found = []
    for url in pages_of(role, world):
        name = f"{role}-{url.strip('/').replace('/', '-') or 'dashboard'}"
        found += audit(page, live_server.url + url, artifacts, name)

    blocking = [violation for violation in found if violation["impact"] in BLOCKING]
    (artifacts / f"a11y-{role}.json").write_text(json.dumps(found, indent=1))
    (artifacts / f"a11y-{role}.pages").write_text("\n".join(pages_of(role, world)))
    assert blocking == [], "\n" + report(blocking)


def test_the_login_page_has_no_critical_or_serious_violation_in_english_and_french(page, live_server, artifacts, db):
    found = audit(page, f"{live_server.url}/accounts/login/", artifacts, "login")
    page.select_option("#language", "fr")
    page.click("form.langswitch button")
    page.wait_for_selector("html[lang=fr]")
    found += [dict(violation, url="login (fr)") for violation in axe_violations(page)]

    blocking = [violation for violation in found if violation["impact"] in BLOCKING]
    (artifacts / "a11y-anonymous.json").write_text(json.dumps(found, indent=1))
    assert blocking == [], "\n" + report(blocking)


def test_the_checker_finds_a_contrast_failure_when_there_is_one(page, live_server, db):
    """The measure itself works: grey on grey is reported as a serious violation."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.evaluate("document.querySelector('h1').style.color = '#c8c8c8'")

    assert "color-contrast" in {violation["id"] for violation in axe_violations(page) if violation["impact"] == "serious"}


def test_the_first_tab_stop_is_a_skip_link_that_takes_focus_to_the_content(page, live_server, bob, artifacts):
    login(page, live_server, "bob", PASSWORD)
    page.goto(f"{live_server.url}/jobs/")

    page.keyboard.press("Tab")

    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.is_visible(".skip-link") and page.inner_text(".skip-link") == "Skip to content"
    page.screenshot(path=str(artifacts / "a11y-skip-link.png"))
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Run Diagnostics"


def test_arrow_keys_in_the_language_list_do_not_reload_the_page_and_enter_applies_it(page, live_server, bob):
    login(page, live_server, "bob", PASSWORD)
    page.goto(f"{live_server.url}/jobs/")
    page.evaluate("window.stillTheSamePage = true")
    page.focus("#language")

    page.keyboard.press("ArrowDown")

    assert page.input_value("#language") == "fr"
    assert page.evaluate("window.stillTheSamePage === true") and page.get_attribute("html", "lang") == "en"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_selector("html[lang=fr]")
    assert page.url == f"{live_server.url}/jobs/"


def test_the_language_button_applies_the_chosen_language(page, live_server, db):
    page.goto(f"{live_server.url}/accounts/login/")
    page.select_option("#language", "fr")
    assert page.get_attribute("html", "lang") == "en"

    page.click("form.langswitch button")

    page.wait_for_selector("html[lang=fr]")


def test_the_user_menu_closes_with_escape_and_gives_focus_back_to_its_button(page, live_server, bob):
    login(page, live_server, "bob", PASSWORD)
    page.goto(f"{live_server.url}/jobs/")
    page.focus("details.menu summary")
    page.keyboard.press("Enter")
    assert page.is_visible("text=API tokens")
    page.keyboard.press("Tab")  # into the menu

    page.keyboard.press("Escape")

    assert not page.evaluate("document.querySelector('details.menu').open")
    assert page.evaluate("document.activeElement.tagName") == "SUMMARY"


def test_the_user_menu_closes_on_a_click_outside_it(page, live_server, bob):
    login(page, live_server, "bob", PASSWORD)
    page.goto(f"{live_server.url}/jobs/")
    page.click("details.menu summary")
    assert page.evaluate("document.querySelector('details.menu').open")

    page.click("h1")

    assert not page.evaluate("document.querySelector('details.menu').open")


def test_a_filter_drop_down_opens_from_the_keyboard_and_closes_with_escape(page, live_server, bob, artifacts):
    login(page, live_server, "bob", PASSWORD)
    page.goto(f"{live_server.url}/jobs/")
    page.focus(".filter-choices summary")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "status"
    page.keyboard.press("Space")  # ticks "Queued"; the table follows (htmx)
    wait_until(lambda: "status=queued" in page.evaluate("location.search"), timeout=15, message="the status filter to apply")
    page.screenshot(path=str(artifacts / "jobs-status-filter-open.png"))

    page.keyboard.press("Escape")

    assert not page.evaluate("document.querySelector('.filter-choices').open")
    assert "Queued" in page.inner_text(".filter-choices summary")
