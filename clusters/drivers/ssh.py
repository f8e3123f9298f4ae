"""SSH connections on paramiko: the only code that talks to servers over SSH.

One `SshConnection` per host per job, kept open for every command of that job. It
offers three verbs (run a command, put a file, read a file), as pyinfra's connectors do.

Host keys are pinned: a server without a pinned key has the key it presents recorded
through `SshTarget.on_first_contact` (first contact); a server with a pinned key must
present exactly that key, or the connection is refused with both fingerprints. There is
no auto-add anywhere.

Every failure is one of `clusters.drivers.base`'s errors with a message that says which
host, what happened and what to do.
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
import select
import selectors
import shlex
import socket
import threading
import re
import time
from dataclasses import dataclass, field
from typing import Callable

import paramiko

from .base import AuthFailed, CommandTimeout, HostKeyMismatch, HostUnreachable, PermissionRefused

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_COMMAND_TIMEOUT = 600.0


def fingerprint(public_key_line: str) -> str:
    """OpenSSH's "SHA256:..." fingerprint of "type base64 [comment]"."""
    try:
        blob = base64.b64decode(public_key_line.split()[1])
    except (IndexError, ValueError):
        return "(unreadable key)"
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def key_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


def load_private_key(text: str, passphrase: str | None = None) -> paramiko.PKey:
    last_error = None
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text), password=passphrase or None)
        except paramiko.PasswordRequiredException:
            raise AuthFailed("The SSH private key is encrypted and no passphrase was given; add it to the credential.") from None
        except (paramiko.SSHException, ValueError) as exc:
            last_error = exc
    raise AuthFailed(f"The SSH private key cannot be read ({last_error}); replace the credential's key.")


@dataclass
class SshTarget:
    """Everything needed to reach one host. Secrets stay in memory, never in messages."""

    name: str
    address: str
    port: int = 22
    user: str = "root"
    private_key: str | None = None
    passphrase: str | None = None
    password: str | None = None
    become_password: str | None = None
    pinned_host_key: str = ""
    jump: "SshTarget | None" = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT
    # Called with "type base64" when a host without a pinned key is first contacted.
    on_first_contact: Callable[[str], None] | None = None
    # Called with the refused "type base64" when a pinned host presents another key.
    on_key_refused: Callable[[str], None] | None = None

    @property
    def where(self):
        return f"{self.name} ({self.user}@{self.address}:{self.port})"


@dataclass
class CommandResult:
    command: str
    exit_status: int
    stdout: str
    stderr: str
    duration: float = 0.0

    @property
    def ok(self):
        return self.exit_status == 0

    @property
    def output(self):
        return (self.stdout + self.stderr).strip()


class _PinOnFirstContact(paramiko.MissingHostKeyPolicy):
    """Used only for hosts without a pinned key: accept and record the key they present.

    Hosts with a pinned key get it in the client's host-key store instead, so paramiko
    itself refuses any other key (BadHostKeyException)."""

    def __init__(self, target: SshTarget):
        self.target = target

    def missing_host_key(self, client, hostname, key):
        if self.target.pinned_host_key:  # pinned but not matched by name: refuse, never add
            raise HostKeyMismatch(_mismatch_message(self.target, key_line(key)))
        if self.target.on_first_contact is not None:
            self.target.on_first_contact(key_line(key))
        self.target.pinned_host_key = key_line(key)


def _mismatch_message(target: SshTarget, offered: str) -> str:
    return (
        f"{target.name}: the host key changed. Pinned {target.pinned_host_key.split()[0]} {fingerprint(target.pinned_host_key)}, "
        f"presented {offered.split()[0]} {fingerprint(offered)}. If the server was re-installed, an operator can accept "
        f"the new key on the server's page; otherwise someone may be intercepting the connection."
    )


def _known_name(target: SshTarget) -> str:
    return target.address if target.port == 22 else f"[{target.address}]:{target.port}"


class SshConnection:
    """A live SSH connection to one host, opened by `connect()` and reused for every command."""

    def __init__(self, target: SshTarget, stop: threading.Event | None = None):
        self.target = target
        self.stop = stop or threading.Event()
        self.client: paramiko.SSHClient | None = None
        self._jump: SshConnection | None = None
        self._sudo_mode: str | None = None  # "nopasswd" or "password", found on first become
        self._shells = {}  # "user" / "root" → a channel running /bin/sh that reads our commands
        self._ready = set()  # shells that already made their private folder for command output
        self._commands = 0
        self.round_trips = 0

    # ---- connecting -------------------------------------------------------------

    def connect(self) -> "SshConnection":
        """Open the connection (through the jump host if any) and authenticate."""
        target = self.target
        sock = None
        if target.jump is not None:
            self._jump = SshConnection(target.jump, stop=self.stop).connect()
            try:
                sock = self._jump.client.get_transport().open_channel(
                    "direct-tcpip", (target.address, target.port), ("127.0.0.1", 0), timeout=target.connect_timeout
                )
            except (paramiko.ChannelException, paramiko.SSHException, OSError) as exc:
                self._jump.close()
                raise HostUnreachable(f"{target.where}: the jump host {target.jump.name} could not reach it ({exc}).") from None
        client = paramiko.SSHClient()
        if target.pinned_host_key:
            kind, blob = target.pinned_host_key.split()[:2]
            try:
                client.get_host_keys().add(_known_name(target), kind, paramiko.PKey.from_type_string(kind, base64.b64decode(blob)))
            except (ValueError, paramiko.SSHException) as exc:
                raise HostKeyMismatch(f"{target.name}: the pinned host key cannot be read ({exc}); clear it on the server's page.") from None
        client.set_missing_host_key_policy(_PinOnFirstContact(target))
        pkey = load_private_key(target.private_key, target.passphrase) if target.private_key else None
        if pkey is None and not target.password:
            raise AuthFailed(f"{target.where}: no credential to log in with; give the server an SSH key or password credential.")
        try:
            client.connect(
                target.address, port=target.port, username=target.user, pkey=pkey, password=target.password,
                timeout=target.connect_timeout, banner_timeout=target.connect_timeout, auth_timeout=target.connect_timeout,
                channel_timeout=target.connect_timeout, look_for_keys=False, allow_agent=False, sock=sock,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            offered = key_line(exc.key)
            if target.on_key_refused is not None:
                target.on_key_refused(offered)
            raise HostKeyMismatch(_mismatch_message(target, offered)) from None
        except HostKeyMismatch:
            client.close()
            raise
        except paramiko.AuthenticationException as exc:
            client.close()
            how = "key" if pkey is not None else "password"
            raise AuthFailed(f"{target.where}: the server refused our {how} ({exc}). Check the user and the server's authorized_keys or password.") from None
        except (socket.timeout, TimeoutError):
            client.close()
            raise HostUnreachable(f"{target.where}: no answer within {target.connect_timeout:g} s. Is the host up and the port open?") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
            if "banner" in reason or "No existing session" in reason:
                # The port took the connection but no SSH server spoke: a hung sshd, or something else on that port.
                raise HostUnreachable(f"{target.where}: no answer within {target.connect_timeout:g} s (the port accepts connections "
                                      "but sends no SSH banner). Is it an SSH port, and is sshd healthy?") from None
            raise HostUnreachable(f"{target.where}: cannot connect ({reason}). Is sshd running and the address right?") from None
        transport = client.get_transport()
        transport.set_keepalive(30)
        self.client = client
        return self

    def close(self):
        for kind in list(self._shells):
            self._drop_shell(kind)
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._jump is not None:
            self._jump.close()
            self._jump = None

    def __enter__(self):
        return self if self.client else self.connect()

    def __exit__(self, *exc):
        self.close()

    # ---- running commands ---------------------------------------------------------

    def run(self, command: str, become: bool = False, stdin: bytes | None = None, timeout: float | None = None, shown: str | None = None,
            become_user: str | None = None) -> CommandResult:
        """Run one command (as root when `become`) and wait for it.

        Commands go to one long-lived `sh` per connection (and one root `sh` through
        sudo for become), each in its own subshell: no new SSH channel, login shell or
        sudo per command, which is most of what a command costs. The caller builds
        `command` from quoted pieces (shlex.quote); nothing here interprets user input.
        Raises CommandTimeout after `timeout` seconds (that shell is then replaced)."""
        user = become_user or "root"
        if not become or user == self.target.user:
            kind = "user"
        else:
            kind = "root" if user == "root" else f"as:{user}"
        return self._in_shell(kind, command, stdin, timeout or self.target.command_timeout, shown or command)

    def _sudo(self) -> str:
        """How to become root here: without a password (NOPASSWD) or with it. Asked once per connection."""
        if self._sudo_mode is None:
            probe = self._exec("sudo -k -n true", timeout=self.target.connect_timeout)
            if probe.ok:
                self._sudo_mode = "nopasswd"
            elif "command not found" in probe.stderr or probe.exit_status == 127:
                raise PermissionRefused(f"{self.target.where}: sudo is not installed; install it or log in as root.")
            elif self.target.become_password:
                self._sudo_mode = "password"
            else:
                raise PermissionRefused(
                    f"{self.target.where}: sudo needs a password for {self.target.user} and the credential has no become "
                    "password. Add one, or allow NOPASSWD for this user."
                )
        return self._sudo_mode

    # ---- the long-lived shells ------------------------------------------------------

    def _open_shell(self, kind):
        if self.client is None:
            self.connect()
        if kind != "user":
            mode = self._sudo()
            who = shlex.quote("root" if kind == "root" else kind[3:])
            launcher = f"exec sudo -n -H -u {who} -- /bin/sh" if mode == "nopasswd" else f"exec sudo -k -S -p '' -H -u {who} -- /bin/sh"
        else:
            launcher = "exec /bin/sh"
        try:
            channel = self.client.get_transport().open_session(timeout=self.target.connect_timeout)
            channel.exec_command(launcher)
            if kind != "user" and self._sudo_mode == "password":
                channel.sendall(((self.target.become_password or "") + "\n").encode())  # read by sudo, before the shell starts
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise HostUnreachable(f"{self.target.where}: the connection broke ({exc or type(exc).__name__}).") from None
        self._shells[kind] = channel
        return channel

    def _in_shell(self, kind, command, stdin, timeout, shown):
        channel = self._shells.get(kind)
        if channel is None or channel.closed or channel.exit_status_ready():
            channel = self._open_shell(kind)
        # An unguessable marker per command: the command cannot print it before it exists.
        marker = "@@filrouge-" + secrets.token_hex(16)
        self._commands += 1
        out_file, err_file = f'"$FILROUGE_RUN/{self._commands}.o"', f'"$FILROUGE_RUN/{self._commands}.e"'
        # The command never gets the shell's own stdout/stderr (the SSH channel): it writes
        # to two fresh files, so whatever it leaves running in the background (a daemon, a
        # `nohup app &`, a loop printing forever) writes there and never into the frame of
        # a later command. Once the command returns, the shell sends what the files hold,
        # then the status and the marker. `[ -s ]` is a builtin: a command that printed
        # nothing costs no extra process. Used files go in one `rm` every 25 commands
        # (and with the folder when the shell ends), not one `rm` per command.
        feed = f"printf %s {base64.b64encode(stdin).decode()} | base64 -d | " if stdin else ""
        setup = "" if channel in self._ready else _SHELL_SETUP
        sweep = 'rm -f "$FILROUGE_RUN"/*; ' if self._commands % 25 == 0 else ""
        script = (f"{setup}{sweep}{feed}( eval {shlex.quote(command)} ){'' if stdin else ' </dev/null'} >{out_file} 2>{err_file}; "
                  f"FILROUGE_STATUS=$?; if [ -s {err_file} ]; then cat {err_file} >&2; fi; if [ -s {out_file} ]; then cat {out_file}; fi; "
                  f"printf '\\n{marker} %d\\n' \"$FILROUGE_STATUS\"; printf '\\n{marker}\\n' >&2\n")
        started = time.monotonic()
        self.round_trips += 1
        try:
            channel.sendall(script.encode())
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._shells.pop(kind, None)
            raise HostUnreachable(f"{self.target.where}: the connection broke ({exc or type(exc).__name__}).") from None
        self._ready.add(channel)
        out, err = bytearray(), bytearray()
        out_end = re.compile(rb"\n" + marker.encode() + rb" ([0-9]{1,3})\n\Z")
        err_end = f"\n{marker}\n".encode()
        deadline = started + timeout
        while True:
            if channel.recv_ready():
                out += channel.recv(65536)
                continue
            if channel.recv_stderr_ready():
                err += channel.recv_stderr(65536)
                continue
            ended = out_end.search(out) if out.endswith(b"\n") else None
            if ended and err.endswith(err_end):
                # Only the shell writes to the channel now, so the frame is all there is.
                return CommandResult(command=shown, exit_status=int(ended.group(1)), stdout=out[:ended.start()].decode(errors="replace"),
                                     stderr=err[:-len(err_end)].decode(errors="replace"), duration=time.monotonic() - started)
            if kind != "user" and self._sudo_mode == "password" and _sudo_refused(err.decode(errors="replace")):
                # sudo is asking again (it would read our next commands as passwords): give up now.
                self._drop_shell(kind)
                raise PermissionRefused(
                    f"{self.target.where}: sudo refused the become password for {self.target.user}. "
                    "Fix the become password of the server's credential."
                )
            if channel.closed or channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                self._shells.pop(kind, None)
                return self._shell_ended(kind, channel, shown, out, err)
            if self.stop.is_set():
                self._drop_shell(kind)
                raise CommandTimeout(f"{self.target.where}: stopped while running {shown!r} (the job was cancelled).")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._drop_shell(kind)
                raise CommandTimeout(
                    f"{self.target.where}: {shown!r} did not finish within {timeout:g} s; it was stopped. "
                    "Raise the task's timeout if it is expected to take longer."
                )
            select.select([channel], [], [], min(remaining, 0.25))

    def _shell_ended(self, kind, channel, shown, out, err):
        """The shell itself went away: sudo refused us, or the command ended the session."""
        status = channel.recv_exit_status() if channel.exit_status_ready() else 255
        text = err.decode(errors="replace")
        if kind != "user" and _sudo_refused(text):
            raise PermissionRefused(
                f"{self.target.where}: sudo refused the become password for {self.target.user}. "
                "Fix the become password of the server's credential."
            )
        if not self.client.get_transport() or not self.client.get_transport().is_active():
            raise HostUnreachable(f"{self.target.where}: the connection was lost while running {shown!r}.")
        return CommandResult(command=shown, exit_status=status if status else 255, stdout=out.decode(errors="replace"),
                             stderr=(text + "\n(the remote shell ended during this command)").strip(), duration=0.0)

    def _drop_shell(self, kind):
        channel = self._shells.pop(kind, None)
        if channel is not None:
            self._ready.discard(channel)
            channel.close()

    def _exec(self, command: str, stdin: bytes | None = None, timeout: float | None = None, shown: str | None = None) -> CommandResult:
        """One command on its own channel (used to ask sudo how it wants to be used)."""
        if self.client is None:
            self.connect()
        timeout = timeout or self.target.command_timeout
        started = time.monotonic()
        self.round_trips += 1
        try:
            channel = self.client.get_transport().open_session(timeout=self.target.connect_timeout)
            channel.exec_command(command)
            if stdin:
                channel.sendall(stdin)
            channel.shutdown_write()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise HostUnreachable(f"{self.target.where}: the connection broke ({exc or type(exc).__name__}).") from None
        out, err = [], []
        deadline = started + timeout
        try:
            while True:
                if channel.recv_ready():
                    out.append(channel.recv(65536))
                    continue
                if channel.recv_stderr_ready():
                    err.append(channel.recv_stderr(65536))
                    continue
                if channel.exit_status_ready():
                    break
                if self.stop.is_set():
                    raise CommandTimeout(f"{self.target.where}: stopped while running {shown or command!r} (the job was cancelled).")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CommandTimeout(
                        f"{self.target.where}: {shown or command!r} did not finish within {timeout:g} s; it was stopped. "
                        "Raise the task's timeout if it is expected to take longer."
                    )
                select.select([channel], [], [], min(remaining, 0.25))
            while channel.recv_ready():
                out.append(channel.recv(65536))
            while channel.recv_stderr_ready():
                err.append(channel.recv_stderr(65536))
            status = channel.recv_exit_status()
        finally:
            channel.close()
        return CommandResult(
            command=shown or command, exit_status=status,
            stdout=b"".join(out).decode(errors="replace"), stderr=b"".join(err).decode(errors="replace"),
            duration=time.monotonic() - started,
        )

    # ---- files -----------------------------------------------------------------------

    def put_file(self, path: str, data: bytes, mode: str | None = None, owner: str | None = None, group: str | None = None,
                 become: bool = False, validate: str | None = None, become_user: str | None = None) -> CommandResult:
        """Write `data` to `path` atomically (temp file in the same directory, then rename).

        An existing file keeps its mode and owner unless given. `validate` is a command
        with %s for the candidate file; the file is replaced only if it exits 0."""
        quoted = shlex.quote(path)
        steps = ["set -e", f'd=$(dirname {quoted})', f't=$(mktemp "$d/.filrouge.XXXXXX")', "trap 'rm -f \"$t\"' EXIT"]
        steps.append('cat > "$t"')
        steps.append(f'if [ -e {quoted} ]; then chmod --reference={quoted} "$t"; chown --reference={quoted} "$t" 2>/dev/null || true; else chmod 0644 "$t"; fi')
        if mode:
            steps.append(f'chmod {shlex.quote(str(mode))} "$t"')
        if owner or group:
            steps.append(f'chown {shlex.quote((owner or "") + (":" + group if group else ""))} "$t"')
        if validate:
            steps.append(validate.replace("%s", '"$t"'))
        steps.append(f'mv -f "$t" {quoted}')
        return self.run("\n".join(steps), become=become, stdin=data, shown=f"write {path}", become_user=become_user)

    def forward_local(self, remote_host: str, remote_port: int) -> "LocalForward":
        """A port on 127.0.0.1 of this machine whose connections reach `remote_host:remote_port`
        as the server sees it (`ssh -L`; remote_host "127.0.0.1" is the server itself). Use it in
        a `with`; `check()` says at once whether anything answers there."""
        return LocalForward(self, remote_host, remote_port).start()

    def get_file(self, path: str, become: bool = False) -> bytes | None:
        """The file's bytes, or None if it does not exist."""
        result = self.run(f"if [ -e {shlex.quote(path)} ]; then base64 -w0 {shlex.quote(path)}; else echo MISSING; fi", become=become)
        if not result.ok:
            raise PermissionRefused(f"{self.target.where}: cannot read {path}: {result.output}")
        text = result.stdout.strip()
        return None if text == "MISSING" else base64.b64decode(text)


class LocalForward:
    """A listening socket on 127.0.0.1; each connection it accepts becomes a direct-tcpip channel
    of the SSH connection to remote_host:remote_port, relayed both ways.

    One thread relays every pair through a selector, and a few open the channels (a round trip
    each): a thread per connection would spend its time waiting for the GIL (CPython hands it
    over every 5 ms). It serves a load test (labs/loadtest.py) on a port that only the host
    itself can reach; the relay is Python, so it adds latency and caps throughput
    (benchmarks/bench_loadtest.py)."""

    OPENERS = 4

    def __init__(self, connection: SshConnection, remote_host: str, remote_port: int):
        self.connection = connection
        self.remote = (remote_host, int(remote_port))
        self.listener: socket.socket | None = None
        self.closed = threading.Event()
        self.refused = 0  # connections the server could not open to the remote port
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._pairs: set = set()
        self._threads: list[threading.Thread] = []
        self._opener = None

    @property
    def address(self) -> tuple[str, int]:
        return self.listener.getsockname()[:2]

    def start(self) -> "LocalForward":
        from concurrent.futures import ThreadPoolExecutor

        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(256)
        listener.settimeout(0.5)
        self.listener = listener
        self._opener = ThreadPoolExecutor(self.OPENERS, thread_name_prefix="ssh-forward-open")
        for target, name in ((self._accept, "ssh-forward-accept"), (self._relay, "ssh-forward-relay")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def _open_channel(self, origin=("127.0.0.1", 0)):
        transport = self.connection.client.get_transport() if self.connection.client else None
        if transport is None or not transport.is_active():
            raise HostUnreachable(f"{self.connection.target.where}: the SSH connection is closed.")
        try:
            return transport.open_channel("direct-tcpip", self.remote, origin, timeout=self.connection.target.connect_timeout)
        except paramiko.ChannelException as exc:
            raise HostUnreachable(f"{self.connection.target.where}: nothing answers on port {self.remote[1]} of the host "
                                  f"({exc.text or 'connection refused'}).") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise HostUnreachable(f"{self.connection.target.where}: cannot open a channel to port {self.remote[1]} ({exc}).") from None

    def check(self) -> None:
        """Raise HostUnreachable unless a connection to the remote port opens."""
        self._open_channel().close()

    def _accept(self):
        while not self.closed.is_set():
            try:
                client, origin = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self._opener.submit(self._connect, client, origin)
            except RuntimeError:  # closing
                client.close()
                return

    def _connect(self, client, origin):
        try:
            channel = self._open_channel(origin[:2])
        except HostUnreachable:
            with self._lock:
                self.refused += 1
            client.close()
            return
        client.setblocking(True)
        pair = _ForwardPair(client, channel)
        with self._lock:
            if self.closed.is_set():
                pair.close()
                return
            self._pairs.add(pair)
            self._selector.register(client, selectors.EVENT_READ, pair)
            self._selector.register(channel, selectors.EVENT_READ, pair)

    def _relay(self):
        while not self.closed.is_set():
            with self._lock:
                empty = not self._pairs
            if empty:
                self.closed.wait(0.005)
                continue
            for key, _events in self._selector.select(0.5):
                pair, source = key.data, key.fileobj
                if pair.done:
                    continue
                try:
                    data = source.recv(65536)
                    if data:
                        (pair.channel if source is pair.client else pair.client).sendall(data)
                    elif source is pair.client:  # the client is done sending: pass that on, keep relaying the answer
                        self._unregister(source)
                        pair.channel.shutdown_write()
                    else:
                        self._finish(pair)
                except (OSError, paramiko.SSHException, EOFError):
                    self._finish(pair)  # either side went away: the load generator counts what it did not get

    def _unregister(self, fileobj):
        with self._lock:
            try:
                self._selector.unregister(fileobj)
            except (KeyError, ValueError):
                pass

    def _finish(self, pair):
        self._unregister(pair.client)
        self._unregister(pair.channel)
        with self._lock:
            self._pairs.discard(pair)
        pair.close()

    def close(self):
        self.closed.set()
        if self.listener is not None:
            self.listener.close()
        if self._opener is not None:
            self._opener.shutdown(wait=True)
        for thread in self._threads:
            thread.join(timeout=2)
        with self._lock:
            pairs, self._pairs = list(self._pairs), set()
        for pair in pairs:
            pair.close()
        self._selector.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _ForwardPair:
    def __init__(self, client, channel):
        self.client, self.channel, self.done = client, channel, False

    def close(self):
        self.done = True
        for end in (self.channel, self.client):
            try:
                end.close()
            except (OSError, paramiko.SSHException, EOFError):
                pass


class SshShellSession:
    """An interactive login shell on a PTY: what a terminal in the browser talks to.

    The session interface shared with the Docker and Kubernetes drivers: `read()` blocks
    until output (b"" at the end), `write(data)`, `resize(cols, rows)`, `close()` and
    `exit_status` (None while running or when unknown). It owns its connection."""

    def __init__(self, connection: SshConnection, channel):
        self.connection = connection
        self.channel = channel
        self._closed = False

    def read(self, size: int = 65536) -> bytes:
        try:
            return self.channel.recv(size)
        except (paramiko.SSHException, OSError, EOFError):
            return b""

    def write(self, data: bytes) -> None:
        try:
            self.channel.sendall(data)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise HostUnreachable(f"{self.connection.target.where}: the connection broke ({exc or type(exc).__name__}).") from None

    def resize(self, cols: int, rows: int) -> None:
        try:
            self.channel.resize_pty(width=cols, height=rows)
        except (paramiko.SSHException, OSError, EOFError):
            pass  # the shell is going away; the reader reports the end

    @property
    def exit_status(self):
        if not self.channel.exit_status_ready() and self.channel.eof_received:
            # The output ended: OpenSSH sends the exit status just after (or closes without one).
            self.channel.status_event.wait(2)
        if self.channel.exit_status_ready():
            status = self.channel.recv_exit_status()
            return None if status == -1 else status
        return None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.channel.close()
        finally:
            self.connection.close()


_SUDO_PROMPT = "[filrouge: sudo password]"


def open_session(target: SshTarget, cols: int = 80, rows: int = 24, become: bool = False, term: str = "xterm-256color",
                 command: str | None = None) -> SshShellSession:
    """Connect (pinned host key, the server's credential) and start a login shell on a PTY.

    With `become` and a non-root user, the shell is root's, through `sudo -i` (with the
    credential's become password when sudo asks for one; sudo reads it with echo off, and
    it never goes through the terminal's input or its recording)."""
    connection = SshConnection(target).connect()
    try:
        channel = connection.client.get_transport().open_session(timeout=target.connect_timeout)
        channel.get_pty(term=term, width=cols, height=rows)
        if command:  # built by the caller from quoted pieces (e.g. `exec su - student` on a lab host)
            channel.exec_command(command)
        elif become and target.user != "root":
            mode = connection._sudo()
            if mode == "nopasswd":
                channel.exec_command("exec sudo -n -i")
            else:
                # sudo asks on the PTY with echo off; wait for its prompt so the password is never echoed.
                channel.exec_command(f"exec sudo -k -p {shlex.quote(_SUDO_PROMPT)} -i")
                seen, deadline = b"", time.monotonic() + target.connect_timeout
                while _SUDO_PROMPT.encode() not in seen:
                    if time.monotonic() > deadline or channel.exit_status_ready():
                        raise PermissionRefused(f"{target.where}: sudo did not ask for the password; check sudo on the server.")
                    if select.select([channel], [], [], 0.25)[0]:
                        seen += channel.recv(4096)
                channel.sendall(((target.become_password or "") + "\n").encode())
        else:
            channel.invoke_shell()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        connection.close()
        raise HostUnreachable(f"{target.where}: the shell could not start ({exc or type(exc).__name__}).") from None
    except BaseException:
        connection.close()
        raise
    return SshShellSession(connection, channel)


# Sent before a shell's first command: a private folder (mktemp -d makes it 0700) for the
# output files of its commands, removed when the shell ends.
_SHELL_SETUP = ('FILROUGE_RUN=$(mktemp -d "${TMPDIR:-/tmp}/filrouge.XXXXXXXX") || '
                '{ echo "cannot create a private temporary folder in ${TMPDIR:-/tmp} (is it full or read-only?)" >&2; exit 111; }; '
                'trap \'rm -rf "$FILROUGE_RUN"\' EXIT; trap \'exit 129\' HUP; trap \'exit 143\' TERM; ')


# Host key types asked for by a scan, strongest first; the first one is pinned by default.
SCAN_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512")


def scan_host_keys(target: SshTarget, stop: threading.Event | None = None) -> list[str]:
    """The host keys a server offers, one "type base64" line per type, without logging in.

    One key exchange per key type (SSH shows one host key per exchange), each stopped
    before authentication; nothing is pinned or trusted here: the caller shows the
    fingerprints and an operator confirms. Goes through the target's jump host if any."""
    jump = SshConnection(target.jump, stop=stop).connect() if target.jump is not None else None
    keys = []
    try:
        for key_type in SCAN_KEY_TYPES:
            if stop is not None and stop.is_set():
                raise CommandTimeout(f"{target.where}: the host key scan was cancelled.")
            sock = None
            try:
                if jump is not None:
                    sock = jump.client.get_transport().open_channel("direct-tcpip", (target.address, target.port), ("127.0.0.1", 0),
                                                                    timeout=target.connect_timeout)
                else:
                    sock = socket.create_connection((target.address, target.port), timeout=target.connect_timeout)
            except (OSError, paramiko.SSHException) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
                raise HostUnreachable(f"{target.where}: cannot connect to scan its host keys ({reason}). Is sshd running and the address right?") from None
            transport = paramiko.Transport(sock)
            try:
                transport.banner_timeout = transport.handshake_timeout = target.connect_timeout
                options = transport.get_security_options()
                if key_type not in paramiko.Transport._preferred_keys:
                    continue
                options.key_types = [key_type]
                try:
                    transport.start_client(timeout=target.connect_timeout)
                except paramiko.SSHException:
                    continue  # the server has no key of this type
                key = transport.get_remote_server_key()
                line = key_line(key)
                if line not in keys:
                    keys.append(line)
            finally:
                transport.close()
    finally:
        if jump is not None:
            jump.close()
    if not keys:
        raise HostUnreachable(f"{target.where}: the server offered no host key we can use.")
    return keys


def _sudo_refused(stderr: str) -> bool:
    return any(marker in stderr for marker in ("incorrect password attempt", "Sorry, try again", "no password was provided", "a password is required"))


@dataclass
class ConnectionPool:
    """The connections of one job: one per host, opened on first use, all closed at the end."""

    stop: threading.Event = field(default_factory=threading.Event)
    connections: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, target: SshTarget) -> SshConnection:
        connection = SshConnection(target, stop=self.stop)
        with self.lock:
            self.connections[target.name] = connection
        return connection.connect()

    def close_all(self):
        with self.lock:
            connections, self.connections = list(self.connections.values()), {}
        for connection in connections:
            try:
                connection.close()
            except Exception:  # closing a broken transport must not hide the job's own outcome
                pass
