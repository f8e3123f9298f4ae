"""The panel's own machine as a recipe host: `connection: local`, `local_action`, `delegate_to: localhost`.

The same three verbs as `SshConnection` (run, put a file, read a file), by subprocess on
the worker that runs the job, as its user. Like Ansible's local connection, this runs the
playbook's commands on the controller: only operators may start recipe runs.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass

from .base import CommandTimeout, PermissionRefused
from .ssh import CommandResult, SshConnection


@dataclass
class LocalTarget:
    name: str = "localhost"
    address: str = "127.0.0.1"
    port: int = 0
    user: str = ""
    private_key: str | None = None
    command_timeout: float = 600.0

    def __post_init__(self):
        if not self.user:
            import pwd

            self.user = pwd.getpwuid(os.getuid()).pw_name

    @property
    def where(self):
        return f"{self.name} (the panel's machine, as {self.user})"


class LocalConnection:
    """Commands on the worker's machine, one `sh -c` each."""

    def __init__(self, target: LocalTarget | None = None, stop: threading.Event | None = None):
        self.target = target or LocalTarget()
        self.stop = stop or threading.Event()

    def connect(self):
        return self

    def close(self):
        pass

    def run(self, command: str, become: bool = False, stdin: bytes | None = None, timeout: float | None = None, shown: str | None = None,
            become_user: str | None = None) -> CommandResult:
        """Run one command locally (through `sudo -n -u USER` when it must run as another user)."""
        user = become_user or "root"
        argv = ["/bin/sh", "-c", command]
        if become and user != self.target.user:
            argv = ["sudo", "-n", "-H", "-u", user, "--", *argv]
        timeout = timeout or self.target.command_timeout
        started = time.monotonic()
        try:
            process = subprocess.run(argv, input=stdin or b"", capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise CommandTimeout(f"{self.target.where}: {shown or command!r} did not finish within {timeout:g} s; it was stopped.") from None
        except OSError as exc:
            raise PermissionRefused(f"{self.target.where}: cannot run {shlex.quote(argv[0])} ({exc.strerror}).") from None
        return CommandResult(command=shown or command, exit_status=process.returncode, stdout=process.stdout.decode(errors="replace"),
                             stderr=process.stderr.decode(errors="replace"), duration=time.monotonic() - started)

    # The file verbs are the SSH connection's: they are built on `run` alone.
    put_file = SshConnection.put_file
    get_file = SshConnection.get_file
