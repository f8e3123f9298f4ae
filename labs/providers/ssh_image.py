"""The lab host image: a Debian with sshd that becomes one student's SSH host.

`ensure_lab_host_image(client)` builds (once per Docker host) or finds the image
`filrouge/lab-debian:<version>`, where <version> is a hash of everything that goes into it
(this file's Dockerfile and entry point, and the base image's id): a new recipe or a new
base gives a new tag, an unchanged one costs a single API call.

Base image: settings.LABS_HOST_BASE_IMAGE (env FILROUGE_LABS_HOST_BASE_IMAGE, default
`debian:bookworm`). The operator imports it once per Docker host, for example from a
debootstrap tree (the test suite uses the very same tree as its Debian test hosts):

    debootstrap --variant=minbase --include=openssh-server,python3,sudo,iproute2 bookworm ROOTFS
    tar -C ROOTFS -c . | docker import - debian:bookworm

A base without sshd, sudo or python3 gets them from apt while the image is built.

What a container of this image does at start (entry point below):
- makes its own host keys (none are baked in);
- creates the student's user (`FILROUGE_STUDENT_USER`) with the key in `FILROUGE_STUDENT_KEY`,
  with passwordless sudo when `FILROUGE_STUDENT_SUDO=1`;
- installs the panel's public key (`FILROUGE_PANEL_KEY`) for root;
- runs two sshd: the student's one on port 22, configured like a fresh VPS (root login and
  password login allowed: the exercise is to harden it), and the panel's own one on port
  2222 (its own host key and config, root by key only), which the checks use, so that a
  student who turns root login off, or breaks their sshd, does not lock the panel out.
Both are restarted if they exit; `kill -HUP $(cat /run/sshd.pid)` reloads the student's one.
There is no systemd inside (containers do not run it here): unit files can be written and
read, not started.
Only public keys enter the container; the panel's private key stays in the panel.
"""

import hashlib
import io
import tarfile

from django.conf import settings

REPOSITORY = "filrouge/lab-debian"
PANEL_SSH_PORT = 2222
RECIPE_VERSION = "1"

ENTRYPOINT = r"""#!/bin/sh
# Filrouge lab host: per-container keys and users, then the two sshd (see labs/providers/ssh_image.py).
set -e
ssh-keygen -A >/dev/null
mkdir -p /run/sshd /root/.ssh /etc/filrouge-panel
chmod 700 /root/.ssh
[ -f /etc/filrouge-panel/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/filrouge-panel/ssh_host_ed25519_key
# A root password nobody knows: password logins are on (unhardened) but cannot be guessed.
echo "root:$(head -c 24 /dev/urandom | base64)" | chpasswd
if [ -n "$FILROUGE_PANEL_KEY" ]; then
    printf '%s\n' "$FILROUGE_PANEL_KEY" > /etc/filrouge-panel/authorized_keys
    printf '%s\n' "$FILROUGE_PANEL_KEY" > /root/.ssh/authorized_keys
    chmod 600 /etc/filrouge-panel/authorized_keys /root/.ssh/authorized_keys
fi
user="${FILROUGE_STUDENT_USER:-student}"
if ! id "$user" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$user"
    usermod -p '*' "$user"
fi
home=$(getent passwd "$user" | cut -d: -f6)
mkdir -p "$home/.ssh"
printf '%s\n' "$FILROUGE_STUDENT_KEY" > "$home/.ssh/authorized_keys"
chmod 700 "$home/.ssh"; chmod 600 "$home/.ssh/authorized_keys"
chown -R "$user:$user" "$home/.ssh"
if [ "$FILROUGE_STUDENT_SUDO" = "1" ]; then
    printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$user" > /etc/sudoers.d/filrouge-student
    chmod 440 /etc/sudoers.d/filrouge-student
fi
unset FILROUGE_PANEL_KEY FILROUGE_STUDENT_KEY
keep() { while :; do "$@" || true; sleep 1; done; }
trap 'exit 0' TERM INT
keep /usr/sbin/sshd -D -e -f /etc/filrouge-panel/sshd_config &
keep /usr/sbin/sshd -D -e &
touch /run/filrouge-ready
wait
"""

PANEL_SSHD_CONFIG = f"""# The panel's own sshd (checks only): root by key, nothing else. Not the student's to edit.
Port {PANEL_SSH_PORT}
HostKey /etc/filrouge-panel/ssh_host_ed25519_key
PidFile /run/filrouge-panel-sshd.pid
AuthorizedKeysFile /etc/filrouge-panel/authorized_keys
PermitRootLogin prohibit-password
AllowUsers root
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
"""

DOCKERFILE = """\
FROM {base}
RUN if ! [ -x /usr/sbin/sshd ] || ! command -v sudo >/dev/null || ! command -v python3 >/dev/null; then \\
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server sudo python3 \\
      && rm -rf /var/lib/apt/lists/*; fi \\
 && rm -f /etc/ssh/ssh_host_* \\
 && sed -i -E 's/^session\\s+required\\s+pam_loginuid.so/session optional pam_loginuid.so/' /etc/pam.d/sshd \\
 && sed -i -E '/^#?\\s*(PermitRootLogin|PasswordAuthentication)\\b/d' /etc/ssh/sshd_config \\
 && printf '\\n# As on a fresh VPS: the exercise is to harden this\\nPermitRootLogin yes\\nPasswordAuthentication yes\\nUseDNS no\\n' >> /etc/ssh/sshd_config \\
 && mkdir -p /etc/filrouge-panel /etc/ssh/sshd_config.d /etc/systemd/system
COPY panel_sshd_config /etc/filrouge-panel/sshd_config
COPY entrypoint.sh /usr/local/sbin/filrouge-lab-host
EXPOSE 22 {panel_port}
STOPSIGNAL SIGKILL
LABEL filrouge.lab.image="lab-debian" filrouge.lab.recipe="{recipe}"
ENTRYPOINT ["/usr/local/sbin/filrouge-lab-host"]
"""


class LabImageError(Exception):
    pass


def _files(base):
    return {
        "Dockerfile": DOCKERFILE.format(base=base, panel_port=PANEL_SSH_PORT, recipe=RECIPE_VERSION).encode(),
        "entrypoint.sh": ENTRYPOINT.encode(),
        "panel_sshd_config": PANEL_SSHD_CONFIG.encode(),
    }


def image_tag(base_id, files):
    digest = hashlib.sha256(base_id.encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return f"{REPOSITORY}:{digest.hexdigest()[:12]}"


def _context(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(content))
    buffer.seek(0)
    return buffer


def ensure_lab_host_image(client, base=None, line=None):
    """The tag of the lab host image on this Docker host, built first if missing.

    `client` is a docker SDK client; `line` an optional callable for progress lines.
    Raises LabImageError with what to do when the base image is missing or the build fails."""
    import docker.errors

    base = base or settings.LABS_HOST_BASE_IMAGE
    try:
        base_image = client.images.get(base)
    except docker.errors.ImageNotFound:
        raise LabImageError(
            f"The lab host base image {base!r} is not on this Docker host. Import a Debian image under that name "
            "(see the operator guide, 'Lab host image') or set FILROUGE_LABS_HOST_BASE_IMAGE."
        ) from None
    files = _files(base)
    tag = image_tag(base_image.id, files)
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    if line:
        line(f"Building the lab host image {tag} from {base} (once per Docker host).")
    try:
        client.images.build(fileobj=_context(files), custom_context=True, tag=tag, rm=True, forcerm=True, labels={"filrouge.lab.image": "lab-debian"})
    except docker.errors.BuildError as exc:
        tail = " ".join(str(step.get("stream", step.get("error", ""))).strip() for step in list(exc.build_log)[-5:])
        raise LabImageError(f"Building the lab host image from {base} failed: {exc.msg}. Last build output: {tail}") from None
    client.images.get(tag).tag(REPOSITORY, "latest")
    return tag
