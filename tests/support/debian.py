"""A real Debian bookworm host in a container: sshd, python3, sudo, iproute2, apt.

Why: provisioning recipes (SSH hardening, package installs, user creation) must be
tested against a real Debian, not a mock, and no base image can be pulled here. So the
root filesystem is made by `debootstrap --variant=minbase` (about a minute, once per
machine: the result is kept as a tarball in the cache dir), imported with `docker
import`, and a small Dockerfile on top sets up sshd.

The image starts deliberately *unhardened*, like a fresh VPS: root may log in, by key
and by password (`filrouge`), and PasswordAuthentication is on, so hardening tests can
prove they turned it off. These settings are in the main /etc/ssh/sshd_config (not a
drop-in), so a hardening drop-in in sshd_config.d/ takes precedence as on a real server.
Host keys are generated per container at start (none are baked in), and the client key
is given per container at run time (env FILROUGE_AUTHORIZED_KEY), never baked in.
There is no systemd inside: sshd runs as PID 1.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .containers import published_port, remove_container, run_test_container
from .dockerbuild import build_context, image_exists, inputs_hash
from .keys import fingerprint_sha256
from .ports import wait_for_ssh_banner
from .services import is_root, require, tool_path

SUITE = "bookworm"
INCLUDE = ("openssh-server", "python3", "sudo", "iproute2")
MIRROR = os.environ.get("FILROUGE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE_DIR = Path(os.environ.get("FILROUGE_TEST_CACHE", "/var/cache/filrouge-test"))
BASE_REPO = "filrouge-test/debian-base"
SSH_REPO = "filrouge-test/debian-ssh"
ROOT_PASSWORD = "filrouge"
RECIPE_VERSION = "1"  # bump to force a new debootstrap

ENTRYPOINT = """\
#!/bin/sh
# Per-container start: own host keys, the key given at run time, then sshd.
set -e
ssh-keygen -A >/dev/null
mkdir -p /run/sshd /root/.ssh
chmod 700 /root/.ssh
if [ -n "$FILROUGE_AUTHORIZED_KEY" ]; then
    printf '%s\\n' "$FILROUGE_AUTHORIZED_KEY" > /root/.ssh/authorized_keys
    chmod 600 /root/.ssh/authorized_keys
fi
unset FILROUGE_AUTHORIZED_KEY
exec "$@"
"""

DOCKERFILE = """\
FROM {base}
RUN rm -f /etc/ssh/ssh_host_* \\
 && echo 'root:{password}' | chpasswd \\
 && sed -i -E 's/^session\\s+required\\s+pam_loginuid.so/session optional pam_loginuid.so/' /etc/pam.d/sshd \\
 && sed -i -E '/^#?\\s*(PermitRootLogin|PasswordAuthentication)\\b/d' /etc/ssh/sshd_config \\
 && printf '\\n# Unhardened on purpose (Filrouge tests)\\nPermitRootLogin yes\\nPasswordAuthentication yes\\nUseDNS no\\n' >> /etc/ssh/sshd_config
COPY entrypoint.sh /usr/local/sbin/filrouge-entrypoint
EXPOSE 22
LABEL filrouge.test="1" filrouge.test.image="debian-ssh"
ENTRYPOINT ["/usr/local/sbin/filrouge-entrypoint"]
CMD ["/usr/sbin/sshd", "-D", "-e"]
"""


def _base_recipe_hash() -> str:
    recipe = f"{RECIPE_VERSION}|{SUITE}|minbase|{','.join(INCLUDE)}".encode()
    return inputs_hash({"recipe": recipe})


@contextlib.contextmanager
def _cache_lock():
    """One debootstrap at a time per machine, even across parallel test runs."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / "debian.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _unmount_below(path: str) -> None:
    """debootstrap mounts /proc and /sys in the target; a failed run may leave them."""
    with open("/proc/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    for point in sorted(points, reverse=True):
        if point == path or point.startswith(path + "/"):
            subprocess.run(["umount", "-l", point], check=False)


def _debootstrap_tarball(tarball: Path) -> None:
    """Run debootstrap into a temp dir under the cache dir and tar the result."""
    require(tool_path("debootstrap"), "debootstrap is not installed (apt-get install debootstrap)")
    require(is_root(), "debootstrap needs root to build the Debian test image")
    rootfs = tempfile.mkdtemp(prefix="rootfs-", dir=CACHE_DIR)
    log_path = CACHE_DIR / "debootstrap.log"
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.run(
                [tool_path("debootstrap"), "--variant=minbase", f"--include={','.join(INCLUDE)}",
                 SUITE, rootfs, MIRROR],
                stdout=log, stderr=subprocess.STDOUT, timeout=1200, check=False,
            )
        if proc.returncode != 0:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"debootstrap failed ({proc.returncode}); end of {log_path}:\n{tail}")
        for deb in Path(rootfs, "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        partial = tarball.with_suffix(".partial")
        subprocess.run(
            ["tar", "--numeric-owner", "-C", rootfs, "-cf", str(partial),
             "--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./dev/*", "."],
            check=True,
        )
        os.replace(partial, tarball)
    finally:
        _unmount_below(rootfs)
        shutil.rmtree(rootfs, ignore_errors=True)


def build_debian_base_image(client) -> str:
    """The imported debootstrap root filesystem, tagged by its recipe hash."""
    tag = f"{BASE_REPO}:{SUITE}-{_base_recipe_hash()}"
    if image_exists(client, tag):
        return tag
    with _cache_lock():
        if image_exists(client, tag):  # another run built it while we waited
            return tag
        tarball = CACHE_DIR / f"debian-{SUITE}-{_base_recipe_hash()}.tar"
        if not tarball.exists():
            _debootstrap_tarball(tarball)
        repo, _, version = tag.rpartition(":")
        client.api.import_image_from_file(str(tarball), repository=repo, tag=version)
    return tag


def build_debian_ssh_image(client) -> str:
    """Build (or reuse) the Debian sshd image; returns its hashed tag.

    Also tags it `filrouge-test/debian-ssh:latest`. The first run on a machine runs
    debootstrap (needs root and the Debian mirror); later runs cost an API call.
    """
    base = build_debian_base_image(client)
    files = {
        "Dockerfile": DOCKERFILE.format(base=base, password=ROOT_PASSWORD).encode(),
        "entrypoint.sh": ENTRYPOINT.encode(),
    }
    tag = f"{SSH_REPO}:{SUITE}-{inputs_hash(files)}"
    build_context(client, tag, files, extra_tags=[f"{SSH_REPO}:latest"],
                  executable=["entrypoint.sh"])
    return tag


@dataclass
class DebianHost:
    """A running Debian container reachable over SSH at host:port (127.0.0.1)."""

    container: object
    host: str
    port: int
    image: str
    client_private_key: str | None = None  # set by debian_host_factory when it made the key

    @property
    def name(self) -> str:
        return self.container.name

    def exec(self, cmd: str | list[str], user: str = "root") -> tuple[int, str]:
        """Run a command inside (a string goes through /bin/sh -c); (exit code, output)."""
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else cmd
        result = self.container.exec_run(argv, user=user)
        return result.exit_code, result.output.decode(errors="replace")

    def host_public_key_line(self, kind: str = "ed25519") -> str:
        """"ssh-ed25519 AAAA..." of this container's own host key (no comment)."""
        code, out = self.exec(f"cat /etc/ssh/ssh_host_{kind}_key.pub")
        if code != 0:
            raise RuntimeError(f"no {kind} host key in {self.name}: {out}")
        return " ".join(out.split()[:2])

    def host_key_fingerprint(self, kind: str = "ed25519") -> str:
        """OpenSSH "SHA256:..." fingerprint of the host key of that kind."""
        return fingerprint_sha256(self.host_public_key_line(kind))

    def stop(self) -> None:
        """Remove the container (idempotent)."""
        remove_container(self.container)


def start_debian_host(
    client, authorized_key: str, name_prefix: str = "filrouge-test-debian",
    image: str | None = None, timeout: float = 60,
) -> DebianHost:
    """Start a Debian host whose root accepts `authorized_key`; wait for the SSH banner.

    Port 22 is published on 127.0.0.1 at a port Docker picks (free by construction).
    """
    image = image or build_debian_ssh_image(client)
    container = run_test_container(
        client, image, name_prefix=name_prefix,
        environment={"FILROUGE_AUTHORIZED_KEY": authorized_key.strip()},
        ports={"22/tcp": ("127.0.0.1",)},
    )
    try:
        port = published_port(container, "22/tcp")
        wait_for_ssh_banner("127.0.0.1", port, timeout=timeout)
    except Exception as exc:
        logs = container.logs(tail=50).decode(errors="replace")
        remove_container(container)
        raise RuntimeError(f"Debian host {container.name} did not start sshd: {exc}\n{logs}") from exc
    return DebianHost(container=container, host="127.0.0.1", port=port, image=image)
