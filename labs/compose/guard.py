"""What a student may run in their Docker environment: a compose file, read and refused here first.

`guard_compose(text, ...)` reads a compose file the way deployments/compose.py does (same
interpolation, errors naming the line and column) and returns a LabPlan, or raises
ComposeRefused listing every problem, each naming the service, the key and the line:
- refused outright: `privileged`, `cap_add`, `devices`, host bind mounts (any absolute or
  relative path, `~`, `type: bind`, tmpfs is allowed), the Docker socket, `network_mode`,
  `pid`, `ipc`, `userns_mode`, `cgroup`/`cgroup_parent`, `security_opt` (unconfined or
  any other), `sysctls`, `volumes_from`, `extra_hosts`... and any key the lab does not know;
- top-level volumes: named, local volumes only (no driver, no driver_opts, not external);
- published ports: only the host ports allocated to the environment, written with their
  variable (`"${PORT_WEB}:80"`), or by the port's name (`"web:80"`); a port without a
  published host port is refused (the engine would pick one outside the allocation);
- images: local images of the lab Docker host, or images of a registry the exercise allows;
- CPU and memory: a service's `deploy.resources.limits` are kept if the quota allows them;
  services without limits share what is left of the quota.

Nothing here talks to Docker: the `lab-compose` job runs the plan (labs/providers/docker_project.py)
and forces the labels, the network and the restart policy.
"""

import re
import shlex
from dataclasses import dataclass, field

import yaml
from django.utils.translation import gettext as _

from deployments.compose import ComposeError, as_list, duration_seconds, key_values, load_yaml, memory_mib
from panel.lib import safe_yaml

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")

ALLOWED_SERVICE_KEYS = {
    "image", "command", "entrypoint", "environment", "ports", "volumes", "healthcheck", "deploy", "restart",
    "depends_on", "labels", "networks", "working_dir", "user", "hostname", "expose", "stop_signal", "tty", "stdin_open",
}
# Keys refused with a reason a student can act on.
REFUSED_SERVICE_KEYS = {
    "privileged": "privileged containers are not allowed in the lab",
    "cap_add": "adding Linux capabilities is not allowed in the lab",
    "devices": "host devices cannot be given to lab containers",
    "device_cgroup_rules": "host devices cannot be given to lab containers",
    "network_mode": "lab services join the environment's own network only (no network_mode)",
    "pid": "sharing the host's (or another container's) process namespace is not allowed",
    "ipc": "sharing the host's IPC namespace is not allowed",
    "userns_mode": "the host user namespace is not allowed",
    "uts": "the host UTS namespace is not allowed",
    "cgroup": "the host cgroup namespace is not allowed",
    "cgroup_parent": "choosing the cgroup parent is not allowed",
    "security_opt": "security options (seccomp/apparmor unconfined...) cannot be changed in the lab",
    "sysctls": "kernel parameters cannot be changed in the lab",
    "volumes_from": "mounting another container's volumes is not allowed; use a named volume",
    "extra_hosts": "extra host entries are not allowed",
    "dns": "DNS servers cannot be changed in the lab",
    "build": "images cannot be built by the lab; use an image your teacher named",
    "container_name": "the panel names containers itself (<project>-<service>)",
    "env_file": "an uploaded file cannot read files; put the variables under environment",
    "secrets": "put the values under environment",
    "configs": "not supported in the lab",
    "ulimits": "limits are set by the exercise's quota",
    "mem_limit": "use deploy.resources.limits.memory",
    "cpus": "use deploy.resources.limits.cpus",
    "oom_kill_disable": "not allowed in the lab",
    "runtime": "choosing the container runtime is not allowed",
    "isolation": "not allowed in the lab",
    "links": "services reach each other by name on the environment's network; remove links",
    "external_links": "not allowed in the lab",
    "init": "not supported in the lab",
    "profiles": "not supported in the lab",
}
HOST_NAMESPACE_VALUES = {"network_mode", "pid", "ipc", "userns_mode", "uts", "cgroup"}
DOCKER_SOCKETS = ("docker.sock", "/var/run/docker", "/run/docker", "containerd.sock")
DEPLOY_KEYS = {"resources", "replicas", "restart_policy", "labels"}


class ComposeRefused(ValueError):
    """The file cannot run in the lab; `problems` lists each reason (service, key, line)."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass
class LabService:
    name: str
    image: str
    command: list = None
    entrypoint: list = None
    environment: dict = field(default_factory=dict)
    ports: list = field(default_factory=list)      # [{"name", "published", "container", "protocol"}]
    volumes: list = field(default_factory=list)    # [{"name", "target", "read_only"}]
    healthcheck: dict = None
    labels: dict = field(default_factory=dict)
    depends_on: list = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    cpu: float = 0.0
    memory_mib: int = 0


@dataclass
class LabPlan:
    services: list
    volumes: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def ordered_services(self):
        """Services after what they depend on (the guard refused cycles and unknown names)."""
        by_name = {service.name: service for service in self.services}
        done, ordered = set(), []

        def visit(service):
            if service.name in done:
                return
            done.add(service.name)
            for other in service.depends_on:
                visit(by_name[other])
            ordered.append(service)

        for service in self.services:
            visit(service)
        return ordered


def port_variable(name):
    """The interpolation variable of an allocated port: web -> PORT_WEB."""
    return "PORT_" + re.sub(r"[^A-Za-z0-9]+", "_", name).upper()


def quota_memory_mib(value):
    """Exercise quota memory ("512Mi", "1Gi", "256M", 536870912) in MiB."""
    if value in (None, ""):
        return 512
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|K|M|G|k|m|g)?i?[bB]?", text)
    if not match:
        raise ValueError(_("%(value)r is not a memory size (like 512Mi or 1Gi).") % {"value": value})
    number, unit = float(match.group(1)), (match.group(2) or "").lower().rstrip("i")
    if not unit:
        return max(4, int(number / 1048576))
    return max(4, int(number * {"k": 1 / 1024, "m": 1, "g": 1024}[unit]))


# ---- where things are in the file ---------------------------------------------------------------

def _locations(text):
    """{("services", "web", "ports", 0): line} for every key and item (1-based lines); {} if unreadable."""
    try:
        root = safe_yaml.compose(text)
    except yaml.YAMLError:
        return {}
    found = {}

    def walk(node, path):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    found[path + (key.value,)] = key.start_mark.line + 1
                    walk(value, path + (key.value,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                found[path + (index,)] = item.start_mark.line + 1
                walk(item, path + (index,))

    if root is not None:
        walk(root, ())
    return found


class _Problems:
    def __init__(self, filename, locations):
        self.filename = filename
        self.locations = locations
        self.items = []

    def add(self, path, message):
        line = None
        probe = tuple(path)
        while probe and line is None:
            line = self.locations.get(probe)
            probe = probe[:-1]
        dotted = ".".join(str(part) if not isinstance(part, int) else f"[{part}]" for part in path).replace(".[", "[")
        where = f"{self.filename}, line {line}" if line else self.filename
        self.items.append(f"{where}: {dotted}: {message}")


# ---- the guard ----------------------------------------------------------------------------------------

def guard_compose(text, port_map, quota=None, allowed_registries=(), filename="compose.yaml", extra_variables=None):
    """Read, check and convert a student's compose file. Raises ComposeRefused (every problem) or ComposeError (unreadable)."""
    quota = quota or {}
    variables = {port_variable(name): str(port) for name, port in port_map.items()}
    variables.update(extra_variables or {})
    data, interpolate = load_yaml(text, filename, variables)
    problems = _Problems(filename, _locations(text))
    for name in sorted(interpolate.unset):
        problems.add(("services",), _("variable %(name)s is not set (allocated ports are %(ports)s)") % {
            "name": name, "ports": ", ".join(port_variable(n) for n in sorted(port_map)) or _("none")})

    plan = LabPlan(services=[])
    for key, value in data.items():
        if key in ("version", "name") or str(key).startswith("x-"):
            continue
        if key == "networks":
            for network, body in (value or {}).items():
                if body:
                    problems.add(("networks", network), _("network options are not allowed: every service joins the environment's own network"))
            if value:
                plan.notes.append(_("networks: every service joins the environment's own network."))
        elif key == "volumes":
            for volume, body in (value or {}).items():
                path = ("volumes", volume)
                if not VOLUME_NAME.match(str(volume)):
                    problems.add(path, _("a volume name uses letters, digits, dots, dashes and underscores"))
                for option in sorted((body or {}).keys()):
                    if option == "labels":
                        continue
                    problems.add(path + (option,), _("only plain named volumes are allowed (no %(option)s)") % {"option": option})
                plan.volumes.append(str(volume))
        elif key != "services":
            problems.add((key,), _("not supported in the lab"))

    services = data.get("services")
    if not isinstance(services, dict) or not services:
        raise ComposeRefused([f"{filename}: " + _("no services are defined (a `services:` mapping is needed).")])
    declared_volumes = set(plan.volumes)
    for name, body in services.items():
        service = _service(problems, str(name), body or {}, port_map, declared_volumes, allowed_registries)
        if service is not None:
            plan.services.append(service)

    known = {service.name for service in plan.services}
    for service in plan.services:
        for other in service.depends_on:
            if other not in known and other in services:
                continue
            if other not in services:
                problems.add(("services", service.name, "depends_on"), _("names an unknown service %(name)s") % {"name": other})
    if not problems.items:
        _check_cycles(problems, plan)
    taken = {}
    for service in plan.services:
        for port in service.ports:
            if port["published"] in taken:
                problems.add(("services", service.name, "ports"), _("host port %(port)s is already published by %(other)s") % {
                    "port": port["published"], "other": taken[port["published"]]})
            taken[port["published"]] = service.name
    if not problems.items:
        _share_quota(problems, plan, quota)
    if problems.items:
        raise ComposeRefused(problems.items)
    return plan


def _service(problems, name, body, port_map, declared_volumes, allowed_registries):
    path = ("services", name)
    if not DNS_LABEL.match(name):
        problems.add(path, _("service names are lower-case letters, digits and dashes"))
        return None
    if not isinstance(body, dict):
        problems.add(path, _("a service is a mapping"))
        return None
    for key in body:
        if key in REFUSED_SERVICE_KEYS:
            value = body[key]
            message = REFUSED_SERVICE_KEYS[key]
            if key in HOST_NAMESPACE_VALUES and str(value).startswith("host"):
                message = _("%(key)s: %(value)s is refused: %(reason)s") % {"key": key, "value": value, "reason": message}
            elif key == "security_opt" and any("unconfined" in str(item) for item in (value or [])):
                message = _("%(value)s is refused: %(reason)s") % {"value": ", ".join(map(str, value)), "reason": message}
            elif key == "privileged" and not value:
                continue
            problems.add(path + (key,), message)
        elif key not in ALLOWED_SERVICE_KEYS:
            problems.add(path + (key,), _("not supported in the lab"))
    if "image" not in body or not str(body.get("image") or "").strip():
        problems.add(path, _("has no image"))
        return None
    service = LabService(name=name, image=_image_reference(str(body["image"]).strip()))
    _check_image(problems, path + ("image",), service.image, allowed_registries)
    for key in ("command", "entrypoint"):
        value = body.get(key)
        if value is not None:
            setattr(service, key, shlex.split(value) if isinstance(value, str) else [str(part) for part in value])
    service.environment = key_values(body.get("environment"))
    service.labels = {k: v for k, v in key_values(body.get("labels")).items() if not k.startswith("filrouge.")}
    service.working_dir = str(body.get("working_dir") or "")
    service.user = str(body.get("user") or "")
    for index, item in enumerate(as_list(body.get("ports"))):
        port = _port(problems, path + ("ports", index), item, port_map)
        if port:
            service.ports.append(port)
    for index, item in enumerate(as_list(body.get("volumes"))):
        volume = _volume(problems, path + ("volumes", index), item, declared_volumes)
        if volume:
            service.volumes.append(volume)
    depends = body.get("depends_on") or []
    service.depends_on = [str(item) for item in (depends.keys() if isinstance(depends, dict) else depends)]
    if body.get("healthcheck"):
        service.healthcheck = _healthcheck(problems, path + ("healthcheck",), body["healthcheck"])
    deploy = body.get("deploy") or {}
    for key in deploy:
        if key not in DEPLOY_KEYS:
            problems.add(path + ("deploy", key), _("not supported in the lab"))
    if int(deploy.get("replicas", 1) or 1) != 1:
        problems.add(path + ("deploy", "replicas"), _("a lab service runs one container (replicas: 1)"))
    limits = ((deploy.get("resources") or {}).get("limits")) or {}
    try:
        service.cpu = float(limits["cpus"]) if "cpus" in limits else 0.0
        service.memory_mib = memory_mib(limits["memory"]) if "memory" in limits else 0
    except (ValueError, ComposeError) as exc:
        problems.add(path + ("deploy", "resources", "limits"), str(exc))
    return service


def _image_reference(reference):
    last = reference.rsplit("/", 1)[-1]
    return reference if ":" in last or "@" in reference else f"{reference}:latest"


def _check_image(problems, path, reference, allowed_registries):
    first = reference.split("/", 1)[0]
    registry = first if "/" in reference and ("." in first or ":" in first or first == "localhost") else ""
    if registry and registry not in allowed_registries:
        allowed = ", ".join(sorted(allowed_registries)) or _("none: use images already on the lab host")
        problems.add(path, _("registry %(registry)s is not allowed for this exercise (allowed: %(allowed)s)") % {"registry": registry, "allowed": allowed})


def _port(problems, path, item, port_map):
    allowed = ", ".join(f"{name}={port} (${{{port_variable(name)}}})" for name, port in sorted(port_map.items())) or _("none")
    if isinstance(item, dict):
        container, published, protocol = item.get("target"), item.get("published"), item.get("protocol", "tcp")
        host_ip = item.get("host_ip")
    else:
        text, protocol = str(item), "tcp"
        if "/" in text:
            text, protocol = text.rsplit("/", 1)
        parts = text.split(":")
        host_ip = parts[0] if len(parts) == 3 else None
        published = parts[-2] if len(parts) >= 2 else None
        container = parts[-1]
    if host_ip not in (None, "", "0.0.0.0", "127.0.0.1"):
        problems.add(path, _("choosing the host address is not allowed"))
        return None
    if protocol not in ("tcp", "udp"):
        problems.add(path, _("protocol %(protocol)s is not tcp or udp") % {"protocol": protocol})
        return None
    try:
        container = int(str(container))
    except (TypeError, ValueError):
        problems.add(path, _("%(item)s: the container port must be a number (ranges are not allowed)") % {"item": item})
        return None
    if published in (None, ""):
        problems.add(path, _("%(item)s publishes no host port; publish one of your ports: %(allowed)s") % {"item": item, "allowed": allowed})
        return None
    published = str(published)
    name = None
    if published in port_map:
        name, published = published, port_map[published]
    else:
        try:
            published = int(published)
        except ValueError:
            problems.add(path, _("%(port)s is not one of your ports: %(allowed)s") % {"port": published, "allowed": allowed})
            return None
        name = next((key for key, value in port_map.items() if value == published), None)
    if name is None:
        problems.add(path, _("host port %(port)s is not allocated to you; use one of: %(allowed)s") % {"port": published, "allowed": allowed})
        return None
    return {"name": name, "published": int(published), "container": container, "protocol": protocol}


def _is_host_path(source):
    return source.startswith(("/", ".", "~")) or "/" in source or "\\" in source


def _volume(problems, path, item, declared):
    if isinstance(item, dict):
        kind = item.get("type", "volume")
        source, target, read_only = str(item.get("source") or ""), str(item.get("target") or ""), bool(item.get("read_only"))
        if kind == "tmpfs":
            problems.add(path, _("tmpfs mounts are not supported; use a named volume"))
            return None
        if kind != "volume":
            problems.add(path, _("%(kind)s mounts are refused: only named volumes are allowed") % {"kind": kind})
            return None
        for option in ("bind", "volume", "tmpfs"):
            if option in item and option != "volume":
                problems.add(path, _("%(option)s options are not allowed") % {"option": option})
                return None
    else:
        parts = str(item).split(":")
        if len(parts) == 1:
            problems.add(path, _("%(item)s is an anonymous volume; name it (name:%(item)s) and declare it under volumes") % {"item": item})
            return None
        source, target = parts[0], parts[1]
        read_only = len(parts) > 2 and "ro" in parts[2].split(",")
    if any(marker in source for marker in DOCKER_SOCKETS):
        problems.add(path, _("%(source)s: mounting the Docker socket is refused (it would give control of the whole host)") % {"source": source})
        return None
    if not source or _is_host_path(source):
        problems.add(path, _("%(source)s is a host path: host bind mounts are refused; use a named volume declared under volumes") % {"source": source or "''"})
        return None
    if source not in declared:
        problems.add(path, _("volume %(source)s is not declared under the top-level volumes") % {"source": source})
        return None
    if not target.startswith("/"):
        problems.add(path, _("the mount target %(target)s must be an absolute path in the container") % {"target": target})
        return None
    return {"name": source, "target": target, "read_only": read_only}


def _healthcheck(problems, path, body):
    if body.get("disable") or body.get("test") in (["NONE"], "NONE"):
        return None
    test = body.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    if not (isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL")):
        problems.add(path + ("test",), _("a health check test is a CMD or CMD-SHELL list"))
        return None
    check = {"test": [str(part) for part in test]}
    try:
        for key, docker_key in (("interval", "interval"), ("timeout", "timeout"), ("start_period", "start_period")):
            if key in body:
                check[docker_key] = int(duration_seconds(body[key]) * 1e9)
        if "retries" in body:
            check["retries"] = int(body["retries"])
    except (ValueError, ComposeError) as exc:
        problems.add(path, str(exc))
    return check


def _check_cycles(problems, plan):
    by_name = {service.name: service for service in plan.services}
    state = {}

    def visit(name, chain):
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            problems.add(("services", name, "depends_on"), _("depends_on makes a cycle: %(chain)s") % {"chain": " -> ".join(chain + [name])})
            return
        state[name] = "visiting"
        for other in by_name[name].depends_on:
            if other in by_name:
                visit(other, chain + [name])
        state[name] = "done"

    for name in by_name:
        visit(name, [])


def _share_quota(problems, plan, quota):
    """Fit every service's CPU and memory into the exercise's quota."""
    try:
        total_memory = quota_memory_mib(quota.get("memory", "512Mi"))
    except ValueError as exc:
        problems.add(("services",), str(exc))
        return
    total_cpu = float(quota.get("cpu", 1.0) or 1.0)
    asked_memory = sum(service.memory_mib for service in plan.services)
    asked_cpu = sum(service.cpu for service in plan.services)
    if asked_memory > total_memory:
        problems.add(("services",), _("the services ask for %(asked)d MiB of memory in total; the quota is %(quota)d MiB") % {"asked": asked_memory, "quota": total_memory})
    if asked_cpu > total_cpu + 1e-9:
        problems.add(("services",), _("the services ask for %(asked)s CPUs in total; the quota is %(quota)s") % {"asked": asked_cpu, "quota": total_cpu})
    if problems.items:
        return
    free = [service for service in plan.services if not service.memory_mib]
    for service in free:
        service.memory_mib = max(6, (total_memory - asked_memory) // len(free))
    free = [service for service in plan.services if not service.cpu]
    for service in free:
        service.cpu = max(0.01, round((total_cpu - asked_cpu) / len(free), 3))
