"""An operator opens a shell in a real Docker container, in Chromium."""

import pytest

from clusters.models import Cluster
from terminals.models import TerminalSession

from .conftest import wait_in_page, type_line, wait_for_screen, wait_for_state, ws_connect

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.django_db(transaction=True)]


def local_engine():
    return Cluster.objects.create(name="local-engine", kind="docker", endpoint="unix:///var/run/docker.sock")


def test_an_operator_types_into_a_container_shell(browser_as, asgi_server, bob, container_factory, http_app_images, artifacts):
    container = container_factory(http_app_images["1"], name_prefix="filrouge-test-term")
    cluster = local_engine()
    page = browser_as(bob)
    page.goto(f"{asgi_server.url}/terminals/open/container/?cluster={cluster.pk}&container={container.id[:12]}")
    wait_for_state(page, "connected")
    type_line(page, "echo in-container-$((3*3)); cat /www/index.html")
    wait_for_screen(page, "in-container-9")
    wait_for_screen(page, "version 1")
    page.set_viewport_size({"width": 800, "height": 600})
    wait_in_page(page, "window.filrougeTerminals[0].term.cols < 90")
    cols, rows = page.evaluate("[window.filrougeTerminals[0].term.cols, window.filrougeTerminals[0].term.rows]")
    type_line(page, "stty size")
    wait_for_screen(page, f"{rows} {cols}")
    page.screenshot(path=str(artifacts / "terminal-container.png"), full_page=True)

    container.kill()  # the target goes away under the shell
    wait_for_state(page, "ended")
    assert "exited" in page.inner_text(".terminal-status").lower() or "ended" in page.inner_text(".terminal-status").lower()
    session = TerminalSession.objects.get()
    assert session.kind == "container" and session.ended_at is not None


def test_a_stopped_container_gives_a_clear_message(asgi_server, bob, container_factory, http_app_images):
    import json

    container = container_factory(http_app_images["1"], name_prefix="filrouge-test-term")
    container.stop(timeout=1)
    cluster = local_engine()
    with ws_connect(asgi_server, f"/ws/terminals/container/?cluster={cluster.pk}&container={container.id[:12]}", user=bob) as socket:
        message = json.loads(socket.recv(timeout=20))
    assert message["type"] == "error" and "not running" in message["message"]
    session = TerminalSession.objects.get()
    assert session.end_reason.startswith("Could not open")
