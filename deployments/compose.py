"""Compose file import: a compose project becomes Services of one project, deployed as a stack.

Accepted: current files and old `version: "3.x"` ones; variable interpolation (`$VAR`,
`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR:+alt}`, `$$`);
env_file; depends_on (list or map); healthcheck; deploy (replicas, resources,
update_config, restart_policy, labels); restart; ports (short and long syntax); volumes
(named, bind, long syntax) and networks; YAML anchors and `x-` extension fields.

Keys the panel does not support are listed in the preview, never dropped silently.
A broken file is refused with its name, line and column. Environment variables whose
name looks secret (PASSWORD, SECRET, TOKEN, KEY...) or whose value contains the value of
such a variable become encrypted service secrets, given to the containers as the same
environment variables.
"""

import os
import re
import shlex
from dataclasses import dataclass, field

import yaml
from rest_framework.exceptions import ValidationError

from .spec import DNS_LABEL, normalize_spec

SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE|API_?KEY|ACCESS_?KEY|CREDENTIAL)", re.I)
VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?$", re.S)

SERVICE_KEYS = {
    "image", "command", "environment", "env_file", "ports", "volumes", "healthcheck", "deploy", "restart",
    "depends_on", "labels", "networks",
}
DEPLOY_KEYS = {"replicas", "resources", "update_config", "restart_policy", "labels", "mode"}
UPDATE_KEYS = {"parallelism", "delay", "failure_action", "monitor", "order", "max_failure_ratio"}
RESTART_CONDITIONS = {"none": "no", "on-failure": "on-failure", "any": "always"}
HINTS = {
    "build": "build the image and push it to a registry, then name it in `image`",
    "container_name": "the panel names containers itself (<project>-<service>-r<revision>-<n>)",
    "entrypoint": "put the whole command in `command`, or change the image",
    "secrets": "set secret values on the service in the panel",
    "configs": "use the service's config files in the panel",
}


class ComposeError(ValueError):
    """A compose file that cannot be imported; the message names the file, line and column when known."""


@dataclass
class ImportedService:
    name: str
    spec: dict
    secrets: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


@dataclass
class ComposePlan:
    project: str
    services: list
    unsupported: list = field(default_factory=list)  # "services.web.build: not supported (hint)"
    warnings: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    # What the chosen cluster cannot run as written (set by `check_target`): the import is refused.
    problems: list = field(default_factory=list)

    def check_target(self, cluster_kind):
        """Note what a cluster of this kind would refuse at deploy time, so the preview and
        the import say it first. Returns the problems (also kept in `self.problems`)."""
        self.problems = target_problems(self, cluster_kind)
        return self.problems

    def preview(self):
        """Plain text for the command line (the page renders the same data as HTML)."""
        lines = [f"Project {self.project}: {len(self.services)} service(s)"]
        for item in self.services:
            spec = item.spec
            lines.append(f"  {item.name}: {spec['image']}:{spec['tag']} x{spec['replicas']}")
            if spec["ports"]:
                lines.append("    ports: " + ", ".join(_port_text(p) for p in spec["ports"]))
            if spec["env"] or item.secrets:
                lines.append("    environment: " + ", ".join(sorted(spec["env"])) + (f" (secret: {', '.join(sorted(item.secrets))})" if item.secrets else ""))
            if spec["volumes"]:
                lines.append("    volumes: " + ", ".join(f"{v['source']}:{v['target']}{':ro' if v['read_only'] else ''}" for v in spec["volumes"]))
            if (spec["health_check"] or {}).get("type", "none") != "none":
                lines.append(f"    health check: {spec['health_check']['type']} {' '.join(spec['health_check']['command'])}".rstrip())
            if spec["depends_on"]:
                lines.append("    after: " + ", ".join(spec["depends_on"]))
            for note in item.notes:
                lines.append(f"    note: {note}")
        for title, items in (("Cannot be deployed as written", self.problems), ("Not supported (not imported)", self.unsupported),
                             ("Warnings", self.warnings), ("Notes", self.notes)):
            if items:
                lines.append(f"{title}:")
                lines.extend(f"  - {item}" for item in items)
        return "\n".join(lines)


def target_problems(plan, cluster_kind):
    """Published host ports a cluster of this kind cannot give: on one Docker host a host
    port is bound by one container, so several replicas (or two services) cannot share a
    fixed one. A Swarm's routing mesh spreads one port over every replica of a service,
    but two services still cannot publish the same port."""
    problems, taken = [], {}
    for item in plan.services:
        spec = item.spec
        fixed = [port for port in spec.get("ports") or [] if port.get("published")]
        if cluster_kind == "docker" and spec.get("replicas", 1) > 1 and fixed:
            numbers = ", ".join(str(port["published"]) for port in fixed)
            problems.append(
                f"services.{item.name}: {spec['replicas']} replicas cannot share host port {numbers} on one Docker host. "
                "Leave the published port empty to give each replica its own port, use 1 replica, or deploy to a Swarm cluster."
            )
        for port in fixed:
            host_ip = port.get("host_ip") or "0.0.0.0"
            key = (port["published"], port.get("protocol", "tcp"), host_ip if cluster_kind == "docker" else "")
            wildcard = (port["published"], port.get("protocol", "tcp"), "0.0.0.0" if cluster_kind == "docker" else "")
            other = taken.get(key) or (taken.get(wildcard) if cluster_kind == "docker" else None)
            if other and other != item.name:
                problems.append(f"services.{item.name}: host port {port['published']}/{port.get('protocol', 'tcp')} is also published by "
                                f"services.{other}; a host port can be published by one service only.")
            taken.setdefault(key, item.name)
    return problems


def _port_text(port):
    host = f"{port['host_ip']}:" if port.get("host_ip") not in (None, "0.0.0.0") else ""
    published = f"{host}{port['published']}:" if port.get("published") else (host or "")
    return f"{published}{port['container']}/{port['protocol']}"


# ---- loading with interpolation ------------------------------------------------------

class _Interpolator:
    def __init__(self, variables, filename):
        self.variables = variables
        self.filename = filename
        self.unset = set()
        self.used = set()

    def __call__(self, text, mark):
        def replace(match):
            if match.group("escaped"):
                return "$"
            if match.group("named"):
                return self._value(match.group("named"), None, None, mark)
            braced = BRACED.match(match.group("braced"))
            if not braced:
                raise ComposeError(f"{_where(self.filename, mark)}: invalid interpolation ${{{match.group('braced')}}}.")
            return self._value(braced.group("name"), braced.group("op"), braced.group("arg"), mark)

        return VARIABLE.sub(replace, text)

    def _value(self, name, op, arg, mark):
        self.used.add(name)
        value = self.variables.get(name)
        if op in (":-", "-"):
            if value is None or (op == ":-" and value == ""):
                return self(arg or "", mark)
            return value
        if op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                raise ComposeError(f"{_where(self.filename, mark)}: variable {name} is required: {arg or 'it is not set'}.")
            return value
        if op in (":+", "+"):
            if value is None or (op == ":+" and value == ""):
                return ""
            return self(arg or "", mark)
        if value is None:
            self.unset.add(name)
            return ""
        return value


def _where(filename, mark):
    if mark is None:
        return filename
    return f"{filename}, line {mark.line + 1}, column {mark.column + 1}"


def _loader(interpolate):
    class Loader(yaml.SafeLoader):
        pass

    def construct_scalar(loader, node):
        value = yaml.SafeLoader.construct_scalar(loader, node)
        if isinstance(value, str) and "$" in value:
            return interpolate(value, node.start_mark)
        return value

    def construct_str(loader, node):
        return construct_scalar(loader, node)

    Loader.add_constructor("tag:yaml.org,2002:str", construct_str)
    return Loader


def load_yaml(text, filename, variables):
    """Parse and interpolate; raise ComposeError with the file, line and column."""
    interpolate = _Interpolator(variables, filename)
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        data = yaml.load(text, Loader=_loader(interpolate))  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if "\t" in problem or "'\\t'" in problem:
            problem += " (tabs cannot indent YAML; use spaces)"
        raise ComposeError(f"{_where(filename, mark)}: {problem}.") from None
    except yaml.YAMLError as exc:
        raise ComposeError(f"{filename}: {exc}") from None
    if not isinstance(data, dict):
        raise ComposeError(f"{filename}: a compose file is a mapping with a `services` key, not {type(data).__name__}.")
    return data, interpolate


def read_env_file(path):
    """KEY=VALUE lines (comments, blank lines, `export ` prefixes and quotes handled), like compose's .env."""
    values = {}
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                line = line[7:].lstrip()
            if "=" not in line:
                raise ComposeError(f"{path}, line {number}: expected KEY=VALUE.")
            key, value = line.split("=", 1)
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            values[key.strip()] = value
    return values


# ---- conversion ------------------------------------------------------------------------

def parse_compose(text, filename="compose.yaml", project=None, variables=None, base_dir=None):
    """Read a compose file into a ComposePlan (nothing is saved).

    `variables` are used for interpolation (the command line passes its environment and
    the project's .env; the page passes what the user typed). `base_dir` resolves
    env_file and relative bind mounts; without it they are reported as unsupported.
    """
    variables = dict(variables or {})
    data, interpolate = load_yaml(text, filename, variables)
    plan = ComposePlan(project=project or "", services=[])
    name = project or data.get("name") or (os.path.basename(os.path.abspath(base_dir)) if base_dir else "")
    plan.project = _project_name(name)
    for key in data:
        if key == "version":
            plan.notes.append(f"version: {data['version']!r} is obsolete and ignored; the file is read as the Compose specification.")
        elif key.startswith("x-"):
            plan.notes.append(f"{key}: extension field, used through its anchors only.")
        elif key in ("networks",):
            names = ", ".join(sorted(data["networks"] or {})) or "none"
            plan.notes.append(f"networks ({names}): every service of the project joins one network, filrouge-{plan.project}.")
        elif key not in ("services", "volumes", "name"):
            plan.unsupported.append(f"{key}: not supported{' (' + HINTS[key] + ')' if key in HINTS else ''}")
    services = data.get("services")
    if not isinstance(services, dict) or not services:
        raise ComposeError(f"{filename}: no services are defined (a `services:` mapping is needed).")
    declared_volumes = set((data.get("volumes") or {}).keys())
    secret_values = {value for key, value in variables.items() if SECRET_NAME.search(key) and value and key in interpolate.used}
    for service_name, body in services.items():
        plan.services.append(_service(plan, filename, str(service_name), body or {}, declared_volumes, secret_values, base_dir))
    known = {item.name for item in plan.services}
    for item in plan.services:
        missing = [name for name in item.spec["depends_on"] if name not in known]
        if missing:
            raise ComposeError(f"{filename}: services.{item.name}.depends_on names unknown service(s): {', '.join(missing)}.")
    for name in sorted(interpolate.unset):
        plan.warnings.append(f"variable {name} is not set; an empty string was used.")
    return plan


def _project_name(name):
    cleaned = re.sub(r"[^a-z0-9-]+", "-", (name or "").lower()).strip("-")[:63].strip("-")
    return cleaned or "default"


def _service(plan, filename, name, body, declared_volumes, secret_values, base_dir):
    where = f"services.{name}"
    if not DNS_LABEL.match(name):
        raise ComposeError(f"{filename}: {where}: service names must be lower-case letters, digits and dashes.")
    if "image" not in body:
        hint = f" ({HINTS['build']})" if "build" in body else ""
        raise ComposeError(f"{filename}: {where} has no image{hint}.")
    notes = []
    for key in body:
        if key not in SERVICE_KEYS:
            plan.unsupported.append(f"{where}.{key}: not supported{' (' + HINTS[key] + ')' if key in HINTS else ''}")
    image, tag = split_image(str(body["image"]))
    spec = {"image": image, "tag": tag}
    if body.get("command") is not None:
        command = body["command"]
        spec["command"] = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
    env = {}
    for env_file in _as_list(body.get("env_file")):
        path = env_file if isinstance(env_file, str) else (env_file or {}).get("path", "")
        if base_dir is None:
            plan.unsupported.append(f"{where}.env_file: {path} cannot be read from an upload; add its variables to the environment instead.")
            continue
        full = os.path.join(base_dir, path)
        if not os.path.exists(full):
            if isinstance(env_file, dict) and env_file.get("required") is False:
                continue
            raise ComposeError(f"{filename}: {where}.env_file: {full} does not exist.")
        env.update(read_env_file(full))
    env.update(_environment(body.get("environment")))
    secrets = {key: value for key, value in env.items() if SECRET_NAME.search(key) or any(secret and secret in value for secret in secret_values)}
    for key in secrets:
        env.pop(key)
    if secrets:
        spec["secrets"] = [{"name": key, "env": key} for key in sorted(secrets)]
        notes.append(f"kept as encrypted secrets: {', '.join(sorted(secrets))}")
    spec["env"] = env
    spec["ports"] = [_port(plan, where, item) for item in _as_list(body.get("ports"))]
    spec["ports"] = [port for port in spec["ports"] if port]
    spec["volumes"] = [v for v in (_volume(plan, where, item, declared_volumes, base_dir) for item in _as_list(body.get("volumes"))) if v]
    if "healthcheck" in body:
        spec["health_check"] = _healthcheck(plan, where, body["healthcheck"] or {})
    restart = body.get("restart")
    if restart:
        spec["restart_policy"] = "on-failure" if str(restart).startswith("on-failure") else str(restart)
    labels = _environment(body.get("labels"))
    deploy = body.get("deploy") or {}
    for key in deploy:
        if key not in DEPLOY_KEYS:
            plan.unsupported.append(f"{where}.deploy.{key}: not supported")
    if deploy.get("mode") not in (None, "replicated"):
        plan.unsupported.append(f"{where}.deploy.mode: {deploy['mode']} is not supported (replicated only)")
    if "replicas" in deploy:
        spec["replicas"] = int(deploy["replicas"])
    spec["resources"] = _resources(plan, where, deploy.get("resources") or {})
    update = deploy.get("update_config") or {}
    for key in update:
        if key not in UPDATE_KEYS:
            plan.unsupported.append(f"{where}.deploy.update_config.{key}: not supported")
    spec["update"] = {
        key: value for key, value in {
            "parallelism": update.get("parallelism"),
            "delay": duration_seconds(update["delay"]) if "delay" in update else None,
            "failure_action": update.get("failure_action"),
            "order": update.get("order"),
            "monitor": duration_seconds(update["monitor"]) if "monitor" in update else None,
        }.items() if value is not None
    }
    if spec["update"].get("parallelism") == 0:  # compose: 0 means all at once
        spec["update"]["parallelism"] = max(1, spec.get("replicas", 1))
    condition = (deploy.get("restart_policy") or {}).get("condition")
    if condition:
        spec["restart_policy"] = RESTART_CONDITIONS.get(condition, "on-failure")
    for key in (deploy.get("restart_policy") or {}):
        if key != "condition":
            plan.unsupported.append(f"{where}.deploy.restart_policy.{key}: not supported")
    labels.update(_environment(deploy.get("labels")))
    spec["labels"] = labels
    depends = body.get("depends_on") or []
    spec["depends_on"] = list(depends.keys()) if isinstance(depends, dict) else [str(item) for item in depends]
    if isinstance(depends, dict):
        for other, options in depends.items():
            if (options or {}).get("condition") == "service_healthy":
                notes.append(f"deployed after {other} is healthy")
    if body.get("networks"):
        names = body["networks"] if isinstance(body["networks"], list) else list(body["networks"])
        notes.append(f"networks {', '.join(map(str, names))}: joins the project network")
    try:
        normalized = normalize_spec(spec)
    except ValidationError as exc:
        raise ComposeError(f"{filename}: {where}: {_flatten(exc.detail)}") from None
    return ImportedService(name=name, spec=normalized, secrets=secrets, notes=notes)


def split_image(reference):
    """("registry:5000/app/web", "1.4") from "registry:5000/app/web:1.4"; tag "latest" when absent."""
    reference = reference.split("@", 1)[0]
    name, _, tag = reference.rpartition(":")
    if name and "/" not in tag:
        return name, tag
    return reference, "latest"


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _environment(value):
    if not value:
        return {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
    result = {}
    for item in value:
        key, _, val = str(item).partition("=")
        result[key] = val
    return result


def _port(plan, where, item):
    if isinstance(item, dict):
        if "target" not in item:
            plan.unsupported.append(f"{where}.ports: {item} has no target")
            return None
        return {
            "container": int(item["target"]),
            "published": int(item["published"]) if item.get("published") not in (None, "") else None,
            "protocol": item.get("protocol", "tcp"),
            "host_ip": item.get("host_ip") or "0.0.0.0",
            "mode": item.get("mode", "ingress"),
        }
    text = str(item)
    protocol = "tcp"
    if "/" in text:
        text, protocol = text.rsplit("/", 1)
    parts = text.rsplit(":", 2) if text.count(":") <= 2 else None
    if parts is None or any("-" in part for part in parts):
        plan.unsupported.append(f"{where}.ports: {item} (port ranges and IPv6 short syntax are not supported; use the long syntax)")
        return None
    host_ip, published, container = ("0.0.0.0", None, parts[-1])
    if len(parts) == 2:
        published = parts[0]
    elif len(parts) == 3:
        host_ip, published = parts[0] or "0.0.0.0", parts[1]
    return {"container": int(container), "published": int(published) if published else None, "protocol": protocol, "host_ip": host_ip, "mode": "ingress"}


def _volume(plan, where, item, declared, base_dir):
    if isinstance(item, dict):
        source, target, read_only = item.get("source", ""), item.get("target", ""), bool(item.get("read_only"))
        if item.get("type") not in (None, "volume", "bind"):
            plan.unsupported.append(f"{where}.volumes: type {item.get('type')} is not supported")
            return None
    else:
        parts = str(item).split(":")
        if len(parts) == 1:
            plan.unsupported.append(f"{where}.volumes: {item} (anonymous volumes are not supported; name the volume)")
            return None
        source, target = parts[0], parts[1]
        read_only = len(parts) > 2 and "ro" in parts[2].split(",")
    if source.startswith((".", "~")):
        if base_dir is None:
            plan.unsupported.append(f"{where}.volumes: {source} is a path relative to the compose file; give an absolute path or a named volume")
            return None
        source = os.path.normpath(os.path.join(os.path.abspath(base_dir), os.path.expanduser(source)))
    if not source.startswith("/") and source not in declared:
        plan.warnings.append(f"{where}.volumes: {source} is not declared under the top-level volumes; it is created as a named volume.")
    return {"source": source, "target": target, "read_only": read_only}


def _healthcheck(plan, where, body):
    if body.get("disable") or body.get("test") in (["NONE"], "NONE"):
        plan.notes.append(f"{where}.healthcheck: disabled in the file; the image's own health check (if any) is kept.")
        return {"type": "none"}
    test = body.get("test")
    if isinstance(test, str):
        command = [test]
    elif isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL"):
        command = [" ".join(test[1:])] if test[0] == "CMD-SHELL" else [str(part) for part in test[1:]]
    else:
        plan.unsupported.append(f"{where}.healthcheck.test: {test!r} is not a CMD or CMD-SHELL test")
        return {"type": "none"}
    check = {"type": "command", "command": command}
    for key in ("interval", "timeout", "start_period"):
        if key in body:
            check[key] = duration_seconds(body[key])
    if "retries" in body:
        check["retries"] = int(body["retries"])
    return check


def _resources(plan, where, body):
    limits, reservations = body.get("limits") or {}, body.get("reservations") or {}
    result = {}
    if "cpus" in limits:
        result["cpu"] = float(limits["cpus"])
    if "memory" in limits:
        result["memory_mib"] = memory_mib(limits["memory"])
    if "cpus" in reservations:
        result["cpu_request"] = float(reservations["cpus"])
    if "memory" in reservations:
        result["memory_request_mib"] = memory_mib(reservations["memory"])
    for section, values in (("limits", limits), ("reservations", reservations)):
        for key in values:
            if key not in ("cpus", "memory"):
                plan.unsupported.append(f"{where}.deploy.resources.{section}.{key}: not supported")
    return result


DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")


def duration_seconds(value):
    """Compose durations ("10s", "1m30s", "500ms", or a number of seconds) in seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    parts = DURATION.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ComposeError(f"{text!r} is not a duration (like 10s, 1m30s, 500ms).")
    factor = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(number) * factor[unit] for number, unit in parts)


def memory_mib(value):
    """Compose memory ("256M", "1g", "512m", bytes) in MiB."""
    if isinstance(value, (int, float)):
        return max(4, int(value) // (1024 * 1024))
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg]?)b?", str(value).strip().lower())
    if not match:
        raise ComposeError(f"{value!r} is not a memory size (like 256M or 1G).")
    number, unit = float(match.group(1)), match.group(2) or "b"
    return max(4, int(number * {"b": 1 / 1048576, "k": 1 / 1024, "m": 1, "g": 1024}[unit]))


def _flatten(detail, prefix=""):
    if isinstance(detail, dict):
        return "; ".join(_flatten(value, f"{prefix}{key}.") for key, value in detail.items())
    if isinstance(detail, list):
        return "; ".join(_flatten(value, prefix) for value in detail)
    return f"{prefix.rstrip('.')}: {detail}" if prefix else str(detail)


# ---- saving ------------------------------------------------------------------------------

def apply_plan(plan, cluster, user=None):
    """Create or update the project's Services from the plan; return them (nothing is deployed)."""
    from django.db import transaction

    from .models import Service

    saved = []
    with transaction.atomic():
        for item in plan.services:
            service, _created = Service.objects.get_or_create(
                cluster=cluster, project=plan.project, name=item.name,
                defaults={"spec": item.spec, "created_by": user if getattr(user, "pk", None) else None},
            )
            service.spec = item.spec
            current = service.get_secrets()
            current.update(item.secrets)
            service.set_secrets(current)
            service.save()
            saved.append(service)
    return saved
