"""A paramiko connection helper for tests.

Why: every SSH test needs the same few lines (no agent, no ~/.ssh keys, a timeout, a
chosen host-key policy); having them once keeps tests short and makes sure a test never
picks up the developer's own keys by accident.
"""

from __future__ import annotations

import paramiko

from .keys import paramiko_key


def ssh_connect(
    host: str, port: int, username: str, private_key: str | None = None,
    password: str | None = None, known_host_key: str | None = None, timeout: float = 10,
) -> paramiko.SSHClient:
    """Open a paramiko SSHClient.

    With `known_host_key` ("ssh-ed25519 AAAA...") the server must present exactly that
    key (else paramiko.BadHostKeyException); without it any host key is accepted.
    """
    client = paramiko.SSHClient()
    if known_host_key:
        kind, blob = known_host_key.split()[:2]
        name = host if port == 22 else f"[{host}]:{port}"
        client.get_host_keys().add(name, kind, paramiko.PKey.from_type_string(kind, _b64(blob)))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    else:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        host, port=port, username=username,
        pkey=paramiko_key(private_key) if private_key else None, password=password,
        look_for_keys=False, allow_agent=False, timeout=timeout,
        banner_timeout=timeout, auth_timeout=timeout,
    )
    return client


def run(client: paramiko.SSHClient, command: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run a command; return (exit status, stdout, stderr)."""
    _stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
    out = stdout.read().decode(errors="replace")
    err = stderr.read().decode(errors="replace")
    return stdout.channel.recv_exit_status(), out, err


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)
