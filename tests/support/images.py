"""Docker images the tests build themselves, since no image can be pulled here.

Why: the machines reach no image registry, so every image is built from things Debian's
apt ships. Each image is tagged with a short hash of its build inputs; when that tag
already exists nothing is rebuilt, so only the first run on a machine pays the cost.

- `filrouge-test/httpapp:1|2|3`: a 2 MB web app (FROM scratch + static busybox) whose
  three versions serve different pages, for deploy/rolling-update/rollback tests.
  Versions 1 and 2 pass their Docker health check; version 3 never does, for
  health-gated rollouts.
- The Debian host image with sshd lives in debian.py and is re-exported here.
"""

from __future__ import annotations

from pathlib import Path

from .debian import DebianHost, build_debian_ssh_image, start_debian_host  # noqa: F401
from .dockerbuild import build_context, inputs_hash
from .services import require

HTTP_APP_REPO = "filrouge-test/httpapp"
HTTP_APP_VERSIONS = ("1", "2", "3")
BUSYBOX_STATIC = "/bin/busybox"

# Fast health checks so tests see "healthy"/"unhealthy" within seconds.
HEALTHCHECK = (
    "HEALTHCHECK --interval=1s --timeout=2s --retries=3 "
    'CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"]'
)

HTTP_APP_DOCKERFILE = f"""\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www/ /www/
EXPOSE 8080
# busybox httpd as PID 1 has no SIGTERM handler, so `docker stop` would wait 10 s.
STOPSIGNAL SIGKILL
{HEALTHCHECK}
LABEL filrouge.test="1" filrouge.test.image="httpapp" filrouge.test.version="{{version}}"
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""


def http_app_files(version: str) -> dict[str, bytes]:
    """The build context of one http app version."""
    busybox = Path(BUSYBOX_STATIC).read_bytes()
    files = {
        "Dockerfile": HTTP_APP_DOCKERFILE.format(version=version).encode(),
        "busybox": busybox,
        "www/index.html": f"<!doctype html><title>httpapp</title>version {version}\n".encode(),
    }
    if version != "3":  # v3 has no health endpoint, so its HEALTHCHECK always fails
        files["www/health"] = b"ok\n"
    return files


def build_http_app_images(client) -> dict:
    """Build (or reuse) filrouge-test/httpapp versions 1, 2 and 3.

    Returns {"1": "filrouge-test/httpapp:1-<hash>", "2": ..., "3": ...,
    "plain": {"1": "filrouge-test/httpapp:1", ...}, "repository": "filrouge-test/httpapp"}.
    The hashed tags never move, so tests should prefer them; the plain tags are moved to
    the newest build and read better in deploy tests.
    """
    if not Path(BUSYBOX_STATIC).exists():
        require(False, "static busybox is missing (apt-get install busybox-static)")
    result: dict = {"plain": {}, "repository": HTTP_APP_REPO}
    for version in HTTP_APP_VERSIONS:
        files = http_app_files(version)
        tag = f"{HTTP_APP_REPO}:{version}-{inputs_hash(files)}"
        plain = f"{HTTP_APP_REPO}:{version}"
        build_context(client, tag, files, extra_tags=[plain], executable=["busybox"])
        result[version] = tag
        result["plain"][version] = plain
    return result

