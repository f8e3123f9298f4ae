"""README command 1 on a fresh copy of the project: `make run` installs, migrates, prints
the admin's one-time password and serves /healthz with 200; Ctrl-C stops everything."""

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import requests

from tests.support.ports import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]

# A fresh install on a loaded machine can take minutes: the test waits up to 600 s itself.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def copy_checkout(destination):
    """The files git would check out (tracked and new, not ignored): what a fresh clone has."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def test_make_run_serves_a_healthy_panel_from_a_fresh_copy_and_stops_on_ctrl_c(tmp_path):
    checkout = tmp_path / "filrouge"
    copy_checkout(checkout)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "REDIS_URL", "FILROUGE_", "DJANGO_"))}
    env["PORT"] = str(port)
    log = open(tmp_path / "make-run.log", "wb")
    process = subprocess.Popen(["make", "run"], cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def healthy():
        if process.poll() is not None:
            raise AssertionError((tmp_path / "make-run.log").read_text())
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        except requests.RequestException:  # not listening yet, or still booting
            return False

    try:
        wait_until(healthy, timeout=600, interval=0.5, message="make run to serve a healthy /healthz")
        output = (tmp_path / "make-run.log").read_text()
        assert "one-time password: " in output and "database: sqlite3" in output
        body = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
        assert body["components"]["redis"]["ok"] and body["components"]["workers"]["ok"]  # details are for operators
        # The same port serves the terminals' websockets (ASGI); without a session the handshake is refused.
        from websockets.exceptions import InvalidStatus
        from websockets.sync.client import connect

        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{port}/ws/terminals/server/?server=1", additional_headers={"Origin": f"http://127.0.0.1:{port}"}, open_timeout=30)
        assert refused.value.response.status_code == 403

        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        process.wait(timeout=60)  # make itself reports the interrupt; what matters is below
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
    output = (tmp_path / "make-run.log").read_text()
    assert "Filrouge stopped." in output
    leftovers = subprocess.run(["pgrep", "-f", str(checkout)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], f"processes left running: {leftovers}"
