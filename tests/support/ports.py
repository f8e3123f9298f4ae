"""Port and polling helpers.

Why: every service started by the test support listens on a port chosen at run time
(tests run in parallel worktrees on the same machine, so fixed ports would collide), and
every "is it up yet?" question is answered by polling with a deadline instead of a fixed
sleep, so that a fast machine is fast and a slow one still passes.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Callable, TypeVar

T = TypeVar("T")

_handed_out: set[int] = set()
_lock = threading.Lock()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now.

    The kernel picks it (bind to port 0). A port is never handed out twice by this
    process, so starting many services in a row cannot give two of them the same port;
    another process may still take it in between, which callers handle by retrying.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with _lock:
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("could not find a free TCP port on 127.0.0.1")


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to host:port is accepted."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.05,
    message: str = "condition was not met",
) -> T:
    """Call predicate until it returns a truthy value, and return that value.

    Raises TimeoutError(message) once `timeout` seconds have passed. Exceptions raised by
    the predicate propagate (a predicate that may fail while a service starts should
    catch them itself and return False).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} (after {timeout:.1f}s)")
        time.sleep(interval)


def wait_for_port(host: str, port: int, timeout: float = 30) -> None:
    """Poll until host:port accepts TCP connections, or raise TimeoutError."""
    wait_until(
        lambda: port_is_open(host, port, timeout=0.5),
        timeout,
        message=f"nothing listens on {host}:{port}",
    )


def read_banner(host: str, port: int, timeout: float = 2.0) -> bytes:
    """Connect and return the first bytes the server sends (b"" when none).

    Needed for services behind docker-proxy: the proxy accepts TCP connections before
    the program inside the container listens, so an open port proves nothing.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(256)
    except OSError:
        return b""


def wait_for_ssh_banner(host: str, port: int, timeout: float = 30) -> bytes:
    """Poll until an SSH server on host:port sends its `SSH-2.0-...` banner."""
    return wait_until(
        lambda: (b := read_banner(host, port)).startswith(b"SSH-") and b,
        timeout,
        interval=0.1,
        message=f"no SSH banner from {host}:{port}",
    )
