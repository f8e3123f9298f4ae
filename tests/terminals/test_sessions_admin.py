"""Admins see live sessions and end one; recordings are listed to whom they belong."""

import json

import pytest

from panel.audit.models import AuditEvent
from terminals.models import TerminalSession
from tests.fixtures.actors import logged_in

from .conftest import ssh_server, ws_connect, ws_read_until

pytestmark = [pytest.mark.ssh, pytest.mark.django_db(transaction=True)]


def test_an_admin_sees_a_live_session_and_ends_it(asgi_server, alice, bob, carol, sshd_fleet_factory):
    server = ssh_server(sshd_fleet_factory(1))
    with ws_connect(asgi_server, f"/ws/terminals/server/?server={server.pk}", user=bob) as socket:
        session_id = json.loads(socket.recv(timeout=20))["id"]
        socket.send(json.dumps({"type": "input", "data": "echo working-$((4*4))\r"}))
        ws_read_until(socket, "working-16")

        admin = logged_in(alice)
        listing = admin.get("/terminals/sessions/?live=1").content.decode()
        assert session_id in listing and "bob" in listing and server.name in listing
        assert logged_in(carol).get("/terminals/sessions/").content.decode().count(session_id) == 0  # not a teacher's business
        assert logged_in(bob).post(f"/terminals/sessions/{session_id}/end/").status_code == 403  # only admins end others' sessions
        response = admin.post(f"/terminals/sessions/{session_id}/end/")
        assert response.status_code == 302

        while True:
            message = json.loads(socket.recv(timeout=60))
            if message["type"] == "ended":
                break
        assert "alice" in message["message"], message
    session = TerminalSession.objects.get(pk=session_id)
    assert session.ended_at is not None and session.ended_by == "alice"
    assert AuditEvent.objects.filter(action="terminal_stop", message__contains="Terminal ended").exists()
    assert session_id not in logged_in(alice).get("/terminals/sessions/?live=1").content.decode()
    replay = logged_in(bob).get(f"/terminals/sessions/{session_id}/")
    assert replay.status_code == 200 and "working-16" in logged_in(bob).get(f"/terminals/sessions/{session_id}/recording.cast").content.decode()
    assert logged_in(carol).get(f"/terminals/sessions/{session_id}/").status_code == 404


def test_the_idle_timeout_closes_the_shell(asgi_server, bob, sshd_fleet_factory, settings):
    settings.TERMINAL_IDLE_TIMEOUT = 2
    server = ssh_server(sshd_fleet_factory(1))
    with ws_connect(asgi_server, f"/ws/terminals/server/?server={server.pk}", user=bob) as socket:
        while True:
            message = json.loads(socket.recv(timeout=30))
            if message["type"] == "ended":
                break
    assert "idle" in message["message"]
    assert TerminalSession.objects.get().end_reason.startswith("No input")


def test_nobody_reconnecting_within_the_grace_period_closes_the_shell(asgi_server, bob, sshd_fleet_factory, settings):
    from tests.support.ports import wait_until

    settings.TERMINAL_RECONNECT_GRACE = 1
    server = ssh_server(sshd_fleet_factory(1))
    with ws_connect(asgi_server, f"/ws/terminals/server/?server={server.pk}", user=bob) as socket:
        json.loads(socket.recv(timeout=20))
    wait_until(lambda: TerminalSession.objects.get().ended_at is not None, timeout=30, message="the shell to close")
    assert "reconnected" in TerminalSession.objects.get().end_reason
