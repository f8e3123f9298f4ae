"""An operator opens a shell on a real sshd from the server page, in Chromium."""

import gzip
import json

import pytest

from terminals.models import TerminalSession

from .conftest import wait_in_page, screen, ssh_server, type_line, wait_for_screen, wait_for_state

pytestmark = [pytest.mark.browser, pytest.mark.ssh, pytest.mark.django_db(transaction=True)]


def test_an_operator_types_into_a_server_shell_resizes_it_and_quits_top(browser_as, asgi_server, bob, sshd_fleet_factory, artifacts):
    server = ssh_server(sshd_fleet_factory(1))
    page = browser_as(bob)
    page.goto(f"{asgi_server.url}/inventory/servers/{server.pk}/")
    page.click("#open-terminal")
    wait_for_state(page, "connected")

    type_line(page, "echo hello-$((6*7))")
    wait_for_screen(page, "hello-42")

    page.set_viewport_size({"width": 900, "height": 700})
    wait_in_page(page, "window.filrougeTerminals[0].term.cols < 100")
    cols, rows = page.evaluate("[window.filrougeTerminals[0].term.cols, window.filrougeTerminals[0].term.rows]")
    type_line(page, "stty size")
    wait_for_screen(page, f"{rows} {cols}")

    type_line(page, "top")
    wait_for_screen(page, "load average")
    page.keyboard.press("q")
    type_line(page, "echo after-$((1+1))-top")
    wait_for_screen(page, "after-2-top")
    type_line(page, "printf '\\xc3\\xa9t\\xc3\\xa9 \\033[31mred\\033[0m\\n'")
    wait_for_screen(page, "été red")
    page.screenshot(path=str(artifacts / "terminal-ssh.png"), full_page=True)

    type_line(page, "exit")
    wait_for_state(page, "ended")
    session = TerminalSession.objects.get()
    assert session.user == bob and session.kind == "server" and session.ended_at is not None
    assert session.exit_status == 0 and session.audit_event.message.startswith("Terminal opened")
    with gzip.open(session.recording_path, "rt") as handle:
        lines = handle.read().splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and header["width"] > 0
    events = [json.loads(line) for line in lines[1:]]
    output = "".join(data for _, kind, data in events if kind == "o")
    assert "hello-42" in output and "load average" in output
    assert any(kind == "r" and data == f"{cols}x{rows}" for _, kind, data in events)
    typed = "".join(data for _, kind, data in events if kind == "i")
    assert "stty size" in typed


def test_a_dropped_connection_rejoins_the_same_shell(browser_as, asgi_server, bob, sshd_fleet_factory):
    server = ssh_server(sshd_fleet_factory(1))
    page = browser_as(bob)
    page.goto(f"{asgi_server.url}/terminals/open/server/?server={server.pk}")
    wait_for_state(page, "connected")
    type_line(page, "export X=41")
    type_line(page, "echo ready-$X")
    wait_for_screen(page, "ready-41")
    first = page.evaluate("window.filrougeTerminals[0].sessionId")

    page.evaluate("window.filrougeTerminals[0].socket.close()")  # the network drops
    wait_in_page(page, "document.querySelector('[data-terminal]').dataset.state !== 'connected'")
    wait_for_state(page, "connected")
    assert page.evaluate("window.filrougeTerminals[0].sessionId") == first
    type_line(page, "echo again-$((X+1))")
    wait_for_screen(page, "again-42")

    page.reload()  # a reload rejoins too (the id is kept in the tab)
    wait_for_state(page, "connected")
    wait_for_screen(page, "again-42")  # the recent output is replayed
    type_line(page, "echo third-$((X+2))")
    wait_for_screen(page, "third-43")
    assert TerminalSession.objects.count() == 1


def test_a_recording_replays_in_the_browser_without_the_known_secret(browser_as, asgi_server, bob, sshd_fleet_factory, artifacts):
    secret = "Replay-Secret-77x"
    server = ssh_server(sshd_fleet_factory(1), become_password=secret)
    page = browser_as(bob)
    page.goto(f"{asgi_server.url}/terminals/open/server/?server={server.pk}")
    wait_for_state(page, "connected")
    type_line(page, "echo replay-$((40+2)); echo " + secret)
    wait_for_screen(page, "replay-42")
    assert secret in screen(page)
    type_line(page, "exit")
    wait_for_state(page, "ended")
    session = TerminalSession.objects.get()

    page.goto(f"{asgi_server.url}/terminals/sessions/")
    page.click(f"tr[data-session='{session.pk}'] a")
    wait_in_page(page, "window.filrougePlayer !== undefined")
    page.evaluate("() => { window.filrougePlayer.play(); }")
    wait_in_page(page, "document.querySelector('#replay-player').innerText.includes('replay-42')", 30_000)
    wait_in_page(page, "document.querySelector('#replay-player').innerText.includes('[redacted]')", 30_000)
    text = page.inner_text("#replay-player")
    assert "echo replay-$((40+2))" in text and secret not in text
    page.screenshot(path=str(artifacts / "terminal-replay.png"), full_page=True)
    cast = page.request.get(f"{asgi_server.url}/terminals/sessions/{session.pk}/recording.cast").text()
    assert secret not in cast and "replay-42" in cast
