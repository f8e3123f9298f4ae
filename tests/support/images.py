"""Docker images the tests build themselves, since no image can be pulled here.

Why: the machines reach no image registry, so every image is built from things Debian's
apt ships. Each image is tagged with a short hash of its build inputs; when that tag
already exists nothing is rebuilt, so only the first run on a machine pays the cost.

- `filrouge-test/httpapp:1|2|3`: a 2 MB web app (FROM scratch + static busybox) whose
  three versions serve different pages, for deploy/rolling-update/rollback tests.
  Versions 1 and 2 pass their Docker health check; version 3 never does, for
  health-gated rollouts.
- `filrouge-test/slowapp`: busybox httpd whose /cgi-bin/slow answers after a fixed 20 ms
  (a CGI that sleeps), so that the target, not the load generator, sets the pace: what a
  load generator measures on it can be compared with `ab` (tests/deployments/loadtest/).
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



SLOW_APP_REPO = "filrouge-test/slowapp"
SLOW_APP_DELAY_MS = 50
SLOW_APP_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www/ /www/
EXPOSE 8080
STOPSIGNAL SIGKILL
LABEL filrouge.test="1" filrouge.test.image="slowapp"
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""
# A Content-Length and "Connection: close" as busybox's own static answers have: without them
# wrk counts the end of each answer as a read error.
SLOW_APP_CGI = """#!/bin/sh
usleep {delay_us}
printf 'Content-Type: text/plain\\r\\nContent-Length: 5\\r\\nConnection: close\\r\\n\\r\\nslow\\n'
"""


def build_slow_app_image(client, delay_ms: int = SLOW_APP_DELAY_MS) -> str:
    """Build (or reuse) the slow app; its tag. GET /cgi-bin/slow answers "slow" after `delay_ms`."""
    if not Path(BUSYBOX_STATIC).exists():
        require(False, "static busybox is missing (apt-get install busybox-static)")
    files = {
        "Dockerfile": SLOW_APP_DOCKERFILE.encode(),
        "busybox": Path(BUSYBOX_STATIC).read_bytes(),
        "www/index.html": b"slowapp\n",
        "www/cgi-bin/slow": SLOW_APP_CGI.format(delay_us=delay_ms * 1000).encode(),
    }
    tag = f"{SLOW_APP_REPO}:{inputs_hash(files)}"
    build_context(client, tag, files, executable=["busybox", "www/cgi-bin/slow"])
    return tag
