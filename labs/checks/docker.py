"""Docker checks, observed from the panel through the Docker API (list calls filtered by the env's labels).

- `docker.container_running` {service}: a container of that compose service is running;
- `docker.port_answers` {port}: a container of the environment publishes that allocated
  port and a TCP connection to it succeeds;
- `docker.volume_mounted` {service, target}: the service's container mounts one of the
  environment's named volumes at `target`.
Nothing the student writes (labels, names) can make these pass: containers and volumes
are found by the labels the panel forces on them, and the filrouge.* labels a student
writes are dropped by the guard.
"""

import socket
from urllib.parse import urlparse

from django.utils.translation import gettext as _

from clusters.drivers import docker as driver
from clusters.drivers.base import DriverError

from .base import Outcome, check
from .http import environment_ports

SERVICE_LABEL = "filrouge.service"


def _filters(target, **extra):
    labels = target.labels or target.environment.labels()
    wanted = [f"filrouge.env={labels['filrouge.env']}", f"filrouge.lab={labels['filrouge.lab']}"]
    wanted += [f"{key}={value}" for key, value in extra.items()]
    return {"label": wanted}


def _containers(target, all=True, **extra):  # noqa: A002
    with driver.docker_errors(f"the lab Docker host {target.docker.description}"):
        return target.docker.api.containers(all=all, filters=_filters(target, **extra))


@check("docker.container_running", schema={"service": (str, True)})
def container_running(params, target):
    service = params["service"]
    try:
        found = _containers(target, **{SERVICE_LABEL: service})
    except DriverError as exc:
        return Outcome(False, str(exc))
    if not found:
        return Outcome(False, _("no container for service %(service)s") % {"service": service})
    running = [item for item in found if item.get("State") == "running"]
    if running:
        return Outcome(True, _("%(service)s is running (%(status)s)") % {"service": service, "status": running[0].get("Status", "")})
    return Outcome(False, _("%(service)s is not running (%(status)s)") % {"service": service, "status": found[0].get("Status") or found[0].get("State")})


@check("docker.port_answers", schema={"port": (str, True)})
def port_answers(params, target):
    name = params["port"]
    ports = environment_ports(target.environment)
    if name not in ports:
        return Outcome(False, _("no port named %(name)s is allocated to this environment") % {"name": name})
    port = int(ports[name])
    try:
        published = {p.get("PublicPort") for item in _containers(target, all=False) for p in item.get("Ports") or []}
    except DriverError as exc:
        return Outcome(False, str(exc))
    if port not in published:
        return Outcome(False, _("no running container of yours publishes port %(port)d (%(name)s)") % {"port": port, "name": name})
    host = urlparse(target.http_base or "http://127.0.0.1").hostname or "127.0.0.1"
    try:
        with socket.create_connection((host, port), timeout=3):
            pass
    except OSError as exc:
        return Outcome(False, _("port %(port)d (%(name)s) is published but does not answer: %(error)s") % {"port": port, "name": name, "error": exc.strerror or exc})
    return Outcome(True, _("port %(port)d (%(name)s) answers") % {"port": port, "name": name})


@check("docker.volume_mounted", schema={"service": (str, True), "target": (str, True)})
def volume_mounted(params, target):
    service, path = params["service"], params["target"]
    where = f"the lab Docker host {target.docker.description}"
    try:
        found = _containers(target, **{SERVICE_LABEL: service})
        with driver.docker_errors(where):
            volumes = {v["Name"] for v in (target.docker.api.volumes(filters=_filters(target)) or {}).get("Volumes") or []}
    except DriverError as exc:
        return Outcome(False, str(exc))
    if not found:
        return Outcome(False, _("no container for service %(service)s") % {"service": service})
    for mount in found[0].get("Mounts") or []:
        if mount.get("Destination") != path:
            continue
        if mount.get("Type") == "volume" and mount.get("Name") in volumes:
            return Outcome(True, _("%(service)s mounts volume %(volume)s at %(path)s") % {"service": service, "volume": mount["Name"], "path": path})
        return Outcome(False, _("%(path)s in %(service)s is not one of your named volumes") % {"path": path, "service": service})
    return Outcome(False, _("nothing is mounted at %(path)s in %(service)s") % {"path": path, "service": service})
