"""A student works in their SSH lab host from the exercise page's terminal and scores by
that work; another student is refused; the teacher watches read-only and replays."""

import json

import pytest
from django.urls import reverse
from websockets.exceptions import InvalidStatus

from labs.models import Attempt, Environment, EnvironmentState
from panel.audit.models import AuditEvent
from terminals.models import TerminalSession
from tests.fixtures.actors import logged_in
from tests.labs.jobhelpers import job_text as lab_job_text
from tests.labs.jobhelpers import run_now
from tests.terminals.conftest import wait_in_page, screen, type_line, wait_for_screen, wait_for_state, ws_connect

from .conftest import make_exercise

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("lab_host_base", "lab_sweep"), pytest.mark.ssh,
              pytest.mark.docker, pytest.mark.browser]


def check_results(environment, student):
    job = run_now("lab-check", environment, user=student)
    assert job.status == "succeeded", lab_job_text(job)
    attempt = Attempt.objects.get(job=job)
    return attempt, {result["name"]: result for result in attempt.results}


def test_a_student_scores_by_work_done_in_the_lab_terminal_and_the_teacher_watches(
        ssh_course, sam, dave, carol, asgi_server, browser_as, chromium, artifacts):
    environment = Environment.objects.create(exercise=make_exercise(ssh_course, "ssh-harden-systemd"), owner=sam)
    launch = run_now("lab-launch", environment, user=sam)
    assert launch.status == "succeeded", lab_job_text(launch)
    _, before = check_results(environment, sam)
    assert not before["The deploy user exists"]["passed"]

    page = browser_as(sam)
    page.goto(f"{asgi_server.url}/labs/environments/{environment.pk}/")
    assert page.locator("#lab-workspace .instructions").inner_text().startswith("You get your own Debian server")
    wait_for_state(page, "connected")
    type_line(page, "whoami; hostname")
    wait_for_screen(page, "student")
    type_line(page, "sudo useradd --create-home --shell /bin/bash deploy && id -un deploy")
    wait_for_screen(page, "\ndeploy")
    page.reload()  # the student's reload rejoins the same shell: no second live session
    wait_for_state(page, "connected")
    wait_for_screen(page, "\ndeploy")
    assert TerminalSession.objects.filter(user=sam).count() == 1

    # The teacher watches the live terminal, read-only.
    watcher = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
    browser_as(carol, on_page=watcher)
    sessions_before = TerminalSession.objects.count()
    watcher.goto(f"{asgi_server.url}/labs/environments/{environment.pk}/")
    # On the student's page the teacher's terminal does not open by itself: the student's
    # live terminal is shown read-only (index 0), the teacher's own box waits for the button.
    wait_for_state(watcher, "watching", index=0)
    wait_for_screen(watcher, "student", index=0)
    own = watcher.locator(".lab-own-terminal [data-terminal]")
    assert own.get_attribute("data-state") == "idle" and own.locator(".terminal-open").is_visible()
    type_line(page, "echo inline-$((6*7))")
    wait_for_screen(watcher, "inline-42", index=0)
    watcher.locator(".terminal-screen").nth(0).click()
    watcher.keyboard.type("echo teacher-inline\n")  # read-only: ignored
    watcher.reload()
    wait_for_state(watcher, "watching", index=0)
    assert TerminalSession.objects.count() == sessions_before
    assert not AuditEvent.objects.filter(user=carol, action="terminal_open").exists()
    # The button opens the teacher's own shell in the environment (one session, audited).
    own.locator(".terminal-open").click()
    wait_for_state(watcher, "connected", index=1)
    type_line(watcher, "whoami", index=1)
    wait_for_screen(watcher, "student", index=1)
    assert TerminalSession.objects.filter(user=carol).count() == 1
    assert AuditEvent.objects.filter(user=carol, action="terminal_open").count() == 1
    assert "teacher-inline" not in screen(page)
    type_line(watcher, "exit", index=1)
    wait_for_state(watcher, "ended", index=1)

    watcher.click("#terminal-sessions a:has-text('Watch')")
    wait_for_state(watcher, "watching")
    wait_for_screen(watcher, "student")  # the recent output is replayed to a late joiner
    type_line(page, "echo seen-by-the-teacher-$((5*5))")
    wait_for_screen(watcher, "seen-by-the-teacher-25")
    watcher.locator(".terminal-screen").click()
    watcher.keyboard.type("echo teacher-typed\n")  # read-only: ignored
    type_line(page, "echo still-$((1+1))")
    wait_for_screen(page, "still-2")
    assert "teacher-typed" not in screen(page)
    watcher.screenshot(path=str(artifacts / "terminal-lab-watch.png"), full_page=True)
    page.screenshot(path=str(artifacts / "terminal-lab-student.png"), full_page=True)

    # Another student is refused, nothing is opened, and it is audited.
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(asgi_server, f"/ws/terminals/lab/?environment={environment.pk}", user=dave)
    assert refused.value.response.status_code == 403
    assert AuditEvent.objects.filter(user=dave, message__startswith="Terminal refused").exists()
    # ...and so is a student on an operator's page of the inventory.
    assert TerminalSession.objects.filter(user=dave).count() == 0

    attempt, after = check_results(environment, sam)
    assert after["The deploy user exists"]["passed"] and attempt.score > 0
    type_line(page, "exit")
    wait_for_state(page, "ended")
    session = TerminalSession.objects.get(user=sam)
    assert session.kind == "lab" and session.object_id == str(environment.pk)

    # The teacher replays it from the environment page.
    watcher.goto(f"{asgi_server.url}/labs/environments/{environment.pk}/")
    watcher.click(f"#terminal-sessions tr[data-session='{session.pk}'] a")
    wait_in_page(watcher, "window.filrougePlayer !== undefined")
    watcher.evaluate("() => { window.filrougePlayer.play(); }")
    wait_in_page(watcher, "document.querySelector('#replay-player').innerText.includes('seen-by-the-teacher-25')", 30_000)
    watcher.context.close()


def test_another_student_cannot_open_or_watch_a_lab_terminal(ssh_course, sam, dave, asgi_server):
    environment = Environment.objects.create(exercise=make_exercise(ssh_course, "ssh-harden-systemd"), owner=sam)
    launch = run_now("lab-launch", environment, user=sam)
    assert launch.status == "succeeded", lab_job_text(launch)
    with ws_connect(asgi_server, f"/ws/terminals/lab/?environment={environment.pk}", user=sam) as socket:
        session_id = json.loads(socket.recv(timeout=30))["id"]
        for path in (f"/ws/terminals/lab/?environment={environment.pk}", f"/ws/terminals/lab/?watch={session_id}",
                     f"/ws/terminals/lab/?session={session_id}"):
            with pytest.raises(InvalidStatus) as refused:
                ws_connect(asgi_server, path, user=dave)
            assert refused.value.response.status_code == 403
    assert TerminalSession.objects.count() == 1
    assert AuditEvent.objects.filter(user=dave, message__startswith="Terminal refused").count() == 3


def test_the_teachers_page_shows_a_shell_the_student_opens_later_without_a_reload(
        ssh_course, sam, carol, asgi_server, browser_as, chromium):
    environment = Environment.objects.create(exercise=make_exercise(ssh_course, "ssh-harden-systemd"), owner=sam)
    launch = run_now("lab-launch", environment, user=sam)
    assert launch.status == "succeeded", lab_job_text(launch)

    # The teacher's page is open first: the student has no terminal yet.
    watcher = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
    refused = []
    # (xterm's own <style> writes are refused and mirrored, see terminal.js: only scripts count here)
    watcher.on("console", lambda message: refused.append(message.text) if "script-src" in message.text or "eval" in message.text else None)
    browser_as(carol, on_page=watcher)
    watcher.goto(f"{asgi_server.url}/labs/environments/{environment.pk}/")
    assert watcher.locator("#no-live-terminal").is_visible()
    assert watcher.locator("[data-terminal]").count() == 1  # only the teacher's own, idle box
    watcher.evaluate("() => { window.notReloaded = true; }")

    # The student opens their terminal and types; the teacher's page follows, read-only.
    page = browser_as(sam)
    page.goto(f"{asgi_server.url}/labs/environments/{environment.pk}/")
    wait_for_state(page, "connected")
    wait_for_state(watcher, "watching", index=0, timeout=30_000)
    assert watcher.locator("#no-live-terminal").count() == 0
    type_line(page, "echo appeared-$((40+2))")
    wait_for_screen(page, "appeared-42")
    wait_for_screen(watcher, "appeared-42", index=0)
    assert watcher.evaluate("() => window.notReloaded") is True  # the same page, not a reload
    own = watcher.locator(".lab-own-terminal [data-terminal]")
    assert own.get_attribute("data-state") == "idle"  # the teacher's own box still waits for its button
    # The next polls do not add the same shell twice.
    watcher.wait_for_timeout(3500)
    assert watcher.locator("#lab-watch-list [data-terminal]").count() == 1
    assert not refused, refused  # the poll needs no script the page's CSP refuses (hx-on, filters)
    watcher.context.close()


def test_only_a_teacher_of_the_course_or_an_admin_polls_the_students_terminals(ssh_course, sam, dave, carol, alice, charlie):
    environment = Environment.objects.create(exercise=make_exercise(ssh_course, "ssh-harden-systemd"), owner=sam,
                                             state=EnvironmentState.READY)
    url = reverse("labs:environment_watch_terminals", args=[environment.pk])
    live = TerminalSession.objects.create(user=sam, username="sam", kind="lab", target_label="lab", object_id=str(environment.pk))
    TerminalSession.objects.create(user=carol, username="carol", kind="lab", target_label="lab", object_id=str(environment.pk))
    for teacher in (carol, alice):
        answer = logged_in(teacher).get(url, HTTP_HX_REQUEST="true")
        assert answer.status_code == 200
        body = answer.content.decode()
        assert f'data-watch-session="{live.pk}"' in body and f"watch={live.pk}" in body
        assert body.count("data-watch-session") == 1  # the teacher's own shell is not the student's
    assert logged_in(sam).get(url).status_code == 403  # the owner: their page has their own terminal
    assert logged_in(dave).get(url).status_code == 404  # another student's environment
    assert logged_in(charlie).get(url).status_code == 403  # no lab role
    environment.state = EnvironmentState.DESTROYED
    environment.save()
    assert logged_in(carol).get(url).status_code == 286  # htmx: stop polling
