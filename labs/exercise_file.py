"""Exercise files: one YAML file per exercise (format in docs/teacher-guide.md).

`parse_exercise(text, filename)` returns a validated dict or raises ExerciseFileError
naming the file, line and column of the first problem: a YAML syntax error, an unknown
key, a bad target or ttl, an unknown check type, an unknown or missing check parameter.
Locations come from the YAML node tree, so an error points at the offending key or value,
not at the top of the file.

`render_instructions(markdown_text)` turns the instructions into HTML that is safe to show:
raw HTML written by a teacher is escaped, then the result is sanitised once more.
`exercise_to_yaml(exercise)` exports an Exercise back to its file.
"""

import re
from datetime import timedelta

import yaml
from django.utils.translation import gettext as _

from panel.lib import safe_yaml

from .checks import load_all
from .checks.base import SCHEMAS

TARGETS = ("docker", "kubernetes", "ssh")
TOP_KEYS = {"slug", "title", "target", "ttl", "quota", "start", "instructions", "checks"}
REQUIRED_KEYS = ("slug", "title", "target")
CHECK_KEYS = {"name", "type", "points", "hint", "params"}
QUOTA_KEYS = {
    "docker": {"cpu", "memory", "ports"},
    "kubernetes": {"cpu", "memory", "pods"},
    "ssh": {"cpu", "memory"},
}
START_KEYS = {
    # compose: a compose file (text) run at start, guarded like a student's; images: lab images
    # to build or pull first; registries/registry: where the student may pull images from.
    "docker": {"ports", "compose", "images", "registries", "registry"},
    # `manifests`: objects created in the namespace before the student starts (a ConfigMap...);
    # `workspace`: false leaves out the workspace pod (the terminal with kubectl); true by default.
    "kubernetes": {"manifests", "workspace"},
    "ssh": {"image", "user", "sudo"},
}
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
PORT_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
TTL_RE = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
MEMORY_RE = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|k|M|G)?$")
MAX_TTL = timedelta(days=7)
TTL_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
TYPE_NAMES = {"str": str, "int": int, "float": (int, float), "number": (int, float), "bool": bool, "list": list, "dict": dict}


class ExerciseFileError(ValueError):
    """A broken exercise file: `str()` is "file, line L, column C: message"."""

    def __init__(self, filename, line, column, message):
        self.filename, self.line, self.column, self.message = filename, line, column, message
        where = filename or _("exercise file")
        if line:
            where = _("%(file)s, line %(line)s, column %(column)s") % {"file": where, "line": line, "column": column}
        super().__init__(f"{where}: {message}")


class ExerciseFileProblems(ExerciseFileError):
    """Several problems of one file (or of several files): `problems` lists each, in file
    order; `str()` is one "file, line L, column C: message" per line."""

    def __init__(self, problems):
        flat = []
        for problem in problems:
            flat += getattr(problem, "problems", [problem])
        self.problems = flat
        first = flat[0]
        ValueError.__init__(self, "\n".join(str(problem) for problem in flat))
        self.filename, self.line, self.column, self.message = first.filename, first.line, first.column, first.message


def parse_ttl(value):
    """"30m" / "2h" / "1d" -> timedelta; ValueError with a readable reason otherwise."""
    match = TTL_RE.match(str(value)) if isinstance(value, str) else None
    if not match:
        raise ValueError(_("ttl must look like 30m, 2h or 1d, not %(value)r.") % {"value": value})
    amount = int(match.group(1))
    ttl = timedelta(**{TTL_UNITS[match.group(2)]: amount})
    if ttl <= timedelta(0):
        raise ValueError(_("ttl must be longer than zero."))
    if ttl > MAX_TTL:
        raise ValueError(_("ttl %(value)s is longer than the 7d maximum.") % {"value": value})
    return ttl


def format_ttl(ttl):
    minutes = int(ttl.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


class _Located:
    """The YAML node tree of a file, to find the line and column of a key or value."""

    def __init__(self, filename, root):
        self.filename = filename
        self.root = root

    def node(self, *path):
        node = self.root
        for step in path:
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if key.value == step:
                        node = value
                        break
                else:
                    return node
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
                node = node.value[step]
            else:
                return node
        return node

    def key_node(self, *path):
        """The node of the key itself (for "unknown key" errors), else the value's node."""
        parent = self.node(*path[:-1])
        if isinstance(parent, yaml.MappingNode):
            for key, _value in parent.value:
                if key.value == path[-1]:
                    return key
        return self.node(*path)

    def error(self, path, message, key=False):
        node = (self.key_node(*path) if key else self.node(*path)) if path else self.root
        mark = node.start_mark if node is not None else None
        return ExerciseFileError(self.filename, mark.line + 1 if mark else 0, mark.column + 1 if mark else 0, message)


def load_yaml(text, filename):
    """(data, located) for one YAML document; ExerciseFileError on a syntax error."""
    try:
        root = safe_yaml.compose(text)
        data = safe_yaml.load(text)
    except yaml.composer.ComposerError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ExerciseFileError(filename, mark.line + 1, mark.column + 1, _("one document per file, please (%(problem)s).") % {"problem": exc.problem}) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = f"{exc.context + ', ' if exc.context else ''}{exc.problem}"
        raise ExerciseFileError(filename, mark.line + 1 if mark else 0, mark.column + 1 if mark else 0, _("YAML error: %(problem)s") % {"problem": problem}) from None
    except yaml.YAMLError as exc:
        raise ExerciseFileError(filename, 0, 0, _("YAML error: %(problem)s") % {"problem": exc}) from None
    return data, _Located(filename, root)


def _expected_types(kind):
    if isinstance(kind, str):
        kind = TYPE_NAMES.get(kind, object)
    return kind if isinstance(kind, tuple) else (kind,)


def _type_ok(value, kind):
    types = _expected_types(kind)
    if object in types:
        return True
    if isinstance(value, bool) and bool not in types:
        return False  # YAML's `true` is not a number of points or a port
    return isinstance(value, types)


def _type_label(kind):
    return " or ".join(getattr(t, "__name__", str(t)) for t in _expected_types(kind))


def _check_mapping(loc, value, path, what):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise loc.error(path, _("%(what)s must be a mapping (key: value).") % {"what": what})
    return value


def _validate_quota(loc, quota, target):
    quota = _check_mapping(loc, quota, ("quota",), "quota")
    for key, value in quota.items():
        if key not in QUOTA_KEYS[target]:
            raise loc.error(("quota", key), _("unknown quota %(key)r for a %(target)s exercise; use %(known)s.") % {"key": key, "target": target, "known": ", ".join(sorted(QUOTA_KEYS[target]))}, key=True)
        if key == "cpu" and not (_type_ok(value, (int, float)) and 0 < value <= 64):
            raise loc.error(("quota", key), _("cpu must be a number of cores between 0 and 64, like 0.5."))
        if key == "memory" and not (isinstance(value, (str, int)) and not isinstance(value, bool) and MEMORY_RE.match(str(value))):
            raise loc.error(("quota", key), _("memory must look like 512Mi or 2Gi."))
        if key in ("ports", "pods") and not (_type_ok(value, int) and 0 <= value <= 100):
            raise loc.error(("quota", key), _("%(key)s must be a whole number between 0 and 100.") % {"key": key})
    return quota


def _validate_start(loc, start, target):
    start = _check_mapping(loc, start, ("start",), "start")
    for key, value in start.items():
        if key not in START_KEYS[target]:
            raise loc.error(("start", key), _("unknown start key %(key)r for a %(target)s exercise; use %(known)s.") % {"key": key, "target": target, "known": ", ".join(sorted(START_KEYS[target]))}, key=True)
    if target == "docker":
        ports = start.get("ports", [])
        if not isinstance(ports, list):
            raise loc.error(("start", "ports"), _("start.ports must be a list of port names, like [web, api]."))
        for index, name in enumerate(ports):
            if not (isinstance(name, str) and PORT_NAME_RE.match(name)):
                raise loc.error(("start", "ports", index), _("a port name is lowercase letters, digits and dashes, like web."))
        if len(set(ports)) != len(ports):
            raise loc.error(("start", "ports"), _("port names must be unique."))
        if "compose" in start and not isinstance(start["compose"], str):
            raise loc.error(("start", "compose"), _("start.compose is a compose file as text (use `compose: |`)."))
        for key in ("images", "registries"):
            if key in start and not (isinstance(start[key], list) and all(isinstance(item, str) for item in start[key])):
                raise loc.error(("start", key), _("start.%(key)s must be a list of names.") % {"key": key})
        if "registry" in start and not isinstance(start["registry"], str):
            raise loc.error(("start", "registry"), _("start.registry must be a registry host name."))
    if target == "ssh":
        for key in ("image", "user"):
            if key in start and not (isinstance(start[key], str) and re.match(r"^[a-z0-9][a-z0-9._/:-]*$", start[key])):
                raise loc.error(("start", key), _("%(key)s must be a plain name.") % {"key": key})
        if "sudo" in start and not isinstance(start["sudo"], bool):
            raise loc.error(("start", "sudo"), _("sudo must be true or false."))
    if target == "kubernetes" and "workspace" in start and not isinstance(start["workspace"], bool):
        raise loc.error(("start", "workspace"), _("workspace must be true or false."))
    if target == "kubernetes" and "manifests" in start:
        manifests = start["manifests"]
        if not isinstance(manifests, list) or not all(isinstance(m, dict) and m.get("kind") and m.get("apiVersion") for m in manifests):
            raise loc.error(("start", "manifests"), _("start.manifests must be a list of Kubernetes objects, each with apiVersion and kind."))
    return start


def _validate_check(loc, index, check, data):
    path = ("checks", index)
    if not isinstance(check, dict):
        raise loc.error(path, _("each check is a mapping with name, type, points, hint and params."))
    for key in check:
        if key not in CHECK_KEYS:
            raise loc.error((*path, key), _("unknown check key %(key)r; use %(known)s.") % {"key": key, "known": ", ".join(sorted(CHECK_KEYS))}, key=True)
    for key in ("name", "type"):
        if not isinstance(check.get(key), str) or not check[key].strip():
            raise loc.error(path if key not in check else (*path, key), _("the check needs a %(key)s.") % {"key": key})
    check_type = check["type"]
    if check_type not in SCHEMAS:
        known = ", ".join(sorted(SCHEMAS)) or _("none installed")
        raise loc.error((*path, "type"), _("unknown check type %(type)r; known types: %(known)s.") % {"type": check_type, "known": known})
    points = check.get("points", 1)
    if not (_type_ok(points, int) and 0 <= points <= 1000):
        raise loc.error((*path, "points"), _("points must be a whole number between 0 and 1000."))
    hint = check.get("hint", "")
    if hint is not None and not isinstance(hint, str):
        raise loc.error((*path, "hint"), _("hint must be text."))
    params = _check_mapping(loc, check.get("params"), (*path, "params"), "params")
    schema = SCHEMAS[check_type]
    for name, value in params.items():
        if name not in schema:
            known = ", ".join(sorted(schema)) or _("none")
            raise loc.error((*path, "params", name), _("unknown parameter %(name)r for a %(type)s check; it takes: %(known)s.") % {"name": name, "type": check_type, "known": known}, key=True)
        kind = schema[name][0] if isinstance(schema[name], (tuple, list)) else schema[name]
        if not _type_ok(value, kind):
            raise loc.error((*path, "params", name), _("parameter %(name)r must be %(kind)s.") % {"name": name, "kind": _type_label(kind)})
    for name, spec in schema.items():
        required = spec[1] if isinstance(spec, (tuple, list)) and len(spec) > 1 else False
        if required and name not in params:
            where = (*path, "params") if "params" in check else (*path, "type")
            raise loc.error(where, _("a %(type)s check needs the parameter %(name)r.") % {"type": check_type, "name": name})
    # A port named by a Docker check must be one the exercise allocates.
    port = params.get("port")
    if data["target"] == "docker" and isinstance(port, str) and port not in data["start"].get("ports", []):
        raise loc.error((*path, "params", "port"), _("port %(port)r is not allocated; add it to start.ports.") % {"port": port})
    return {"name": check["name"].strip(), "type": check_type, "points": points, "hint": (hint or "").strip(), "params": params}


def parse_exercise(text, filename="exercise.yaml"):
    """Validate one exercise file; return {slug, title, target, ttl (timedelta), quota, start, instructions, checks, source}.

    Every problem of the file is reported at once (ExerciseFileProblems, each with its
    line), not only the first: a teacher fixes a file in one go."""
    load_all()
    data, loc = load_yaml(text, filename)
    if not isinstance(data, dict):
        raise loc.error((), _("an exercise file is a mapping with slug, title, target, ttl, quota, start, instructions and checks."))
    problems = []

    def checked(function, *args):
        try:
            return function(*args)
        except ExerciseFileError as exc:
            problems.append(exc)
            return None

    for key in data:
        if key not in TOP_KEYS:
            problems.append(loc.error((key,), _("unknown key %(key)r; an exercise has %(known)s.") % {"key": key, "known": ", ".join(sorted(TOP_KEYS))}, key=True))
    for key in REQUIRED_KEYS:
        if key not in data:
            problems.append(loc.error((), _("the exercise needs a %(key)r.") % {"key": key}))
    if "slug" in data and not (isinstance(data["slug"], str) and SLUG_RE.match(data["slug"])):
        problems.append(loc.error(("slug",), _("slug must be lowercase letters, digits and dashes, like compose-two-tier.")))
    if "title" in data and (not isinstance(data["title"], str) or not data["title"].strip()):
        problems.append(loc.error(("title",), _("title must be text.")))
    target = data.get("target")
    if "target" in data and target not in TARGETS:
        problems.append(loc.error(("target",), _("target must be one of %(known)s, not %(value)r.") % {"known": ", ".join(TARGETS), "value": target}))
        target = None
    ttl = None
    try:
        ttl = parse_ttl(data.get("ttl", "2h"))
    except ValueError as exc:
        problems.append(loc.error(("ttl",), str(exc)))
    instructions = data.get("instructions") or ""
    if not isinstance(instructions, str):
        problems.append(loc.error(("instructions",), _("instructions must be Markdown text.")))
    result = {
        "slug": data.get("slug"),
        "title": data["title"].strip() if isinstance(data.get("title"), str) else data.get("title"),
        "target": target,
        "ttl": ttl,
        "quota": checked(_validate_quota, loc, data.get("quota"), target) if target else None,
        "start": checked(_validate_start, loc, data.get("start"), target) if target else None,
        "instructions": instructions,
        "source": text,
    }
    checks = data.get("checks") or []
    if not isinstance(checks, list):
        problems.append(loc.error(("checks",), _("checks must be a list.")))
        checks = []
    result["checks"] = []
    if target and result["start"] is not None:  # checks are read against the target and the start ports
        result["checks"] = [check for check in (checked(_validate_check, loc, index, check, result) for index, check in enumerate(checks)) if check]
    seen = set()
    for index, check in enumerate(result["checks"]):
        if check["name"] in seen:
            problems.append(loc.error(("checks", index, "name"), _("two checks are named %(name)r; names must be unique.") % {"name": check["name"]}))
        seen.add(check["name"])
    if problems:
        raise problems[0] if len(problems) == 1 else ExerciseFileProblems(problems)
    return result


def exercise_fields(parsed):
    """The Exercise model fields of a parsed file."""
    return {key: parsed[key] for key in ("title", "target", "ttl", "quota", "start", "instructions", "checks", "source")}


def exercise_to_dict(exercise):
    data = {"slug": exercise.slug, "title": exercise.title, "target": exercise.target, "ttl": format_ttl(exercise.ttl)}
    if exercise.quota:
        data["quota"] = exercise.quota
    data["start"] = exercise.start or {}
    if exercise.instructions:
        data["instructions"] = exercise.instructions
    data["checks"] = [
        {key: check[key] for key in ("name", "type", "points", "hint", "params") if check.get(key) not in (None, "")}
        for check in exercise.checks
    ]
    return data


def exercise_to_yaml(exercise):
    """The exercise as a file: the one it was loaded from, or one written from its fields."""
    if exercise.source:
        return exercise.source
    return yaml.safe_dump(exercise_to_dict(exercise), sort_keys=False, allow_unicode=True, default_flow_style=False)


def render_instructions(text):
    """Markdown to HTML that is safe to mark safe: raw HTML is shown as text, links are sanitised."""
    import markdown
    import nh3

    md = markdown.Markdown(extensions=["fenced_code", "tables", "sane_lists"])
    # Teachers' raw HTML is displayed, never interpreted.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    html = md.convert(text or "")
    return nh3.clean(html, url_schemes={"http", "https", "mailto"})
