"""Compose file import: a compose project becomes Services of one project, deployed as a stack.

Accepted: current files and old `version: "3.x"` ones; variable interpolation (`$VAR`,
`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR:+alt}`, `$$`);
env_file; depends_on (list or map); healthcheck; deploy (replicas, resources,
update_config, restart_policy, labels); restart; ports (short and long syntax); volumes
(named, bind, long syntax) and networks; YAML anchors and `x-` extension fields.

Also: `build:` (string or {context, dockerfile, args, target}), built on the target
engine at deploy from the context stored with the release (deployments/builds.py);
`secrets:` and `configs:` read from files (or the environment) and mounted as files;
`expose`; anonymous volumes (kept as named ones); same-file `extends`; `profiles`.

Keys the panel does not support are listed in the preview with their line, never dropped
silently. A broken file is refused with its name, line and column. Environment variables
whose name looks secret (PASSWORD, SECRET, TOKEN, KEY...), whose value contains the value
of such a variable, or whose value is a URL carrying a password
(`postgres://user:pw@db/x`) become encrypted service secrets, given to the containers as
the same environment variables. `.env` and `env_file` are read by python-dotenv, as
docker-compose itself reads them.
"""

import os
import re
import shlex
from dataclasses import dataclass, field

import yaml
from rest_framework.exceptions import ValidationError

from panel.lib import safe_yaml

from .builds import ArchiveError, context_archive, image_tag
from .spec import DNS_LABEL, normalize_spec

# scheme://user:password@host — the password part must be non-empty.
URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@[^\s/]")
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE|API_?KEY|ACCESS_?KEY|CREDENTIAL)", re.I)
VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?$", re.S)

SERVICE_KEYS = {
    "image", "command", "environment", "env_file", "ports", "volumes", "healthcheck", "deploy", "restart",
    "depends_on", "labels", "networks", "build", "secrets", "configs", "expose", "profiles", "extends",
}
BUILD_KEYS = {"context", "dockerfile", "args", "target"}
TOP_LEVEL_KEYS = {"version", "services", "volumes", "networks", "name", "secrets", "configs"}
DEPLOY_KEYS = {"replicas", "resources", "update_config", "restart_policy", "labels", "mode"}
UPDATE_KEYS = {"parallelism", "delay", "failure_action", "monitor", "order", "max_failure_ratio"}
RESTART_CONDITIONS = {"none": "no", "on-failure": "on-failure", "any": "always"}
HINTS = {
    "container_name": "the panel names containers itself (<project>-<service>-r<revision>-<n>); other services reach it by its service name",
    "entrypoint": "put the whole command in `command`, or change the image",
    "ipv4_address": "the engine gives addresses on the project network; reach the service by its name",
    "ipv6_address": "the engine gives addresses on the project network; reach the service by its name",
    "ipam": "the panel creates one network per project with addresses chosen by the engine",
}


class ComposeError(ValueError):
    """A compose file that cannot be imported; the message names the file, line and column when known."""


@dataclass
class ImportedService:
    name: str
    spec: dict
    secrets: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    build_archive: bytes = b""  # the build context (tar) when the service is built from source


@dataclass
class ComposePlan:
    project: str
    services: list
    unsupported: list = field(default_factory=list)  # "services.web.cap_add (line 7): not supported"
    warnings: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    # What the chosen cluster cannot run as written (set by `check_target`): the import is refused.
    problems: list = field(default_factory=list)
    lines: dict = field(default_factory=dict, repr=False)  # ("services", "web", "build") -> line

    def at(self, *path):
        """"services.web.build (line 7)": a key and the line it is written on."""
        line = None
        for depth in range(len(path), 0, -1):
            line = self.lines.get(tuple(str(part) for part in path[:depth]))
            if line:
                break
        text = ""
        for part in path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
        return f"{text} (line {line})" if line else text

    def refuse(self, path, text):
        self.unsupported.append(f"{self.at(*path)}: {text}")

    def preview(self):
        """Plain text for the command line (the page renders the same data as HTML)."""
        lines = [f"Project {self.project}: {len(self.services)} service(s)"]
        for item in self.services:
            spec = item.spec
            lines.append(f"  {item.name}: {spec['image']}:{spec['tag']} x{spec['replicas']}")
            if spec.get("build"):
                build = spec["build"]
                lines.append(f"    built from source: {len(item.build_archive) // 1024} KiB context, {build['dockerfile']}"
                             + (f", target {build['target']}" if build.get("target") else "")
                             + (f", args {', '.join(sorted(build['args']))}" if build.get("args") else ""))
            files = [use["path"] for use in spec.get("secrets") or [] if use.get("path")]
            if files:
                lines.append("    secret files: " + ", ".join(files))
            if spec.get("config_files"):
                lines.append("    config files: " + ", ".join(item["path"] for item in spec["config_files"]))
            if spec["ports"]:
                lines.append("    ports: " + ", ".join(_port_text(p) for p in spec["ports"]))
            env_secrets = sorted(use["name"] for use in spec.get("secrets") or [] if use.get("env"))
            if spec["env"] or env_secrets:
                lines.append("    environment: " + ", ".join(sorted(spec["env"])) + (f" (secret: {', '.join(env_secrets)})" if env_secrets else ""))
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
    class Loader(safe_yaml.SafeLoader):
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
        data = safe_yaml.load(text, Loader=_loader(interpolate))
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
    """KEY=VALUE lines read by python-dotenv, exactly as docker-compose reads `.env` and
    `env_file` (quotes, `export`, ` # comment` after an unquoted value, ${VAR} inside
    double quotes...). A key without `=` is left out (it would come from the shell)."""
    import dotenv

    try:
        values = dotenv.dotenv_values(dotenv_path=path, encoding="utf-8-sig", interpolate=True)
    except UnicodeDecodeError:
        raise ComposeError(f"{path}: not UTF-8 text.") from None
    return {str(key): value for key, value in values.items() if value is not None}


def key_lines(text):
    """{("services", "web", "build"): 7, ...}: the line of each mapping key of a YAML text
    (keys merged from anchors have none; messages then give their parent's line)."""
    lines = {}

    seen = set()

    def walk(node, path):
        if id(node) in seen:  # an alias: its keys have the lines of its anchor
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    here = (*path, key.value)
                    lines.setdefault(here, key.start_mark.line + 1)
                    walk(value, here)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                here = (*path, str(index))
                lines.setdefault(here, item.start_mark.line + 1)
                walk(item, here)

    try:
        walk(safe_yaml.compose(text), ())
    except yaml.YAMLError:
        pass
    return lines


# ---- conversion ------------------------------------------------------------------------

def parse_compose(text, filename="compose.yaml", project=None, variables=None, base_dir=None, registry=None, confine=False):
    """Read a compose file into a ComposePlan (nothing is saved).

    `variables` are used for interpolation (the command line passes its environment and
    the project's .env; the page passes what the user typed, or the uploaded folder's
    .env). `base_dir` resolves env_file, build contexts, secret and config files and
    relative bind mounts; without it (pasted text) they are listed as unsupported.
    `registry` ("host:port/path") prefixes the images of services built from source, which
    are pushed there at deploy. `confine` keeps every path inside `base_dir` (an upload).
    """
    if text.startswith("\\ufeff"):
        text = text[1:]
    variables = dict(variables or {})
    data, interpolate = load_yaml(text, filename, variables)
    plan = ComposePlan(project=project or "", services=[], lines=key_lines(text))
    name = project or data.get("name") or (os.path.basename(os.path.abspath(base_dir)) if base_dir else "")
    plan.project = _project_name(name)
    context = _Context(plan, filename, base_dir, confine, registry)
    for key in data:
        if key == "version":
            plan.notes.append(f"version: {data['version']!r} is obsolete and ignored; the file is read as the Compose specification.")
        elif key.startswith("x-"):
            plan.notes.append(f"{key}: extension field, used through its anchors only.")
        elif key == "networks":
            _networks(plan, data["networks"] or {})
        elif key not in TOP_LEVEL_KEYS:
            plan.refuse((key,), f"not supported{' (' + HINTS[key] + ')' if key in HINTS else ''}")
    services = data.get("services")
    if not isinstance(services, dict) or not services:
        raise ComposeError(f"{filename}: no services are defined (a `services:` mapping is needed).")
    context.secrets = _file_objects(context, "secrets", data.get("secrets") or {}, variables)
    context.configs = _file_objects(context, "configs", data.get("configs") or {}, variables)
    declared_volumes = set((data.get("volumes") or {}).keys())
    secret_values = {value for key, value in variables.items() if SECRET_NAME.search(key) and value and key in interpolate.used}
    missing_images = []
    for service_name, body in services.items():
        body = _extended(plan, filename, services, str(service_name), body or {})
        if "image" not in body and "build" not in body:
            missing_images.append(plan.at("services", service_name))
            continue
        if body.get("profiles"):
            plan.notes.append(f"{plan.at('services', service_name, 'profiles')}: {service_name} belongs to profile(s) "
                              f"{', '.join(map(str, body['profiles']))}, which compose starts only when asked (--profile); it was not imported.")
            continue
        item = _service(plan, context, str(service_name), body, declared_volumes, secret_values)
        if item is not None:
            plan.services.append(item)
    if missing_images:
        raise ComposeError(f"{filename}: {', '.join(missing_images)}: a service needs an `image` or a `build` (neither is given).")
    if context.unreadable_builds:
        raise ComposeError(
            f"{filename}: {', '.join(context.unreadable_builds)}: the build context cannot be read from pasted text. "
            "Upload the project folder as an archive (.zip or .tar.gz), or run `manage.py import_compose FOLDER`."
        )
    if not plan.services:
        raise ComposeError(f"{filename}: every service is in a profile; nothing to import.")
    known = {item.name for item in plan.services}
    for item in plan.services:
        missing = [name for name in item.spec["depends_on"] if name not in known]
        if missing:
            raise ComposeError(f"{filename}: {plan.at('services', item.name, 'depends_on')}: unknown service(s): {', '.join(missing)}.")
    for name in sorted(interpolate.unset):
        plan.warnings.append(f"variable {name} is not set; an empty string was used.")
    return plan


@dataclass
class _Context:
    plan: ComposePlan
    filename: str
    base_dir: str | None
    confine: bool
    registry: str | None
    secrets: dict = field(default_factory=dict)
    configs: dict = field(default_factory=dict)
    unreadable_builds: list = field(default_factory=list)

    def path(self, relative, where):
        """An absolute path for a path relative to the compose file; None without a folder.
        Refuses (ComposeError) a path leaving an uploaded folder."""
        if self.base_dir is None:
            return None
        root = os.path.realpath(self.base_dir)
        full = os.path.realpath(os.path.join(root, os.path.expanduser(str(relative))))
        if self.confine and not (full == root or full.startswith(root + os.sep)):
            raise ComposeError(f"{self.filename}: {where}: {relative} is outside the uploaded folder; paths must stay inside it.")
        return full


def _project_name(name):
    cleaned = re.sub(r"[^a-z0-9-]+", "-", (name or "").lower()).strip("-")[:63].strip("-")
    return cleaned or "default"


def _networks(plan, networks):
    names = ", ".join(sorted(map(str, networks))) or "none"
    plan.notes.append(f"networks ({names}): every service of the project joins one network, filrouge-{plan.project}.")
    for name, body in networks.items():
        for key, value in (body or {}).items():
            if key in ("name", "labels"):
                continue
            if key == "driver" and value in ("bridge", "overlay"):
                continue
            hint = HINTS.get(key, "the project network is a plain bridge (Docker) or overlay (Swarm) network")
            plan.refuse(("networks", name, key), f"{value!r} is not supported ({hint})" if key != "ipam" else f"not supported ({hint})")


def _file_objects(context, kind, definitions, variables):
    """Top-level secrets / configs: {name: value or None (external: set it in the panel)}."""
    plan, values = context.plan, {}
    for name, body in definitions.items():
        body = body or {}
        name = str(name)
        if body.get("external"):
            values[name] = None
            plan.warnings.append(f"{plan.at(kind, name)}: external; set its value on the services that use it before deploying.")
            continue
        if "file" in body:
            path = context.path(body["file"], plan.at(kind, name, "file"))
            if path is None:
                plan.refuse((kind, name, "file"), f"{body['file']} cannot be read from pasted text; upload the project folder as an archive, or set the value on the service.")
                values[name] = None
                continue
            try:
                with open(path, encoding="utf-8") as handle:
                    values[name] = handle.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise ComposeError(f"{context.filename}: {plan.at(kind, name, 'file')}: {body['file']} cannot be read ({getattr(exc, 'strerror', None) or exc}).") from None
        elif "environment" in body:
            variable = str(body["environment"])
            if variable not in variables:
                raise ComposeError(f"{context.filename}: {plan.at(kind, name, 'environment')}: variable {variable} is not set.")
            values[name] = variables[variable]
        elif kind == "configs" and "content" in body:
            values[name] = str(body["content"])
        else:
            plan.refuse((kind, name), "needs `file`, `environment`" + (" or `content`" if kind == "configs" else "") + "; not imported")
            values[name] = None
        for key in body:
            if key not in ("file", "environment", "external", "content", "name"):
                plan.refuse((kind, name, key), "not supported")
    return values


def _extended(plan, filename, services, name, body, seen=()):
    """The service with a same-file `extends: {service: base}` merged in (the service wins)."""
    extends = body.get("extends") if isinstance(body, dict) else None
    if not extends:
        return body
    base_name = extends if isinstance(extends, str) else (extends or {}).get("service")
    if isinstance(extends, dict) and extends.get("file"):
        raise ComposeError(f"{filename}: {plan.at('services', name, 'extends', 'file')}: extending a service of another file is not supported; copy it into this file.")
    if base_name not in services:
        raise ComposeError(f"{filename}: {plan.at('services', name, 'extends')}: no service {base_name!r} to extend.")
    if base_name in seen:
        raise ComposeError(f"{filename}: {plan.at('services', name, 'extends')}: extends forms a cycle ({' -> '.join([*seen, base_name])}).")
    base = _extended(plan, filename, services, base_name, services[base_name] or {}, (*seen, name))
    merged = _merge(base, {k: v for k, v in body.items() if k != "extends"})
    merged.pop("extends", None)
    for key in ("depends_on", "volumes_from", "links"):  # compose does not inherit these
        if key not in body:
            merged.pop(key, None)
    return merged


def _merge(base, override):
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        elif isinstance(value, list) and isinstance(result.get(key), list) and key in ("ports", "expose", "volumes", "secrets", "configs"):
            result[key] = [*result[key], *[item for item in value if item not in result[key]]]
        else:
            result[key] = value
    return result


def _service(plan, context, name, body, declared_volumes, secret_values):
    filename = context.filename
    if not DNS_LABEL.match(name):
        raise ComposeError(f"{filename}: {plan.at('services', name)}: service names must be lower-case letters, digits and dashes.")
    notes = []
    for key in body:
        if key not in SERVICE_KEYS:
            plan.refuse(("services", name, key), f"not supported{' (' + HINTS[key] + ')' if key in HINTS else ''}")
    spec, archive = {}, b""
    built = _build(plan, context, name, body) if "build" in body else None
    if built is None and "image" not in body:
        return None
    if built is not None:
        spec["build"], archive, repository = built
        spec["image"], spec["tag"] = repository, image_tag(spec["build"]["context"], spec["build"]["dockerfile"], spec["build"]["args"], spec["build"]["target"])
        notes.append(f"built from source on the engine at deploy, tagged {spec['tag']} (changes with the sources)")
    else:
        spec["image"], spec["tag"] = split_image(str(body["image"]))
    if body.get("command") is not None:
        command = body["command"]
        spec["command"] = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
    env = {}
    for index, env_file in enumerate(as_list(body.get("env_file"))):
        path = env_file if isinstance(env_file, str) else (env_file or {}).get("path", "")
        full = context.path(path, plan.at("services", name, "env_file", index))
        if full is None:
            plan.refuse(("services", name, "env_file", index), f"{path} cannot be read from pasted text; add its variables to the environment instead.")
            continue
        if not os.path.exists(full):
            if isinstance(env_file, dict) and env_file.get("required") is False:
                continue
            raise ComposeError(f"{filename}: {plan.at('services', name, 'env_file')}: {path} does not exist.")
        env.update(read_env_file(full))
    env.update(key_values(body.get("environment")))
    secrets = {
        key: value for key, value in env.items()
        if (SECRET_NAME.search(key) and not _is_file_pointer(key, value))
        or URL_WITH_PASSWORD.search(value) or any(secret and secret in value for secret in secret_values)
    }
    for key in secrets:
        env.pop(key)
    spec["secrets"] = [{"name": key, "env": key} for key in sorted(secrets)]
    if secrets:
        notes.append(f"kept as encrypted secrets: {', '.join(sorted(secrets))}")
    for index, item in enumerate(as_list(body.get("secrets"))):
        use = _file_use(plan, context, "secrets", name, index, item, context.secrets, "/run/secrets/")
        if use:
            if use[0] in secrets:
                raise ComposeError(f"{filename}: {plan.at('services', name, 'secrets', index)}: the secret {use[0]} has the name of an environment variable of the service; rename one of them.")
            secrets[use[0]] = use[1]
            spec["secrets"].append({"name": use[0], "path": use[2], "env": None})
    config_files = []
    for index, item in enumerate(as_list(body.get("configs"))):
        use = _file_use(plan, context, "configs", name, index, item, context.configs, "/")
        if use and use[1] is not None:
            config_files.append({"path": use[2], "content": use[1], "mode": use[3] or "0444"})
    if config_files:
        spec["config_files"] = config_files
    spec["env"] = env
    spec["ports"] = [_port(plan, plan.at("services", name, "ports", index), item) for index, item in enumerate(as_list(body.get("ports")))]
    spec["ports"] = [port for port in spec["ports"] if port]
    if body.get("expose"):
        exposed = ", ".join(str(item) for item in as_list(body["expose"]))
        notes.append(f"expose {exposed}: reachable by the project's other services on the project network (not published on the host)")
    spec["volumes"] = []
    for index, item in enumerate(as_list(body.get("volumes"))):
        volume = _volume(plan, context, name, index, item, declared_volumes)
        if volume:
            spec["volumes"].append(volume)
    if "healthcheck" in body:
        spec["health_check"] = _healthcheck(plan, name, body["healthcheck"] or {})
    restart = body.get("restart")
    if restart:
        spec["restart_policy"] = "on-failure" if str(restart).startswith("on-failure") else str(restart)
    labels = key_values(body.get("labels"))
    deploy = body.get("deploy") or {}
    for key in deploy:
        if key not in DEPLOY_KEYS:
            plan.refuse(("services", name, "deploy", key), "not supported")
    if deploy.get("mode") not in (None, "replicated"):
        plan.refuse(("services", name, "deploy", "mode"), f"{deploy['mode']} is not supported (replicated only)")
    if "replicas" in deploy:
        spec["replicas"] = int(deploy["replicas"])
    spec["resources"] = _resources(plan, name, deploy.get("resources") or {})
    update = deploy.get("update_config") or {}
    for key in update:
        if key not in UPDATE_KEYS:
            plan.refuse(("services", name, "deploy", "update_config", key), "not supported")
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
            plan.refuse(("services", name, "deploy", "restart_policy", key), "not supported")
    labels.update(key_values(deploy.get("labels")))
    spec["labels"] = labels
    depends = body.get("depends_on") or []
    spec["depends_on"] = list(depends.keys()) if isinstance(depends, dict) else [str(item) for item in depends]
    if isinstance(depends, dict):
        for other, options in depends.items():
            condition = (options or {}).get("condition")
            if condition == "service_healthy":
                notes.append(f"deployed after {other} is healthy")
            elif condition == "service_completed_successfully":
                plan.refuse(("services", name, "depends_on", other, "condition"), "service_completed_successfully is not supported (the panel deploys long-running services; it waits for them to run, not to exit)")
    if body.get("networks"):
        networks = body["networks"]
        names = networks if isinstance(networks, list) else list(networks)
        notes.append(f"networks {', '.join(map(str, names))}: joins the project network")
        if isinstance(networks, dict):
            for network, options in networks.items():
                for key, value in (options or {}).items():
                    if key == "aliases":
                        plan.refuse(("services", name, "networks", network, key), f"{', '.join(map(str, value or []))} not supported (other services reach it by its service name, {name})")
                    else:
                        plan.refuse(("services", name, "networks", network, key), f"{value} is not supported{' (' + HINTS[key] + ')' if key in HINTS else ''}")
    try:
        normalized = normalize_spec(spec)
    except ValidationError as exc:
        raise ComposeError(f"{filename}: {plan.at('services', name)}: {_flatten(exc.detail)}") from None
    return ImportedService(name=name, spec=normalized, secrets=secrets, notes=notes, build_archive=archive)


def _is_file_pointer(key, value):
    """`POSTGRES_PASSWORD_FILE=/run/secrets/db`: names where the secret is, is not one."""
    return key.upper().endswith("_FILE") and value.startswith("/")


def _build(plan, context, name, body):
    """(build spec, context archive, image repository) of a `build:`; None when it cannot be read."""
    build = body["build"]
    if isinstance(build, str):
        build = {"context": build}
    build = dict(build or {})
    for key in build:
        if key not in BUILD_KEYS:
            plan.refuse(("services", name, "build", key), "not supported")
    source = str(build.get("context") or ".")
    if re.match(r"^[a-z][a-z0-9+.-]*://|^git@", source):
        raise ComposeError(f"{context.filename}: {plan.at('services', name, 'build', 'context')}: {source} is a remote context; the panel builds from a folder of the project.")
    directory = context.path(source, plan.at("services", name, "build"))
    if directory is None:
        if "image" in body:
            plan.refuse(("services", name, "build"), f"the build context cannot be read from pasted text; the image {body['image']} is deployed as it is (upload the project folder as an archive to build it)")
        else:
            context.unreadable_builds.append(plan.at("services", name, "build"))
        return None
    dockerfile = str(build.get("dockerfile") or "Dockerfile")
    where = plan.at("services", name, "build")
    if build.get("dockerfile_inline"):
        raise ComposeError(f"{context.filename}: {where}: dockerfile_inline is not supported; write the Dockerfile into the context.")
    dockerfile_path = os.path.realpath(os.path.join(directory, dockerfile))
    if not (dockerfile_path.startswith(os.path.realpath(directory) + os.sep)):
        raise ComposeError(f"{context.filename}: {where}: the Dockerfile {dockerfile} is outside the build context {source}; move it inside.")
    if not os.path.isdir(directory):
        raise ComposeError(f"{context.filename}: {where}: the build context {source} is not a folder of the project.")
    if not os.path.isfile(dockerfile_path):
        raise ComposeError(f"{context.filename}: {where}: there is no {dockerfile} in the build context {source}.")
    try:
        archive, digest = context_archive(directory, dockerfile=dockerfile)
    except ArchiveError as exc:
        raise ComposeError(f"{context.filename}: {where}: {exc}.") from None
    args = build.get("args") or {}
    # An argument without a value is passed empty, as docker-compose does (its `config` says '').
    args = key_values(args) if isinstance(args, (dict, list)) else {}
    if "image" in body:
        repository, _tag = split_image(str(body["image"]))
    else:
        repository = f"filrouge/{plan.project}-{name}"
    if context.registry and not _registry_host(repository):
        repository = f"{context.registry.rstrip('/')}/{repository}"
    spec = {"context": digest, "dockerfile": dockerfile.replace(os.sep, "/"), "args": args, "target": str(build.get("target") or "")}
    return spec, archive, repository


def _registry_host(repository):
    first = repository.split("/", 1)[0]
    return "/" in repository and ("." in first or ":" in first or first == "localhost")


def _file_use(plan, context, kind, name, index, item, values, default_dir):
    """(name, value, path in the container, mode) of a service's secret/config reference."""
    if isinstance(item, dict):
        source, target, mode = str(item.get("source", "")), item.get("target"), item.get("mode")
        for key in item:
            if key not in ("source", "target", "mode", "uid", "gid"):
                plan.refuse(("services", name, kind, index, key), "not supported")
        if "uid" in item or "gid" in item:
            plan.refuse(("services", name, kind, index, "uid"), "the file belongs to root (uid/gid are not supported)")
    else:
        source, target, mode = str(item), None, None
    if source not in values:
        raise ComposeError(f"{context.filename}: {plan.at('services', name, kind, index)}: service {name} uses an undefined {kind[:-1]} {source!r}; define it under the top-level `{kind}:`.")
    path = str(target or source)
    if not path.startswith("/"):
        path = default_dir + path
    mode_text = (format(mode, "04o") if isinstance(mode, int) else str(mode)) if mode is not None else None
    if kind == "secrets" and mode is not None:
        plan.refuse(("services", name, kind, index, "mode"), "not supported (secret files are read-only for root, mode 0400)")
    if kind == "secrets" and not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", source):
        raise ComposeError(f"{context.filename}: {plan.at('services', name, kind, index)}: secret names are letters, digits, '_', '.' and '-'.")
    if values[source] is None and kind == "secrets":
        return source, None, path, mode_text
    return source, values[source], path, mode_text


def split_image(reference):
    """("registry:5000/app/web", "1.4") from "registry:5000/app/web:1.4"; tag "latest" when absent."""
    reference = reference.split("@", 1)[0]
    name, _, tag = reference.rpartition(":")
    if name and "/" not in tag:
        return name, tag
    return reference, "latest"


def as_list(value):
    """None as [], a single value as a one-item list, a list as itself (compose's "string or list")."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def key_values(value):
    """A compose "list or mapping" of strings (environment, labels, build args) as a dict of
    strings: `["A=1", "B"]` and `{A: 1, B: null}` both give {"A": "1", "B": ""}; booleans are
    written as compose writes them ("true", "false")."""
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
            plan.unsupported.append(f"{where}: {item} has no target")
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
        plan.unsupported.append(f"{where}: {item} (port ranges and IPv6 short syntax are not supported; use the long syntax)")
        return None
    host_ip, published, container = ("0.0.0.0", None, parts[-1])
    if len(parts) == 2:
        published = parts[0]
    elif len(parts) == 3:
        host_ip, published = parts[0] or "0.0.0.0", parts[1]
    return {"container": int(container), "published": int(published) if published else None, "protocol": protocol, "host_ip": host_ip, "mode": "ingress"}


def _volume(plan, context, name, index, item, declared):
    path = ("services", name, "volumes", index)
    if isinstance(item, dict):
        kind = item.get("type") or "volume"
        source, target, read_only = str(item.get("source") or ""), str(item.get("target") or ""), bool(item.get("read_only"))
        if kind not in ("volume", "bind"):
            plan.refuse(path, f"type {kind} is not supported")
            return None
        for key in item:
            if key not in ("type", "source", "target", "read_only", "volume", "bind"):
                plan.refuse((*path, key), "not supported")
    else:
        parts = str(item).split(":")
        if len(parts) == 1:
            source, target, read_only = "", parts[0], False
        else:
            source, target = parts[0], parts[1]
            read_only = len(parts) > 2 and "ro" in parts[2].split(",")
    if not source:
        # An anonymous volume: compose keeps it across container re-creation, a named volume does the same.
        source = f"{name}-" + (re.sub(r"[^a-z0-9]+", "-", target.lower()).strip("-") or "data")
        plan.notes.append(f"{plan.at(*path)}: the anonymous volume at {target} is kept as the named volume {source} of the project.")
        return {"source": source, "target": target, "read_only": read_only}
    if source.startswith((".", "~")):
        if context.base_dir is None:
            plan.refuse(path, f"{source} is a path relative to the compose file; give an absolute path or a named volume")
            return None
        if context.confine:
            plan.refuse(path, f"{source} is a folder of the upload, which the engine cannot see; use a named volume, a config (configs:) or COPY it in the image")
            return None
        source = os.path.normpath(os.path.join(os.path.abspath(context.base_dir), os.path.expanduser(source)))
    if not source.startswith("/") and source not in declared:
        plan.warnings.append(f"{plan.at(*path)}: {source} is not declared under the top-level volumes; it is created as a named volume.")
    return {"source": source, "target": target, "read_only": read_only}


def _healthcheck(plan, name, body):
    if body.get("disable") or body.get("test") in (["NONE"], "NONE"):
        plan.notes.append(f"{plan.at('services', name, 'healthcheck')}: disabled in the file; the image's own health check (if any) is kept.")
        return {"type": "none"}
    test = body.get("test")
    if isinstance(test, str):
        command = [test]
    elif isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL"):
        command = [" ".join(test[1:])] if test[0] == "CMD-SHELL" else [str(part) for part in test[1:]]
    else:
        plan.refuse(("services", name, "healthcheck", "test"), f"{test!r} is not a CMD or CMD-SHELL test")
        return {"type": "none"}
    check = {"type": "command", "command": command}
    for key in ("interval", "timeout", "start_period"):
        if key in body:
            check[key] = duration_seconds(body[key])
    if "retries" in body:
        check["retries"] = int(body["retries"])
    return check


def _resources(plan, name, body):
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
                plan.refuse(("services", name, "deploy", "resources", section, key), "not supported")
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


def check_target(plan, cluster):
    """Warn, before anything is saved, about what the target cluster will refuse at deploy;
    what it cannot run at all (host ports, see `target_problems`) goes in `plan.problems`,
    and the import is then refused."""
    plan.problems = target_problems(plan, cluster.kind)
    if cluster.kind == "swarm":
        local = [item.name for item in plan.services if item.spec.get("build") and not _registry_host(item.spec["image"])]
        if local:
            plan.warnings.append(
                f"{', '.join(local)}: built from source, but Swarm nodes run images from a registry; give a registry "
                "(and a registry credential) or the deploy will be refused."
            )
    if cluster.kind == "kubernetes" and any(item.spec.get("build") for item in plan.services):
        plan.warnings.append("services built from source are built on Docker and Swarm clusters only.")
    return plan


# ---- saving ------------------------------------------------------------------------------

def apply_plan(plan, cluster, user=None, registry_credential=None):
    """Create or update the project's Services from the plan; return them (nothing is deployed).

    Services built from source get their build context stored (encrypted) and, when given,
    `registry_credential` to push and pull their image; other services keep theirs (a
    private registry's login is never sent to another registry)."""
    from django.db import transaction

    from .builds import store_context
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
            current.update({key: value for key, value in item.secrets.items() if value is not None})
            service.set_secrets(current)
            if item.spec.get("build") and registry_credential is not None:
                service.registry_credential = registry_credential
            service.save()
            if item.spec.get("build"):
                store_context(service, item.spec["build"]["context"], item.build_archive)
            saved.append(service)
    return saved
