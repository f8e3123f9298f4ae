"""The HTTP(S) front end: a threaded ``http.server`` speaking HTTP/1.1 with
keep-alive, bearer-token authentication, request logging, fault injection,
and chunked streaming for watches and followed logs.

TLS handshakes happen in the per-connection thread (not in the accept loop),
so a client that refuses our certificate cannot stall other clients.
"""

from __future__ import annotations

import json
import select
import socket
import socketserver
import ssl
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from .auth import Identity
from .errors import ApiError, injected, unauthorized
from .rest import Request
from .tls import identity_from_peer_cert


class StandinHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, standin, ssl_context=None):
        self.standin = standin
        self.ssl_context = ssl_context
        self._connections = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self):
        """Cut every open connection (keep-alive, watches) so ``stop()`` leaves nothing behind."""
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            try:
                # the plain-socket shutdown: SSLSocket.shutdown would drop the SSL object under a reader
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def server_bind(self):
        # skip HTTPServer.server_bind: its getfqdn() can block on DNS
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = host, port

    def get_request(self):
        sock, addr = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, socket.timeout, OSError)):
            return
        traceback.print_exc()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-standin"
    sys_version = ""
    timeout = 300

    def setup(self):
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(10)
            self.connection.do_handshake()
            self.connection.settimeout(self.timeout)

    def log_message(self, fmt, *args):  # keep test output clean
        pass

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_HEAD(self):
        self._handle("HEAD")

    # --- plumbing ---------------------------------------------------------------------------------
    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self, method):
        standin = self.server.standin
        body = self._read_body()
        standin._log_request(method, self.path)
        url = urlsplit(self.path)
        path = unquote(url.path)
        try:
            fault = standin._take_fault(method, path)
            if fault is not None:
                if fault.get("delay"):
                    time.sleep(fault["delay"])
                if fault.get("status"):
                    raise injected(fault["status"], fault.get("message"))
            identity = None
            auth = self.headers.get("Authorization") or ""
            if auth:
                scheme, _, token = auth.partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise unauthorized()
                identity = standin.authn.authenticate(token.strip(), standin.store)
                if identity is None:
                    raise unauthorized()
            elif isinstance(self.connection, ssl.SSLSocket):
                # A verified client certificate: the user is its CN, the groups its O attributes.
                subject = identity_from_peer_cert(self.connection.getpeercert())
                if subject is not None:
                    username, groups = subject
                    identity = Identity(username, tuple(groups) + ("system:authenticated",))
            req = Request(method if method != "HEAD" else "GET", path,
                          parse_qs(url.query, keep_blank_values=True), self.headers, body, identity)
            resp = standin.api.handle(req)
        except ApiError as err:
            self._send(err.code, err.status(), "application/json", err.headers)
            return
        except Exception as err:  # noqa: BLE001 - answer 500 like a server would
            traceback.print_exc()
            failure = ApiError(500, "InternalError", f"Internal error occurred: {err}")
            self._send(500, failure.status(), "application/json")
            return
        if getattr(resp, "upgrade", None) is not None:
            from .podexec import serve
            serve(self, resp.upgrade)
        elif resp.stream is not None:
            self._stream(resp)
        else:
            self._send(resp.code, resp.body, resp.content_type, resp.headers, head=method == "HEAD")

    def _send(self, code, body, content_type, headers=None, head=False):
        if isinstance(body, (dict, list)):
            data = json.dumps(body, separators=(",", ":")).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body or b""
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(data)
        self.wfile.flush()

    def _stream(self, resp):
        self.send_response(resp.code)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        try:
            for chunk in resp.stream:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                elif self._client_gone():
                    return
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (ConnectionError, ssl.SSLError, OSError):
            return
        finally:
            resp.stream.close()

    def _client_gone(self):
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        if not readable:
            return False
        previous = sock.gettimeout()
        sock.settimeout(0)
        try:
            return sock.recv(1) == b""
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        except OSError:
            return True
        finally:
            try:
                sock.settimeout(previous)
            except OSError:
                pass
