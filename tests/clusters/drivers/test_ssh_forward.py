"""`SshConnection.forward_local` (ssh -L) through a real sshd to a real HTTP server behind it."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from clusters.drivers.base import HostUnreachable
from clusters.drivers.ssh import SshConnection, SshTarget
from tests.support.ports import free_port

pytestmark = pytest.mark.ssh


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = f"hello from {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def web_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def connect(fleet):
    member = fleet.hosts[0]
    target = SshTarget(name="host0", address=member.host, port=member.port, user=fleet.user,
                       private_key=fleet.client_private_key, pinned_host_key=member.host_public_key)
    return SshConnection(target).connect()


def test_it_relays_requests_both_ways_over_many_connections(sshd_fleet_factory, web_server):
    with connect(sshd_fleet_factory(1)) as connection, connection.forward_local("127.0.0.1", web_server) as forward:
        forward.check()
        host, port = forward.address
        assert host == "127.0.0.1" and port != web_server
        for n in range(20):  # a new TCP connection (so a new SSH channel) each time
            answer = requests.get(f"http://{host}:{port}/page/{n}", timeout=5)
            assert answer.status_code == 200 and answer.text == f"hello from /page/{n}"
        with requests.Session() as session:  # and keep-alive: many requests on one channel
            for n in range(20):
                assert session.post(f"http://{host}:{port}/", data=b"x" * 100_000, timeout=5).content == b"x" * 100_000
        assert forward.refused == 0


def test_a_port_where_nothing_listens_is_reported_and_counted(sshd_fleet_factory):
    closed_port = free_port()
    with connect(sshd_fleet_factory(1)) as connection, connection.forward_local("127.0.0.1", closed_port) as forward:
        with pytest.raises(HostUnreachable, match=f"nothing answers on port {closed_port}"):
            forward.check()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{forward.address[1]}/", timeout=5)
    assert forward.refused == 1


def test_closing_it_stops_listening(sshd_fleet_factory, web_server):
    with connect(sshd_fleet_factory(1)) as connection:
        forward = connection.forward_local("127.0.0.1", web_server)
        port = forward.address[1]
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
        forward.close()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=5)
