"""Many real SSH hosts, cheaply: plain `sshd -D -e -f CONFIG` processes on 127.0.0.1.

Why: fan-out tests and benchmarks need dozens of SSH hosts, and a container per host is
too slow and too heavy. Each fleet member is a real OpenSSH server with its own port,
host key, pid file and log; all accept one client key, from a per-fleet authorized_keys
file, for one local test user. Logging in as a test user with a tiny .bashrc (not root,
whose rc runs `pyenv init`, about 0.35 s per command) keeps timings about the panel.

The members are started in parallel and awaited by polling their ports, so 30 hosts
are up in well under a second. `stop_one` simulates a host that is down (connection
refused), `replace_host_key` a host whose key changed (re-installed server).
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from .keys import fingerprint_sha256, generate_keypair  # noqa: F401 (re-exported)
from .ports import free_port, port_is_open, wait_until
from .services import is_root, require, tool_path

TEST_USER = "filrouge-test"
SSHD = "/usr/sbin/sshd"
TINY_BASHRC = "# Filrouge test user: deliberately empty so commands over SSH start fast.\n"

CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
AllowUsers {user}
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 200:30:400
MaxSessions 64
LogLevel ERROR
Subsystem sftp internal-sftp
"""


class SshHost(NamedTuple):
    """One fleet member; unpacks as (host, port, fingerprint, public_key_line)."""

    host: str
    port: int
    host_key_fingerprint: str
    host_public_key: str


def ensure_test_user(name: str = TEST_USER) -> pwd.struct_passwd:
    """Create a local system user with a minimal home, if absent (needs root).

    The password field is set to "*" (no password, but not locked): without PAM, sshd
    refuses even key logins to accounts whose password starts with "!".
    """
    require(is_root(), f"creating the SSH test user {name!r} needs root")
    require(tool_path("useradd"), "useradd is missing (apt-get install passwd)")
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            [tool_path("useradd"), "--system", "--no-create-home", "--home-dir",
             f"/home/{name}", "--shell", "/bin/bash", name],
            check=True, capture_output=True,
        )
    subprocess.run([tool_path("usermod"), "-p", "*", name], check=True, capture_output=True)
    entry = pwd.getpwnam(name)
    home = Path(entry.pw_dir)
    home.mkdir(mode=0o755, parents=True, exist_ok=True)
    for rc, text in ((".bashrc", TINY_BASHRC), (".profile", TINY_BASHRC)):
        if not (home / rc).exists():
            (home / rc).write_text(text)
    for path in (home, home / ".bashrc", home / ".profile"):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return entry


def _new_host_key(path: Path) -> str:
    """Write a fresh Ed25519 host key (mode 0600) and return its public line."""
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ))
    path.chmod(0o600)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    Path(f"{path}.pub").write_text(public + "\n")
    return public


_live_fleets: set["SshdFleet"] = set()


@atexit.register
def _stop_forgotten_fleets() -> None:
    for fleet in list(_live_fleets):
        fleet.stop()


class SshdFleet:
    """`count` sshd processes on 127.0.0.1 that accept `authorized_public_key` for `user`.

    Use as a context manager or call `.stop()`. `.hosts[i]` is an SshHost tuple.
    """

    def __init__(self, count: int, user: str, authorized_public_key: str,
                 timeout: float = 30) -> None:
        require(os.path.exists(SSHD), "sshd is not installed (apt-get install openssh-server)")
        require(is_root(), "an sshd fleet needs root (to log users in)")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privsep dir
        self.user = user
        self.client_private_key: str | None = None  # set by sshd_fleet_factory
        self.workdir = Path(tempfile.mkdtemp(prefix="filrouge-sshd-"))
        self.workdir.chmod(0o755)  # sshd reads authorized_keys as the user
        self.authorized_keys = self.workdir / "authorized_keys"
        self.authorized_keys.write_text(authorized_public_key.strip() + "\n")
        self.authorized_keys.chmod(0o644)
        self.hosts: list[SshHost] = []
        self._procs: list[subprocess.Popen | None] = []
        self._reserved: dict[int, socket.socket] = {}
        _live_fleets.add(self)
        try:
            for i in range(count):
                self.hosts.append(SshHost("127.0.0.1", 0, "", ""))
                self._procs.append(None)
                self._prepare(i, port=free_port(), new_key=True)
            self._launch_and_wait(range(count), timeout)
        except BaseException:
            self.stop()
            raise

    # -- one member ---------------------------------------------------------------
    def _dir(self, i: int) -> Path:
        return self.workdir / f"host{i}"

    def _prepare(self, i: int, port: int, new_key: bool) -> None:
        directory = self._dir(i)
        directory.mkdir(exist_ok=True)
        host_key = directory / "ssh_host_ed25519_key"
        public = _new_host_key(host_key) if new_key else self.hosts[i].host_public_key
        (directory / "sshd_config").write_text(CONFIG.format(
            port=port, host_key=host_key, pid_file=directory / "sshd.pid",
            authorized_keys=self.authorized_keys, user=self.user,
        ))
        self.hosts[i] = SshHost("127.0.0.1", port, fingerprint_sha256(public), public)

    def _spawn(self, i: int) -> None:
        self._release(i)
        directory = self._dir(i)
        with open(directory / "sshd.log", "ab") as log:
            self._procs[i] = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(directory / "sshd_config")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,  # so stop kills its connection children too
            )

    def _launch_and_wait(self, indexes, timeout: float) -> None:
        """Start members in parallel; restart on a fresh port any that lost its port."""
        pending = set(indexes)
        for i in pending:
            self._spawn(i)
        deadline = time.monotonic() + timeout
        while pending:
            for i in list(pending):
                if self._procs[i].poll() is not None:  # died: port taken meanwhile?
                    if time.monotonic() > deadline:
                        break
                    self._prepare(i, port=free_port(), new_key=False)
                    self._spawn(i)
                elif port_is_open("127.0.0.1", self.hosts[i].port, timeout=0.2):
                    pending.discard(i)
            if not pending:
                return
            if time.monotonic() > deadline:
                logs = (self._dir(min(pending)) / "sshd.log").read_text(errors="replace")
                raise TimeoutError(f"{len(pending)} sshd did not listen; log:\n{logs[-1500:]}")
            time.sleep(0.02)

    def _kill(self, i: int) -> None:
        """Stop member i for good: the listener *and* its connection children.

        A connection child of sshd can briefly hold the listening socket after the
        listener died (and may ignore SIGTERM), so the port would still accept TCP
        connections; hence SIGKILL for the whole process group, then a check that the
        port refuses. The port is then reserved (bound, not listening: connections are
        refused) so nothing else takes it before start_one/replace_host_key reuse it.
        """
        proc = self._procs[i]
        if proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                continue
        self._procs[i] = None
        port = self.hosts[i].port
        wait_until(lambda: not port_is_open("127.0.0.1", port, timeout=0.2), timeout=10,
                   message=f"sshd on port {port} still accepts connections after being stopped")
        self._reserve(i)

    def _reserve(self, i: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self.hosts[i].port))
        except OSError:
            sock.close()  # best effort: someone else has it; a restart moves port
            return
        self._reserved[i] = sock

    def _release(self, i: int) -> None:
        sock = self._reserved.pop(i, None)
        if sock is not None:
            sock.close()

    # -- public -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.hosts)

    def is_running(self, i: int) -> bool:
        proc = self._procs[i]
        return proc is not None and proc.poll() is None

    def stop_one(self, i: int) -> None:
        """Stop member i (and its sessions): its port now refuses connections."""
        self._kill(i)

    def start_one(self, i: int, timeout: float = 10) -> None:
        """Start a stopped member again, same port and host key."""
        if not self.is_running(i):
            self._launch_and_wait([i], timeout)

    def replace_host_key(self, i: int, timeout: float = 10) -> SshHost:
        """Restart member i on the same port with a new host key; returns its new entry."""
        self._kill(i)
        self._prepare(i, port=self.hosts[i].port, new_key=True)
        self._launch_and_wait([i], timeout)
        return self.hosts[i]

    def known_hosts_lines(self) -> list[str]:
        """OpenSSH known_hosts lines ("[127.0.0.1]:PORT ssh-ed25519 AAAA...")."""
        return [f"[{h.host}]:{h.port} {h.host_public_key}" for h in self.hosts]

    def stop(self) -> None:
        """Stop every member and delete the fleet's files (idempotent)."""
        for i in range(len(self._procs)):
            self._kill(i)
            self._release(i)
        shutil.rmtree(self.workdir, ignore_errors=True)
        _live_fleets.discard(self)

    def __enter__(self) -> "SshdFleet":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
