"""Checks on an SSH lab host, run from the panel over its own root session (target.ssh).

Every command is built from quoted words (shlex.quote): an exercise's argv never reaches
a shell unquoted. What a check reports (`detail`) is what it saw, shortened.
"""

import re
import shlex

import paramiko
from django.utils.translation import gettext as _

from clusters.drivers.base import AuthFailed, DriverError, HostUnreachable
from clusters.drivers.ssh import SshConnection, SshTarget

from .base import Outcome, check

COMMAND_TIMEOUT = 30
MAX_FILE_BYTES = 1_000_000


def _short(text, limit=300):
    text = (text or "").strip()
    return text if len(text) <= limit else text[:limit] + "…"


def _session(target):
    if target.ssh is None:
        raise DriverError(_("This check needs an SSH lab host; the exercise's target is not ssh."))
    return target.ssh


def _compile(pattern):
    try:
        return re.compile(pattern, re.MULTILINE)
    except re.error as exc:
        raise DriverError(_("The check's regular expression %(pattern)r is invalid (%(error)s); fix the exercise file.") % {"pattern": pattern, "error": exc}) from None


@check("ssh.file_contains", schema={"path": (str, True), "line": (str, False), "regex": (str, False)})
def file_contains(params, target):
    """The file exists and has the exact line (surrounding spaces ignored) and/or matches the regex."""
    path = params["path"]
    session = _session(target)
    quoted = shlex.quote(path)
    result = session.run(f"if [ -f {quoted} ]; then head -c {MAX_FILE_BYTES} {quoted}; else echo MISSING >&2; exit 3; fi", timeout=COMMAND_TIMEOUT)
    if result.exit_status == 3:
        return Outcome(False, _("%(path)s does not exist.") % {"path": path})
    if not result.ok:
        return Outcome(False, _("%(path)s cannot be read: %(error)s") % {"path": path, "error": _short(result.stderr)})
    text = result.stdout
    if params.get("line") is not None:
        wanted = params["line"].strip()
        if not any(line.strip() == wanted for line in text.splitlines()):
            return Outcome(False, _("%(path)s has no line %(line)r.") % {"path": path, "line": wanted})
    if params.get("regex"):
        if not _compile(params["regex"]).search(text):
            return Outcome(False, _("%(path)s does not match %(regex)r.") % {"path": path, "regex": params["regex"]})
    return Outcome(True, _("%(path)s has what was expected.") % {"path": path})


@check("ssh.command_output", schema={"command": (list, True), "matches": (str, True)})
def command_output(params, target):
    """Run argv (each word quoted) as root; stdout and stderr together must match the regex."""
    words = params["command"]
    if not words or not all(isinstance(word, (str, int, float)) for word in words):
        raise DriverError(_("ssh.command_output needs `command` as a list of words, e.g. [systemctl, is-enabled, notes]."))
    command = " ".join(shlex.quote(str(word)) for word in words)
    result = _session(target).run(command, timeout=COMMAND_TIMEOUT)
    output = (result.stdout + result.stderr).strip()
    if _compile(params["matches"]).search(output):
        return Outcome(True, _("`%(command)s` printed what was expected.") % {"command": command})
    if len(output) > 300:
        return Outcome(False, _("`%(command)s` exited %(status)s; none of its %(lines)d lines of output match %(regex)r.")
                       % {"command": command, "status": result.exit_status, "lines": len(output.splitlines()), "regex": params["matches"]})
    return Outcome(False, _("`%(command)s` exited %(status)s and printed: %(output)s")
                   % {"command": command, "status": result.exit_status, "output": output or _("(nothing)")})


def _offered_methods(student, user):
    """The authentication methods the student's sshd offers to `user` (it must present the pinned host key)."""
    import base64
    import socket

    kind, blob = student["host_key"].split()[:2]
    pinned = paramiko.PKey.from_type_string(kind, base64.b64decode(blob))
    sock = socket.create_connection((student["address"], student["port"]), timeout=10)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=10)
        presented = transport.get_remote_server_key()
        if presented.get_name() != pinned.get_name() or presented.asbytes() != pinned.asbytes():
            raise DriverError(_("%(name)s: the student's sshd presented another host key than the one pinned at launch; reset the environment.") % {"name": student["name"]})
        try:
            transport.auth_none(user)
        except paramiko.BadAuthenticationType as exc:
            return list(exc.allowed_types)
        except paramiko.SSHException:
            return []
        return ["none"]
    finally:
        transport.close()


def _root_key_login_works(student):
    """Try root with the panel's key on the student's sshd (the key is in root's authorized_keys)."""
    connection = SshConnection(SshTarget(
        name=student["name"], address=student["address"], port=student["port"], user="root",
        private_key=student["private_key"], pinned_host_key=student["host_key"], connect_timeout=10,
    ))
    try:
        connection.connect()
    except AuthFailed:
        return False
    connection.close()
    return True


@check("ssh.root_login_refused", schema={})
def root_login_refused(params, target):
    """sshd refuses root, observed from outside and confirmed by its effective configuration.

    From outside, on the student's sshd: a root login with the panel's key (which is in
    root's authorized_keys) must be refused, and sshd must not offer password or
    keyboard-interactive authentication. Inside, as root: `sshd -T` must report
    `permitrootlogin no` and `passwordauthentication no`."""
    student = getattr(target, "student_sshd", None)
    if not student:
        raise DriverError(_("This check needs an SSH lab host; the exercise's target is not ssh."))
    problems = []
    try:
        if _root_key_login_works(student):
            problems.append(_("root logged in with a key"))
        methods = _offered_methods(student, "root")
    except (HostUnreachable, OSError, paramiko.SSHException, EOFError):
        return Outcome(False, _("The student's sshd does not answer on port %(port)s: is it running, with a valid configuration (`sudo sshd -t`)?")
                       % {"port": student["port"]})
    if {"password", "keyboard-interactive"} & set(methods):
        problems.append(_("sshd offers %(methods)s authentication") % {"methods": ", ".join(sorted({"password", "keyboard-interactive"} & set(methods)))})
    result = _session(target).run("sshd -T -C user=root,host=localhost,addr=127.0.0.1", timeout=COMMAND_TIMEOUT)
    settings = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    if not result.ok:
        problems.append(_("sshd -T failed: %(error)s") % {"error": _short(result.stderr)})
    else:
        if settings.get("permitrootlogin") != "no":
            problems.append(_("PermitRootLogin is %(value)s") % {"value": settings.get("permitrootlogin", "?")})
        if settings.get("passwordauthentication") != "no":
            problems.append(_("PasswordAuthentication is %(value)s") % {"value": settings.get("passwordauthentication", "?")})
    if problems:
        return Outcome(False, "; ".join(problems) + ".")
    return Outcome(True, _("Root login refused and password authentication off."))
