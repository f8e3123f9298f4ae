"""A real image registry (Debian's `docker-registry`, i.e. distribution 2.8) on 127.0.0.1.

Why: deploy tests push images the panel built and let Docker/Swarm pull them, and the
panel stores registry credentials; both need a real registry speaking the v2 API. The
engine treats 127.0.0.0/8 registries as insecure-allowed, so plain HTTP works without
changing the daemon's configuration. Storage is a temp dir removed at stop.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .ports import free_port, wait_until
from .services import require, tool_path

CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: filrouge-test-{port}
"""

AUTH = """\
auth:
  htpasswd:
    realm: filrouge-test
    path: {root}/htpasswd
"""


@dataclass
class Registry:
    """A running registry; `.address` is "127.0.0.1:PORT" (what image references use)."""

    address: str
    workdir: Path
    process: subprocess.Popen
    users: dict[str, str] = field(default_factory=dict)
    pushed: list[tuple[object, str]] = field(default_factory=list)  # (client, local tag)

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(user, password) of the first htpasswd user, or None without auth."""
        return next(iter(self.users.items()), None)

    def auth_config(self) -> dict | None:
        """The docker SDK's auth_config for the first user, or None without auth."""
        creds = self.credentials
        return {"username": creds[0], "password": creds[1]} if creds else None

    def catalog(self, auth: tuple[str, str] | None = None) -> list[str]:
        """Repositories listed by GET /v2/_catalog (uses the first user when needed)."""
        response = requests.get(
            f"{self.url}/v2/_catalog", auth=auth or self.credentials, timeout=10
        )
        response.raise_for_status()
        return response.json().get("repositories") or []

    def tags(self, repo: str, auth: tuple[str, str] | None = None) -> list[str]:
        response = requests.get(
            f"{self.url}/v2/{repo}/tags/list", auth=auth or self.credentials, timeout=10
        )
        response.raise_for_status()
        return response.json().get("tags") or []

    def stop(self) -> None:
        """Stop the registry, delete its storage and the local tags pushes made."""
        for client, local_tag in self.pushed:
            _remove_tag(client, local_tag)
        self.pushed.clear()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _write_htpasswd(path: Path, users: dict[str, str]) -> None:
    """bcrypt entries made by the real `htpasswd -B` (the only hash distribution takes)."""
    require(tool_path("htpasswd"), "htpasswd is not installed (apt-get install apache2-utils)")
    lines = []
    for user, password in users.items():
        out = subprocess.run(
            [tool_path("htpasswd"), "-B", "-n", "-i", user],
            input=password, capture_output=True, text=True, check=True,
        ).stdout
        lines.append(out.strip())
    path.write_text("\n".join(lines) + "\n")


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code in (200, 401)
    except requests.RequestException:
        return False


def start_registry(htpasswd_users: dict[str, str] | None = None, timeout: float = 30) -> Registry:
    """Start `docker-registry serve CONFIG` on a free 127.0.0.1 port and wait for /v2/."""
    binary = tool_path("docker-registry")
    require(binary, "docker-registry is not installed (apt-get install docker-registry)")
    workdir = Path(tempfile.mkdtemp(prefix="filrouge-registry-"))
    if htpasswd_users:
        _write_htpasswd(workdir / "htpasswd", htpasswd_users)
    for _attempt in range(3):  # another process may grab the port between pick and bind
        port = free_port()
        config = workdir / "config.yml"
        config.write_text(
            CONFIG.format(root=workdir, port=port)
            + (AUTH.format(root=workdir) if htpasswd_users else "")
        )
        log = open(workdir / "registry.log", "ab")
        process = subprocess.Popen(
            [binary, "serve", str(config)], stdin=subprocess.DEVNULL,
            stdout=log, stderr=log, start_new_session=True,
        )
        log.close()
        url = f"http://127.0.0.1:{port}/v2/"
        try:
            wait_until(lambda: process.poll() is not None or _answers(url), timeout,
                       message=f"registry on port {port} did not answer")
        except TimeoutError:
            process.kill()
            raise
        if process.poll() is None:
            return Registry(f"127.0.0.1:{port}", workdir, process, dict(htpasswd_users or {}))
        time.sleep(0.1)
    log_text = (workdir / "registry.log").read_text(errors="replace")[-2000:]
    shutil.rmtree(workdir, ignore_errors=True)
    raise RuntimeError(f"docker-registry did not start:\n{log_text}")


def push_image(client, image_tag: str, registry: Registry, repo: str, tag: str,
               auth: dict | tuple[str, str] | None = None) -> str:
    """Tag a local image into the registry, push it, return "127.0.0.1:PORT/repo:tag".

    `auth` is a (user, password) pair or an SDK auth_config dict; it defaults to the
    registry's first user. Raises RuntimeError with the engine's message on failure.
    """
    reference_repo = f"{registry.address}/{repo}"
    client.images.get(image_tag).tag(reference_repo, tag)
    registry.pushed.append((client, f"{reference_repo}:{tag}"))
    if isinstance(auth, tuple):
        auth = {"username": auth[0], "password": auth[1]}
    auth = auth or registry.auth_config()
    for line in client.images.push(reference_repo, tag, auth_config=auth, stream=True, decode=True):
        if "error" in line or "errorDetail" in line:
            raise RuntimeError(f"push of {reference_repo}:{tag} failed: {line.get('error', line)}")
    return f"{reference_repo}:{tag}"


def _remove_tag(client, tag: str) -> None:
    import docker.errors

    try:
        client.images.remove(tag, noprune=True)
    except docker.errors.APIError:  # gone already, or a test's container still uses it
        pass
