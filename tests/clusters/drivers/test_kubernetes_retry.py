"""The driver sends a request again once when the server drops the connection without an
answer (a stale keep-alive connection), and reports anything else at once. A tiny real
HTTP server plays the API server that drops connections."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clusters.drivers.base import HostUnreachable
from clusters.drivers.kubernetes import build_kubeconfig, connect_kubeconfig, server_version


class DroppingServer:
    def __init__(self, drops):
        self.drops = drops
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                owner.requests += 1
                if owner.requests <= owner.drops:
                    self.close_connection = True
                    return  # no answer at all: the client sees RemoteDisconnected
                body = json.dumps({"major": "1", "minor": "31", "gitVersion": "v1.31.0", "gitCommit": "0" * 40, "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def dropping_server(request):
    server = DroppingServer(request.param)
    yield server
    server.stop()


@pytest.mark.parametrize("dropping_server", [1], indirect=True)
def test_a_dropped_connection_is_tried_again_once(dropping_server):
    api_client = connect_kubeconfig(build_kubeconfig(dropping_server.url, "token"))
    assert server_version(api_client) == "v1.31.0"
    assert dropping_server.requests == 2


@pytest.mark.parametrize("dropping_server", [2], indirect=True)
def test_a_server_that_keeps_dropping_is_reported_unreachable(dropping_server):
    api_client = connect_kubeconfig(build_kubeconfig(dropping_server.url, "token"))
    with pytest.raises(HostUnreachable) as raised:
        server_version(api_client)
    assert "Cannot reach the Kubernetes API" in str(raised.value)
    assert dropping_server.requests == 2
