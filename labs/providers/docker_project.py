"""One student's Docker project on a lab Docker host: its network, containers, volumes and ports.

Used only inside jobs (the Docker provider and the `lab-compose` job). Everything created
here carries the environment's labels (`Environment.labels()`) plus
`filrouge.service=<compose service>` on containers and `filrouge.volume=<name>` on volumes,
so teardown and checks find objects by label, never by name:
- the project's bridge network, named after the project, on a small subnet (/27 by
  default) taken from `LABS_DOCKER_SUBNET_POOL`, so hundreds of environments never exhaust
  the engine's default address pools (about 30 /16 networks);
- containers named `<project>-<service>`, with CPU/memory limits within the exercise's
  quota, restart policy "no", no privileges (`no-new-privileges`, no capabilities added),
  a pid limit, and only the host ports allocated to the environment, bound to
  `LABS_DOCKER_PUBLISH_IP`;
- named volumes `<project>_<name>`.

What a student may ask for is decided before this module runs, by labs/compose/guard.py.
"""

import ipaddress
import re
import socket
from urllib.parse import urlparse

import docker
from django.conf import settings
from django.utils.translation import gettext as _

from clusters.drivers import docker as driver
from clusters.drivers.base import ClusterApiError, Conflict, NotFound
from deployments.compose import split_image

SERVICE_LABEL = "filrouge.service"
VOLUME_LABEL = "filrouge.volume"
PIDS_LIMIT = 256


def project_name(environment):
    """The Docker project of an environment: its name, prefixed by the lab instance unless it is the default one.

    Two panels (or two test runs) sharing a Docker host have their own environment ids, so
    the instance prefix keeps their "lab-1-alice" networks apart.
    """
    instance = getattr(settings, "LABS_INSTANCE", "filrouge")
    if instance == "filrouge":
        return environment.name
    prefix = re.sub(r"[^a-z0-9-]+", "-", instance.lower()).strip("-")[:20]
    return f"{prefix}-{environment.name}"[:63].rstrip("-")


def label_filters(environment, **extra):
    labels = environment.labels()
    wanted = [f"filrouge.env={labels['filrouge.env']}", f"filrouge.lab={labels['filrouge.lab']}"]
    wanted += [f"{key}={value}" for key, value in extra.items()]
    return {"label": wanted}


def publish_ip():
    return getattr(settings, "LABS_DOCKER_PUBLISH_IP", "127.0.0.1")


def access_host(cluster):
    """Where students reach published ports: the engine's host for remote engines, else LABS_DOCKER_PUBLIC_HOST."""
    endpoint = (cluster.endpoint or "").strip()
    if endpoint.startswith(("tcp://", "https://")):
        return urlparse(endpoint).hostname or "127.0.0.1"
    if endpoint.startswith("ssh://") and cluster.server_id:
        return cluster.server.address
    public = getattr(settings, "LABS_DOCKER_PUBLIC_HOST", "")
    if public:
        return public
    ip = publish_ip()
    return "127.0.0.1" if ip in ("0.0.0.0", "") else ip


def where(connection):
    return f"the lab Docker host {connection.description}"


# ---- network ------------------------------------------------------------------------------

def _subnets(environment):
    pool = ipaddress.ip_network(getattr(settings, "LABS_DOCKER_SUBNET_POOL", "10.213.0.0/16"))
    prefix = int(getattr(settings, "LABS_DOCKER_SUBNET_PREFIX", 27))
    count = 2 ** (prefix - pool.prefixlen)
    first = (int(environment.id) * 7919) % count  # spread neighbours apart; collisions retry below
    for step in range(count):
        index = (first + step) % count
        yield ipaddress.ip_network((int(pool.network_address) + index * 2 ** (32 - prefix), prefix))


def ensure_network(connection, environment, ctx=None):
    """The project's bridge network (created once, labelled). Returns {"name", "subnet"}."""
    api, name = connection.api, project_name(environment)
    with driver.docker_errors(where(connection)):
        for network in api.networks(names=[name]):
            if network["Name"] != name:
                continue
            labels = network.get("Labels") or {}
            if labels.get("filrouge.env") != str(environment.id) or labels.get("filrouge.lab") != environment.labels()["filrouge.lab"]:
                raise Conflict(
                    _("A network named %(name)s already exists on %(where)s and does not belong to this environment. Remove it or rename it.")
                    % {"name": name, "where": where(connection)}
                )
            configs = (network.get("IPAM") or {}).get("Config") or [{}]
            return {"name": name, "subnet": configs[0].get("Subnet", "")}
    tried = 0
    for subnet in _subnets(environment):
        tried += 1
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(subnet))])
        try:
            api.create_network(name, driver="bridge", labels=environment.labels(), ipam=ipam, check_duplicate=True)
        except docker.errors.APIError as exc:
            text = driver._explanation(exc).lower()
            if "overlap" in text and tried < 256:
                continue
            raise driver._translate(exc, where(connection)) from None
        except Exception as exc:  # noqa: BLE001
            raise driver._translate(exc, where(connection)) or exc from None
        if ctx is not None:
            ctx.changed(_("network %(name)s (%(subnet)s)") % {"name": name, "subnet": subnet}, task="network")
        return {"name": name, "subnet": str(subnet)}
    raise ClusterApiError(_("No free subnet is left in LABS_DOCKER_SUBNET_POOL on %(where)s. Destroy old environments or widen the pool.") % {"where": where(connection)})


# ---- ports ----------------------------------------------------------------------------------

def engine_ports_in_use(connection):
    """Host ports already published by any container on the engine."""
    with driver.docker_errors(where(connection)):
        containers = connection.api.containers(all=False)
    return {port["PublicPort"] for item in containers for port in item.get("Ports") or [] if port.get("PublicPort")}


def host_port_free(host, port):
    """For a local engine: can the port still be bound on the publish address?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host if host not in ("", "0.0.0.0") else "0.0.0.0", port))
        except OSError:
            return False
    return True


# ---- containers and volumes ----------------------------------------------------------------

def project_containers(connection, environment, service=None, all=True):  # noqa: A002 - docker's own word
    extra = {SERVICE_LABEL: service} if service else {}
    with driver.docker_errors(where(connection)):
        return connection.api.containers(all=all, filters=label_filters(environment, **extra))


def volume_name(environment, name):
    return f"{project_name(environment)}_{name}"


def ensure_volume(connection, environment, name):
    full = volume_name(environment, name)
    with driver.docker_errors(where(connection)):
        try:
            volume = connection.api.inspect_volume(full)
        except docker.errors.NotFound:
            labels = {**environment.labels(), VOLUME_LABEL: name}
            connection.api.create_volume(full, driver="local", labels=labels)
            return full
    labels = volume.get("Labels") or {}
    if labels.get("filrouge.env") != str(environment.id) or labels.get("filrouge.lab") != environment.labels()["filrouge.lab"]:
        raise Conflict(_("A volume named %(name)s already exists and does not belong to this environment.") % {"name": full})
    return full


def remove_service(connection, environment, service, ctx=None):
    for item in project_containers(connection, environment, service=service):
        with driver.docker_errors(where(connection)):
            try:
                connection.api.remove_container(item["Id"], force=True)
            except docker.errors.NotFound:
                continue
        if ctx is not None:
            ctx.changed(_("removed the old %(service)s container") % {"service": service}, task="remove")


def image_present(connection, reference):
    with driver.docker_errors(where(connection)):
        try:
            connection.api.inspect_image(reference)
            return True
        except docker.errors.ImageNotFound:
            return False


def run_service(connection, environment, network, service, ctx=None):
    """(Re)create and start one guarded service (a labs.compose.guard.LabService)."""
    remove_service(connection, environment, service.name, ctx)
    api = connection.api
    mounts = []
    for volume in service.volumes:
        source = ensure_volume(connection, environment, volume["name"])
        mounts.append(docker.types.Mount(volume["target"], source, type="volume", read_only=volume["read_only"]))
    bindings = {f"{port['container']}/{port['protocol']}": (publish_ip(), port["published"]) for port in service.ports}
    host_config = api.create_host_config(
        port_bindings=bindings or None,
        mounts=mounts or None,
        restart_policy={"Name": "no"},
        nano_cpus=int(service.cpu * 1e9),
        mem_limit=f"{service.memory_mib}m",
        memswap_limit=f"{service.memory_mib}m",
        pids_limit=PIDS_LIMIT,
        privileged=False,
        security_opt=["no-new-privileges"],
        cap_drop=["NET_RAW", "SYS_CHROOT", "MKNOD", "AUDIT_WRITE", "SETFCAP"],
        network_mode=network["name"],
    )
    networking = api.create_networking_config({network["name"]: api.create_endpoint_config(aliases=[service.name])})
    labels = {**service.labels, **environment.labels(), SERVICE_LABEL: service.name}
    name = f"{project_name(environment)}-{service.name}"
    config = {
        "image": service.image,
        "command": service.command or None,
        "entrypoint": service.entrypoint or None,
        "environment": service.environment,
        "labels": labels,
        "ports": [(port["container"], port["protocol"]) for port in service.ports] or None,
        "host_config": host_config,
        "networking_config": networking,
        "hostname": service.name,
        "name": name,
        "working_dir": service.working_dir or None,
        "user": service.user or None,
    }
    if service.healthcheck:
        config["healthcheck"] = service.healthcheck
    with driver.docker_errors(where(connection)):
        created = api.create_container(**config)
    try:
        with driver.docker_errors(where(connection)):
            api.start(created["Id"])
    except Conflict as exc:
        with driver.docker_errors(where(connection)):
            api.remove_container(created["Id"], force=True)
        raise Conflict(_("%(service)s cannot start: %(error)s") % {"service": service.name, "error": exc}) from None
    if ctx is not None:
        ports = ", ".join(f"{p['published']}->{p['container']}" for p in service.ports)
        ctx.changed(
            _("%(service)s started (%(image)s%(ports)s)") % {"service": service.name, "image": service.image, "ports": f", ports {ports}" if ports else ""},
            host=name, task="start",
        )
    return created["Id"]


def ensure_image(connection, service, allowed_registries, ctx=None):
    """Local images are used as they are; images of an allowed registry are pulled."""
    reference = service.image
    registry = driver.image_registry(reference)
    if registry and registry in allowed_registries:
        image, tag = split_image(reference)
        driver.ensure_image(connection, image, tag, ctx=ctx)
        return
    if not image_present(connection, reference):
        from labs.providers.docker_images import KNOWN, ensure_lab_image

        if reference in KNOWN:
            ensure_lab_image(connection, reference, ctx)
            return
        raise NotFound(
            _("Image %(image)s (service %(service)s) is not on the lab Docker host, and its registry is not one this course allows. Use an image your teacher named.")
            % {"image": reference, "service": service.name}
        )


def run_plan(connection, environment, plan, allowed_registries=(), ctx=None):
    """Start every service of a guarded plan in dependency order; remove services that left the file."""
    network = ensure_network(connection, environment, ctx)
    for service in plan.services:
        ensure_image(connection, service, allowed_registries, ctx)
    wanted = {service.name for service in plan.services}
    for item in project_containers(connection, environment):
        service = (item.get("Labels") or {}).get(SERVICE_LABEL)
        if service and service not in wanted:
            remove_service(connection, environment, service, ctx)
    started = []
    total = len(plan.services)
    for index, service in enumerate(plan.ordered_services(), start=1):
        started.append(run_service(connection, environment, network, service, ctx))
        if ctx is not None:
            ctx.progress(index, total)
    return started


# ---- teardown ---------------------------------------------------------------------------------

def teardown(connection, environment, ctx=None):
    """Remove every container, network and volume labelled as the environment's. Safe twice."""
    api, filters = connection.api, label_filters(environment)
    removed = {"containers": 0, "networks": 0, "volumes": 0}
    with driver.docker_errors(where(connection)):
        for item in api.containers(all=True, filters=filters):
            try:
                api.remove_container(item["Id"], force=True, v=True)
                removed["containers"] += 1
            except docker.errors.NotFound:
                pass
        for network in api.networks(filters=filters):
            try:
                api.remove_network(network["Id"])
                removed["networks"] += 1
            except docker.errors.NotFound:
                pass
        for volume in (api.volumes(filters=filters) or {}).get("Volumes") or []:
            try:
                api.remove_volume(volume["Name"], force=True)
                removed["volumes"] += 1
            except docker.errors.NotFound:
                pass
    if ctx is not None:
        ctx.changed(
            _("removed %(containers)d container(s), %(networks)d network(s), %(volumes)d volume(s)") % removed, task="destroy"
        )
    return removed


def leftovers(connection, environment):
    """What still carries the environment's labels (for tests and the expiry sweep's report)."""
    api, filters = connection.api, label_filters(environment)
    with driver.docker_errors(where(connection)):
        return {
            "containers": [c["Names"][0].lstrip("/") for c in api.containers(all=True, filters=filters)],
            "networks": [n["Name"] for n in api.networks(filters=filters)],
            "volumes": [v["Name"] for v in (api.volumes(filters=filters) or {}).get("Volumes") or []],
        }
