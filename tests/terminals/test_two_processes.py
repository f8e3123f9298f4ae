"""Two web processes: a shell held by one is reached from the other through the channel
layer (a reconnect that lands elsewhere, a watcher), as with several gunicorn workers."""

import json
import sys

import pytest

from terminals.models import TerminalSession
from tests.fixtures.workers import Process, child_env
from tests.support.ports import free_port, wait_for_port

from .conftest import ssh_server, ws_connect, ws_read_until

pytestmark = [pytest.mark.ssh, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def second_process(asgi_server, tmp_path):
    port = free_port()
    process = Process("web-b", [sys.executable, "-m", "uvicorn", "panel.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                                "--log-level", "warning"], child_env(), tmp_path)
    wait_for_port("127.0.0.1", port, timeout=60)
    yield type("Other", (), {"url": f"http://localhost:{port}", "ws_url": f"ws://localhost:{port}"})()
    process.stop()


def test_a_reconnect_on_another_process_reaches_the_same_shell(asgi_server, second_process, bob, alice, sshd_fleet_factory):
    server = ssh_server(sshd_fleet_factory(1))
    with ws_connect(asgi_server, f"/ws/terminals/server/?server={server.pk}", user=bob) as first:
        session_id = json.loads(first.recv(timeout=30))["id"]
        first.send(json.dumps({"type": "input", "data": "export X=20\r"}))
        first.send(json.dumps({"type": "input", "data": "echo set-$X\r"}))
        ws_read_until(first, "set-20")
    # The page comes back on the other process: same shell, recent output replayed.
    with ws_connect(second_process, f"/ws/terminals/server/?server={server.pk}&session={session_id}", user=bob) as again:
        hello = json.loads(again.recv(timeout=30))
        assert hello.get("type") == "session" and hello.get("id") == session_id and hello.get("readonly") is False, hello
        replay = json.loads(again.recv(timeout=30))
        assert replay["type"] == "output" and replay.get("replay") and "set-20" in replay["data"]
        # An admin watches from the other process too, read-only.
        with ws_connect(second_process, f"/ws/terminals/server/?watch={session_id}", user=alice) as watcher:
            assert json.loads(watcher.recv(timeout=30))["readonly"] is True
            watcher.send(json.dumps({"type": "input", "data": "echo from-the-watcher\r"}))
            again.send(json.dumps({"type": "input", "data": "echo again-$((X+2))\r"}))
            output, _ = ws_read_until(again, "again-22")
            seen, _ = ws_read_until(watcher, "again-22")
        assert "from-the-watcher" not in output
    assert TerminalSession.objects.count() == 1
