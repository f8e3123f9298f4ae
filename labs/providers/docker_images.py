"""Small images the panel can build on a lab Docker host from nothing, for offline classrooms.

`filrouge-lab/busybox:1` is FROM scratch + the panel host's static busybox (Debian's
busybox-static package): sh, httpd, wget, nc... in 2 MB. An exercise names it in
`start.images`, and the Docker provider builds it on the lab host when it is missing, so
the starter pack runs where no registry can be reached.
"""

import io
import tarfile
from pathlib import Path

from django.utils.translation import gettext as _

from clusters.drivers import docker as driver
from clusters.drivers.base import NotFound

BUSYBOX = "/bin/busybox"
BUSYBOX_IMAGE = "filrouge-lab/busybox:1"
BUSYBOX_DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
# busybox as PID 1 ignores SIGTERM; stopping would wait 10 s.
STOPSIGNAL SIGKILL
LABEL filrouge.lab.image="busybox"
CMD ["sh"]
"""

KNOWN = {BUSYBOX_IMAGE}


def _context():
    source = Path(BUSYBOX)
    if not source.exists():
        raise NotFound(_("%(path)s is missing on the panel host, so %(image)s cannot be built. Install busybox-static there.") % {"path": BUSYBOX, "image": BUSYBOX_IMAGE})
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        for name, content, mode in (("Dockerfile", BUSYBOX_DOCKERFILE, 0o644), ("busybox", source.read_bytes(), 0o755)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), mode
            archive.addfile(info, io.BytesIO(content))
    data.seek(0)
    return data


def ensure_lab_image(connection, reference, ctx=None):
    """Build one of the KNOWN images on the engine unless it is there already."""
    if reference not in KNOWN:
        return False
    where = f"the lab Docker host {connection.description}"
    with driver.docker_errors(where):
        try:
            connection.api.inspect_image(reference)
            return False
        except Exception as exc:  # noqa: BLE001 - ImageNotFound is the expected case
            if getattr(exc, "status_code", None) != 404:
                raise
        for event in connection.api.build(fileobj=_context(), custom_context=True, tag=reference, rm=True, forcerm=True, decode=True):
            if "error" in event:
                raise NotFound(_("Building %(image)s failed: %(error)s") % {"image": reference, "error": event["error"]})
    if ctx is not None:
        ctx.changed(_("built %(image)s on the lab host") % {"image": reference}, task="image")
    return True
