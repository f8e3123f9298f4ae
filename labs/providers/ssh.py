"""SSH target: each student gets their own Debian host, a container on the course's Docker host.

The container runs the lab host image (labs/providers/ssh_image.py) with two sshd:
- the student's, published on the environment's `ssh` port: the student logs in as
  `student` (exercise.start.user) with the public key of their enrolment, and has sudo
  when exercise.start.sudo; it starts unhardened (root and password logins allowed);
- the panel's, published on the `panel-ssh` port: root by key only, used by the checks.

The panel's key pair is made per environment. Its private half is kept in a Credential
(`lab-<instance>-env-<id>-panel-key`, encrypted like every credential) and never enters the
container, the access dict or a job line. Both host keys are read from the container once
it has started (`docker exec`), and pinned: later connections must present exactly them.
"""

import re
import shlex
import socket
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.conf import settings
from django.utils.translation import gettext as _

from clusters.drivers import docker as docker_driver
from clusters.drivers.base import DriverError, HostUnreachable
from clusters.drivers.ssh import SshConnection, SshTarget, fingerprint

from ..errors import LabSetupError
from labs.checks.base import CheckTarget
from labs.providers.ssh_image import PANEL_SSH_PORT, LabImageError, ensure_lab_host_image
from labs.ports import allocate_ports, release_ports

from .base import Provider

START_TIMEOUT = 60
PORT_NAMES = ("ssh", "panel-ssh")
PORT_REDRAWS = 20


MEMORY_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}


def docker_limits(quota):
    """docker run limits from an exercise quota ({cpu: 1.0, memory: 512Mi}); a lab host always has a pids cap."""
    limits = {"pids_limit": int(quota.get("pids", 512))}
    if quota.get("cpu"):
        limits["nano_cpus"] = int(float(quota["cpu"]) * 1_000_000_000)
    if quota.get("memory"):
        text = str(quota["memory"]).strip().lower().rstrip("b")
        number = text.rstrip("kmgi")
        try:
            limits["mem_limit"] = int(float(number) * MEMORY_UNITS[text[len(number):]])
        except (ValueError, KeyError):
            raise LabSetupError(f"The exercise quota memory {quota['memory']!r} is not a size like 512Mi or 1Gi.") from None
    return limits


def new_keypair():
    """(private key in OpenSSH PEM, "ssh-ed25519 AAAA... comment")."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return private, public


def publish_address(cluster):
    """(the address students and checks connect to, the address ports are published on)."""
    endpoint = (cluster.endpoint or docker_driver.DEFAULT_ENDPOINT).strip()
    if endpoint.startswith("unix://"):
        return "127.0.0.1", "127.0.0.1"
    if endpoint.startswith("ssh://") and cluster.server is not None:
        return cluster.server.address, "0.0.0.0"
    host = endpoint.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    return host, "0.0.0.0"


def port_is_free(address, port):
    """Nothing listens on address:port (connections lingering in TIME_WAIT do not count, as for docker-proxy)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def wait_for_banner(address, port, deadline):
    """Poll until an SSH server sends its banner on address:port (never a fixed sleep)."""
    last = ""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=2) as sock:
                sock.settimeout(2)
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise HostUnreachable(f"The lab host did not answer SSH on {address}:{port} within {START_TIMEOUT} s ({last or 'no banner'}).")


class SSHProvider(Provider):
    target = "ssh"

    # ---- what is kept about the environment ------------------------------------------

    @property
    def credential_name(self):
        return f"lab-{settings.LABS_INSTANCE}-env-{self.environment.id}-panel-key"

    def _credential(self):
        from clusters.models import Credential

        return Credential.objects.filter(name=self.credential_name).first()

    def _label_filter(self):
        labels = self.environment.labels()
        return {"label": [f"filrouge.lab={labels['filrouge.lab']}", f"filrouge.env={labels['filrouge.env']}"]}

    # ---- create / destroy --------------------------------------------------------------

    def create(self):
        from clusters.models import Credential

        environment, ctx = self.environment, self.ctx
        cluster = environment.cluster
        start = environment.exercise.start or {}
        user = start.get("user") or "student"
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", user) or user == "root":
            raise LabSetupError(_("start.user %(user)r cannot be a login name on the lab host: use lowercase letters, digits, - and _ (not root).") % {"user": user})
        student_key = (environment.student_ssh_key or "").strip()
        if not student_key:
            raise LabSetupError(_("No SSH public key for this student: add one to the enrolment before launching an SSH exercise."),
                                student=_("The lab has no SSH public key of yours yet: send your public key (the .pub file) to your teacher, "
                                          "who adds it to your enrolment, then launch again."))
        address, bind = publish_address(cluster)
        private_key, public_key = new_keypair()
        ctx.add_secret(private_key)
        with docker_driver.connect(cluster, ctx) as engine:
            client = engine.client
            self._remove_containers(client)
            ports = self._allocate(client, bind)
            try:
                image = ensure_lab_host_image(client, line=ctx.line)
            except LabImageError as exc:
                raise DriverError(str(exc)) from None
            limits = docker_limits(environment.exercise.quota or {})
            ctx.line(_("Starting the lab host %(name)s from %(image)s.") % {"name": environment.name, "image": image})
            with docker_driver.docker_errors(f"Docker host {cluster.name}"):
                container = client.containers.run(
                    image, detach=True, name=f"{environment.name}-{settings.LABS_INSTANCE}"[:63], hostname=environment.name[:63],
                    labels={**environment.labels(), "filrouge.lab.role": "ssh-host"},
                    environment={
                        "FILROUGE_STUDENT_USER": user, "FILROUGE_STUDENT_KEY": student_key,
                        "FILROUGE_STUDENT_SUDO": "1" if start.get("sudo") else "0", "FILROUGE_PANEL_KEY": public_key,
                    },
                    ports={"22/tcp": (bind, ports["ssh"]), f"{PANEL_SSH_PORT}/tcp": (bind, ports["panel-ssh"])},
                    **limits,
                )
            deadline = time.monotonic() + START_TIMEOUT
            student_host_key = self._read_host_key(container, "/etc/ssh/ssh_host_ed25519_key.pub", deadline)
            panel_host_key = self._read_host_key(container, "/etc/filrouge-panel/ssh_host_ed25519_key.pub", deadline)
        wait_for_banner(address, ports["ssh"], deadline)
        wait_for_banner(address, ports["panel-ssh"], deadline)
        credential = self._credential() or Credential(name=self.credential_name, kind="ssh-key")
        credential.username = "root"
        credential.description = f"Lab environment {environment.id}: the panel's key for its checks. Deleted with the environment."
        credential.set_secret({"private_key": private_key})
        credential.public.update({
            "address": address, "student_port": ports["ssh"], "panel_port": ports["panel-ssh"],
            "student_host_key": student_host_key, "panel_host_key": panel_host_key,
        })
        credential.save()
        ctx.line(_("Lab host ready: ssh -p %(port)s %(user)s@%(address)s (host key %(fingerprint)s).")
                 % {"port": ports["ssh"], "user": user, "address": address, "fingerprint": fingerprint(student_host_key)})
        return {
            "ssh": {
                "host": address, "port": ports["ssh"], "user": user,
                "host_key": student_host_key, "host_key_fingerprint": fingerprint(student_host_key),
                "command": f"ssh -p {ports['ssh']} {shlex.quote(user)}@{address}",
                "known_hosts": f"[{address}]:{ports['ssh']} {student_host_key}",
            }
        }

    def _allocate(self, client, bind):
        """{ssh: port, panel-ssh: port}; a port already published by the engine (or bound on this
        machine, for a local engine) is set aside and another one drawn."""
        environment = self.environment
        with docker_driver.docker_errors("the lab host's Docker host"):
            in_use = {item.get("PublicPort") for container in client.api.containers() for item in container.get("Ports") or []}
        for _attempt in range(PORT_REDRAWS):
            ports = allocate_ports(environment, environment.cluster, list(PORT_NAMES))
            busy = {name: port for name, port in ports.items() if port in in_use or (bind == "127.0.0.1" and not port_is_free(bind, port))}
            if not busy:
                return ports
            for name, port in busy.items():
                self.ctx.line(_("Port %(port)s is already in use on the host; taking another.") % {"port": port})
                # Keep the row under another name so that the next draw cannot pick that port again.
                environment.allocated_ports.filter(name=name).update(name=f"busy-{port}")
        raise LabSetupError(_("No free host port found after %(count)d tries. Widen FILROUGE_LABS_PORT_RANGE.") % {"count": PORT_REDRAWS})

    def _read_host_key(self, container, path, deadline):
        """The host key line the container made at start, read through the Docker API (not over SSH)."""
        while True:
            container.reload()
            if container.status in ("exited", "dead"):
                logs = container.logs(tail=20).decode(errors="replace")
                raise DriverError(f"The lab host {container.name} stopped while starting: {logs.strip()[-500:]}")
            result = container.exec_run(["cat", path])
            text = result.output.decode(errors="replace").split()
            if result.exit_code == 0 and len(text) >= 2 and text[0].startswith("ssh-"):
                return f"{text[0]} {text[1]}"
            if time.monotonic() > deadline:
                raise HostUnreachable(f"The lab host {container.name} made no host key within {START_TIMEOUT} s.")
            time.sleep(0.2)

    def _remove_containers(self, client):
        with docker_driver.docker_errors("the lab host's Docker host"):
            for container in client.containers.list(all=True, filters=self._label_filter()):
                self.ctx.line(_("Removing %(name)s.") % {"name": container.name})
                container.remove(force=True, v=True)

    def reset(self):
        """A fresh host on the same ports (the student's notes and firewall rules stay right)."""
        environment = self.environment
        if environment.cluster is not None:
            with docker_driver.connect(environment.cluster, self.ctx) as engine:
                self._remove_containers(engine.client)
            _address, bind = publish_address(environment.cluster)
            if bind == "127.0.0.1":
                # The engine lets go of a removed container's ports a moment later: wait, so they are kept.
                held = [port for name, port in environment.port_map().items() if name in PORT_NAMES]
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not all(port_is_free(bind, port) for port in held):
                    time.sleep(0.1)
        return self.create()

    def destroy(self):
        environment = self.environment
        if environment.cluster is not None:
            with docker_driver.connect(environment.cluster, self.ctx) as engine:
                self._remove_containers(engine.client)
        release_ports(environment)
        credential = self._credential()
        if credential is not None:
            credential.delete()

    # ---- what the checks use -----------------------------------------------------------

    def _panel_session(self):
        """(connection, secret, public): root on the panel's own sshd of the host, host key pinned."""
        credential = self._credential()
        if credential is None:
            raise DriverError(_("This environment has no panel key any more: reset it to run the checks."))
        secret, public = credential.get_secret(), credential.public
        self.ctx.add_secret(secret["private_key"])
        connection = SshConnection(SshTarget(
            name=self.environment.name, address=public["address"], port=public["panel_port"], user="root",
            private_key=secret["private_key"], pinned_host_key=public["panel_host_key"], command_timeout=60,
        )).connect()
        return connection, secret, public

    def panel_connection(self):
        """A live SshConnection to the host as root, through the panel's own sshd (what checks and
        load tests use; the student's sshd configuration cannot lock the panel out). Close it."""
        return self._panel_session()[0]

    def check_target(self):
        """A CheckTarget whose `.ssh` is a root session on the panel's sshd (pinned host key).

        `.student_sshd` tells ssh.root_login_refused where the student's sshd is and which
        host key it must present."""
        connection, secret, public = self._panel_session()
        target = CheckTarget(environment=self.environment, ssh=connection, labels=self.environment.labels(), cleanup=[connection.close])
        target.student_sshd = {
            "address": public["address"], "port": public["student_port"], "host_key": public["student_host_key"],
            "private_key": secret["private_key"], "name": self.environment.name,
        }
        return target
