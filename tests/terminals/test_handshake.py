"""The websocket handshake: refused (403, nothing opened, audited) unless the session,
the Origin and the object all hold; what is opened is audited and recorded."""

import gzip
import json

import pytest
from websockets.exceptions import InvalidStatus

from panel.audit.models import AuditEvent
from terminals.models import TerminalSession

from .conftest import ssh_server, ws_connect, ws_read_until

pytestmark = [pytest.mark.ssh, pytest.mark.django_db(transaction=True)]

SECRET = "s3cret-Become-9x"


def refused(asgi_server, path, **kwargs):
    with pytest.raises(InvalidStatus) as caught:
        ws_connect(asgi_server, path, **kwargs)
    return caught.value.response.status_code


def refusals():
    return list(AuditEvent.objects.filter(message__startswith="Terminal refused").order_by("pk"))


def test_it_refuses_a_student_on_a_server_terminal(asgi_server, sam, sshd_fleet_factory):
    server = ssh_server(sshd_fleet_factory(1))
    assert refused(asgi_server, f"/ws/terminals/server/?server={server.pk}", user=sam) == 403
    assert TerminalSession.objects.count() == 0
    [event] = refusals()
    assert event.user == sam and "Only operators" in event.message
    from tests.fixtures.actors import logged_in

    assert logged_in(sam).get(f"/terminals/open/server/?server={server.pk}").status_code == 403  # nor the page


def test_it_refuses_a_handshake_without_a_session(asgi_server, sshd_fleet_factory):
    server = ssh_server(sshd_fleet_factory(1))
    assert refused(asgi_server, f"/ws/terminals/server/?server={server.pk}") == 403
    assert refused(asgi_server, f"/ws/terminals/server/?server={server.pk}", cookie="sessionid=expired-or-forged") == 403
    assert TerminalSession.objects.count() == 0
    assert [event.user for event in refusals()] == [None, None]
    assert all("not logged in" in event.message for event in refusals())


def test_it_refuses_a_foreign_origin(asgi_server, bob, sshd_fleet_factory):
    server = ssh_server(sshd_fleet_factory(1))
    assert refused(asgi_server, f"/ws/terminals/server/?server={server.pk}", user=bob, origin="http://evil.example") == 403
    assert TerminalSession.objects.count() == 0
    [event] = refusals()
    assert event.user == bob and "evil.example" in event.message


def test_it_refuses_someone_elses_session_id(asgi_server, bob, alice, sshd_fleet_factory):
    server = ssh_server(sshd_fleet_factory(1))
    with ws_connect(asgi_server, f"/ws/terminals/server/?server={server.pk}", user=bob) as socket:
        first = json.loads(socket.recv(timeout=20))
        assert first["type"] == "session"
        other = ssh_server(sshd_fleet_factory(1), name="term02")
        from clusters.models import Server

        assert Server.objects.count() == 2 and other.pk
        # Another operator cannot take over bob's shell by its id (an admin watches instead).
        from tests.fixtures.actors import make_user
        from panel.accounts.models import Role

        eve = make_user("eve", Role.OPERATOR)
        assert refused(asgi_server, f"/ws/terminals/server/?server={server.pk}&session={first['id']}", user=eve) == 403
    assert TerminalSession.objects.count() == 1


def test_it_redacts_the_credential_secrets_from_the_recording_even_when_split(asgi_server, bob, sshd_fleet_factory):
    server = ssh_server(sshd_fleet_factory(1), become_password=SECRET)
    with ws_connect(asgi_server, f"/ws/terminals/server/?server={server.pk}", user=bob) as socket:
        half = len(SECRET) // 2
        socket.send(json.dumps({"type": "input", "data": f"echo {SECRET}; printf '%s' '{SECRET[:half]}'; sleep 0.5; printf '%s\\n' '{SECRET[half:]}'; echo done-$((2+3))\r"}))
        output, _ = ws_read_until(socket, "done-5")
        assert SECRET in output  # the person at the terminal sees what they printed
        socket.send(json.dumps({"type": "input", "data": "exit\r"}))
        while json.loads(socket.recv(timeout=20))["type"] != "ended":
            pass
    session = TerminalSession.objects.get()
    text = gzip.open(session.recording_path, "rt").read()
    assert SECRET not in text and SECRET[:half] + SECRET[half:] not in text.replace("\\r\\n", "")
    assert "[redacted]" in text and "done-5" in text
    events = [json.loads(line) for line in text.splitlines()[1:]]
    printed = "".join(data for _, kind, data in events if kind == "o")
    assert SECRET not in printed and printed.count("[redacted]") >= 2
    end = AuditEvent.objects.filter(message__startswith="Terminal ended").get()
    assert end.after["terminal_session"] == str(session.pk) and end.after["output_bytes"] > 0


def test_input_typed_without_echo_is_not_recorded(asgi_server, bob, sshd_fleet_factory):
    server = ssh_server(sshd_fleet_factory(1))
    with ws_connect(asgi_server, f"/ws/terminals/server/?server={server.pk}", user=bob) as socket:
        # Echo goes off before the prompt is printed (bash's `read -s` prints its prompt first).
        # (the prompt is split in the command line, so that its echo does not look like the prompt)
        socket.send(json.dumps({"type": "input", "data": "stty -echo; printf 'Pass''word: '; read P; stty echo; echo; echo got-${#P}-chars\r"}))
        ws_read_until(socket, "Password: ")
        for key in "hunter2-typed":
            socket.send(json.dumps({"type": "input", "data": key}))
        socket.send(json.dumps({"type": "input", "data": "\r"}))
        ws_read_until(socket, "got-13-chars")
        for key in "echo visible-typing":
            socket.send(json.dumps({"type": "input", "data": key}))
        socket.send(json.dumps({"type": "input", "data": "\r"}))
        ws_read_until(socket, "visible-typing\r\n")
    manager_session = TerminalSession.objects.get()
    from terminals.live import manager

    asgi_server.call(manager.get(manager_session.pk).end("test over"))
    events = [json.loads(line) for line in gzip.open(manager_session.recording_path, "rt").read().splitlines()[1:]]
    typed = "".join(data for _, kind, data in events if kind == "i")
    assert "hunter2" not in typed and "h" not in typed.split("got")[0].replace("echo", "").replace("read", "").replace("chars", "")[-20:]
    assert "echo visible-typing" in typed
