"""Recipe modules: the common Ansible modules and their main parameters, on our SSH driver.

Each module reads the current state with one command, decides locally what must change,
and sends only that (usually one more command), or says why nothing changes. In check
mode it stops after deciding. Every value that reaches a shell goes through
shlex.quote: parameters are data, never shell code (only `shell` runs shell code, by
definition, and `command` runs its words without a shell's interpretation).
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import re
import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from clusters.inventory.facts import FACTS_COMMAND, parse_facts

CONTENT_LIMIT = 512 * 1024  # larger files are compared by checksum only, without a diff
DIFF_LINES = 120

q = shlex.quote


class ModuleSpecError(ValueError):
    def __init__(self, message, param=None, unknown_param=False):
        super().__init__(message)
        self.param = param
        # A parameter the native module lacks: Ansible's module may have it, so ansible-runner runs the task.
        self.unknown_param = unknown_param


class TaskFailed(Exception):
    """A module's own refusal (file missing, command failed); the host's task fails with this message."""


@dataclass
class TaskResult:
    status: str  # ok, changed, failed, skipped
    message: str = ""
    diff: str = ""
    data: dict = field(default_factory=dict)


@dataclass
class P:
    required: bool = False
    aliases: tuple = ()
    choices: tuple | None = None
    type: str = "str"  # str, bool, int, list, mode, raw, dict
    default: object = None


def _templated(value):
    return isinstance(value, str) and ("{{" in value or "{%" in value)


TRUE_WORDS = ("yes", "true", "on", "1", "y")
FALSE_WORDS = ("no", "false", "off", "0", "n", "")


def to_bool(value, name="value"):
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise TaskFailed(f"{name} must be yes or no, not {value!r}")


def to_mode(value, name="mode"):
    """Octal modes: "0755", "755" or YAML's 0755 (read as the integer 493)."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if re.fullmatch(r"0?[0-7]{3,4}", text):
        return int(text, 8)
    raise TaskFailed(f"{name} must be an octal mode such as '0644', not {value!r}")


def to_list(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return [item.strip() for item in str(value).split(",") if item.strip()]


class Module(ABC):
    name = ""
    aliases = ()
    free_form = False
    raw_params_ok = False  # `module: some words` kept as _raw_params instead of key=value pairs
    params: dict = {}
    description = ""

    def check_args(self, args, marks=None):
        """Canonical parameter names, and early refusal of what can be refused without a host."""
        names = {}
        for canonical, spec in self.params.items():
            names[canonical] = canonical
            for alias in spec.aliases:
                names[alias] = canonical
        cleaned = {}
        for key, value in args.items():
            if key == "_raw_params" and self.free_form:
                cleaned[key] = value
                continue
            if key not in names:
                if not self.params:
                    raise ModuleSpecError(f"unsupported parameter {key!r}: {self.name} takes no parameters.", param=key)
                known = ", ".join(sorted(self.params))
                raise ModuleSpecError(f"unsupported parameter {key!r}. Supported: {known}.", param=key, unknown_param=True)
            cleaned[names[key]] = value
        for canonical, spec in self.params.items():
            value = cleaned.get(canonical)
            if spec.required and value is None and not (self.free_form and "_raw_params" in cleaned):
                raise ModuleSpecError(f"parameter {canonical!r} is required.")
            if value is None or _templated(value):
                continue
            if spec.choices and str(value if not isinstance(value, bool) else str(value).lower()) not in spec.choices:
                original = next((key for key in args if names.get(key) == canonical), canonical)
                raise ModuleSpecError(f"{canonical} must be one of {', '.join(spec.choices)}, not {value!r}.", param=original)
            try:
                if spec.type == "bool":
                    to_bool(value, canonical)
                elif spec.type == "mode":
                    to_mode(value, canonical)
                elif spec.type == "int":
                    int(value)
            except (TaskFailed, ValueError) as exc:
                original = next((key for key in args if names.get(key) == canonical), canonical)
                raise ModuleSpecError(str(exc), param=original) from None
        self.validate(cleaned)
        return cleaned

    def validate(self, args):
        """Further checks of parameter combinations (raise ModuleSpecError)."""

    def typed(self, args):
        """Defaults and types, after templating."""
        out = {}
        for canonical, spec in self.params.items():
            value = args.get(canonical, spec.default)
            if value is None:
                out[canonical] = None
                continue
            if spec.type == "bool":
                value = to_bool(value, canonical)
            elif spec.type == "mode":
                value = to_mode(value, canonical)
            elif spec.type == "int":
                value = int(value)
            elif spec.type == "list":
                value = to_list(value)
            elif spec.type == "str":
                value = str(value)
            out[canonical] = value
        if "_raw_params" in args:
            out["_raw_params"] = args["_raw_params"]
        return out

    @abstractmethod
    def run(self, host, args):
        """Look, decide, change only what differs (not in check mode); return a TaskResult."""


# ---- shared building blocks ----------------------------------------------------------


# One `stat` (and `base64` for a small file): the state and content of a path in one round trip.
STAT_SCRIPT = (
    "p={path}; s=$(stat -c '%F|%a|%U|%G|%s' -- \"$p\" 2>/dev/null) || {{ echo absent; exit 0; }}; echo \"$s\"; "
    "case \"$s\" in 'symbolic link|'*) readlink -- \"$p\";; 'regular file|'*|'regular empty file|'*) "
    "if [ \"${{s##*|}}\" -le {limit} ]; then base64 -w0 -- \"$p\"; echo; else echo \"sha256:$(sha256sum -- \"$p\" | cut -d' ' -f1)\"; fi;; esac"
)

KINDS = {"regular file": "file", "regular empty file": "file", "directory": "directory", "symbolic link": "link"}


@dataclass
class FileState:
    exists: bool
    type: str = ""
    mode: int | None = None
    owner: str = ""
    group: str = ""
    size: int = 0
    content: bytes | None = None
    sha256: str = ""
    link_target: str = ""


def read_state(host, path, become=None):
    result = host.run(STAT_SCRIPT.format(path=q(path), limit=CONTENT_LIMIT), become=become)
    if not result.ok:
        raise TaskFailed(f"cannot inspect {path}: {result.output}")
    return parse_state(result.stdout)


def parse_state(output):
    lines = output.split("\n")
    if not lines or lines[0].strip() == "absent":
        return FileState(exists=False)
    kind, mode, owner, group, size = lines[0].rsplit("|", 4)
    kind = KINDS.get(kind, "other")
    state = FileState(exists=True, type=kind, mode=int(mode, 8), owner=owner, group=group, size=int(size))
    if kind == "link":
        state.link_target = lines[1] if len(lines) > 1 else ""
    elif kind == "file" and len(lines) > 1:
        payload = lines[1].strip()
        if payload.startswith("sha256:"):
            state.sha256 = payload[7:]
        else:
            state.content = base64.b64decode(payload) if payload else b""
    return state


def text_diff(old: bytes | None, new: bytes, path: str) -> str:
    try:
        old_text = (old or b"").decode()
        new_text = new.decode()
    except UnicodeDecodeError:
        return f"binary file {path} changed"
    lines = list(difflib.unified_diff(old_text.splitlines(), new_text.splitlines(), "before: " + path, "after: " + path, lineterm="", n=2))
    if len(lines) > DIFF_LINES:
        lines = lines[:DIFF_LINES] + [f"... ({len(lines) - DIFF_LINES} more diff lines)"]
    return "\n".join(lines)


def attribute_changes(state, mode, owner, group):
    changes = []
    if mode is not None and state.mode != mode:
        changes.append(("mode", f"{state.mode:04o}" if state.mode is not None else "-", f"{mode:04o}"))
    if owner and state.owner != owner:
        changes.append(("owner", state.owner or "-", owner))
    if group and state.group != group:
        changes.append(("group", state.group or "-", group))
    return changes


def describe_changes(changes):
    return ", ".join(f"{name} {old} → {new}" for name, old, new in changes)


def set_attributes(host, path, mode, owner, group, changes, follow=True):
    commands = []
    for name, _old, _new in changes:
        if name == "mode":
            commands.append(f"chmod {mode:04o} {q(path)}")
        elif name in ("owner", "group"):
            commands.append(f"chown {'' if follow else '-h '}{q((owner or '') + (':' + group if group else ''))} {q(path)}")
    if commands:
        result = host.run(" && ".join(dict.fromkeys(commands)))
        if not result.ok:
            raise TaskFailed(f"cannot set {describe_changes(changes)} on {path}: {result.output}")


def ensure_content(host, path, new: bytes, mode=None, owner=None, group=None, validate=None, state=None, backup=False):
    """Make `path` hold `new` with the given attributes. One command to look, one to change."""
    state = state or read_state(host, path)
    if state.exists and state.type != "file":
        raise TaskFailed(f"{path} exists and is a {state.type}, not a file")
    same_content = state.exists and (
        state.content == new if state.content is not None else state.sha256 == hashlib.sha256(new).hexdigest()
    )
    changes = attribute_changes(state, mode, owner, group) if state.exists else []
    if same_content and not changes:
        return TaskResult("ok", f"{path} is up to date")
    if same_content:
        if not host.check:
            set_attributes(host, path, mode, owner, group, changes)
        return TaskResult("changed", f"{path}: {describe_changes(changes)}", diff=describe_changes(changes))
    diff = text_diff(state.content if state.exists else b"", new, path) if state.content is not None or not state.exists else f"{path} changed (too large to show a diff)"
    message = f"{path} {'created' if not state.exists else 'updated'}"
    if host.check:
        return TaskResult("changed", message, diff=diff)
    if backup and state.exists:
        host.run(f"cp -p {q(path)} {q(path)}.$(date +%Y%m%d%H%M%S).bak")
    result = host.put(path, new, mode=f"{mode:04o}" if mode is not None else None, owner=owner, group=group, validate=validate)
    if not result.ok:
        if validate:
            raise TaskFailed(f"{path} was not changed: its validation ({validate}) failed: {result.output}")
        raise TaskFailed(f"cannot write {path}: {result.output}")
    return TaskResult("changed", message, diff=diff)


def read_source(host, src):
    """The bytes of a file shipped with the recipe (src relative to the recipe's folder)."""
    recipe = host.recipe
    base = recipe.base_dir
    path = Path(src).expanduser()
    if not path.is_absolute():
        folders = [Path(folder) for folder in getattr(host, "search_dirs", ()) or ()]
        if base is not None:
            folders += [Path(base) / "files", Path(base) / "templates", Path(base)]
        if not folders:
            raise TaskFailed(f"src {src!r} needs the recipe's folder; run the recipe from a file, or use inline content")
        path = next((folder / path for folder in folders if (folder / path).is_file()), folders[-1] / path)
    resolved = path.resolve()
    if not recipe.trusted_paths and (base is None or not resolved.is_relative_to(Path(base).resolve())):
        raise TaskFailed(f"src {src!r} is outside the recipe's folder")
    if not resolved.is_file():
        raise TaskFailed(f"src {src!r} not found (looked for {resolved})")
    return resolved.read_bytes()


# ---- modules ------------------------------------------------------------------------------


class FileModule(Module):
    name = "file"
    params = {
        "path": P(required=True, aliases=("dest", "name")),
        "state": P(choices=("file", "directory", "absent", "touch", "link"), default="file"),
        "mode": P(type="mode"), "owner": P(), "group": P(), "src": P(),
        "recurse": P(type="bool", default=False), "force": P(type="bool", default=False),
    }

    def validate(self, args):
        if args.get("state") == "link" and not args.get("src"):
            raise ModuleSpecError("state=link needs src (what the link points to).", param="state")

    def run(self, host, args):
        path, state_wanted = args["path"], args["state"]
        mode, owner, group = args["mode"], args["owner"], args["group"]
        state = read_state(host, path)
        if state_wanted == "absent":
            if not state.exists:
                return TaskResult("ok", f"{path} is already absent")
            if not host.check:
                result = host.run(f"rm -rf -- {q(path)}")
                if not result.ok:
                    raise TaskFailed(f"cannot remove {path}: {result.output}")
            return TaskResult("changed", f"{path} removed", diff=f"- {state.type} {path}")
        if state_wanted == "directory":
            if state.exists and state.type != "directory":
                raise TaskFailed(f"{path} exists and is a {state.type}, not a directory")
            if not state.exists:
                if not host.check:
                    parts = [f"mkdir -p -- {q(path)}"]
                    if mode is not None:
                        parts.append(f"chmod {mode:04o} {q(path)}")
                    if owner or group:
                        parts.append(f"chown {q((owner or '') + (':' + group if group else ''))} {q(path)}")
                    result = host.run(" && ".join(parts))
                    if not result.ok:
                        raise TaskFailed(f"cannot create {path}: {result.output}")
                return TaskResult("changed", f"directory {path} created", diff=f"+ directory {path}")
            return self._attributes(host, path, state, mode, owner, group)
        if state_wanted == "link":
            src = args["src"]
            if state.exists and state.type == "link" and state.link_target == src:
                return TaskResult("ok", f"{path} already points to {src}")
            if state.exists and state.type not in ("link", "file") and not args["force"]:
                raise TaskFailed(f"{path} exists and is a {state.type}; set force: yes to replace it by a link")
            if not host.check:
                result = host.run(f"ln -sfn -- {q(src)} {q(path)}")
                if not result.ok:
                    raise TaskFailed(f"cannot link {path}: {result.output}")
            return TaskResult("changed", f"{path} → {src}", diff=f"link {state.link_target or '-'} → {src}")
        if state_wanted == "touch":
            if not state.exists:
                if not host.check:
                    result = host.run(f"touch -- {q(path)}" + (f" && chmod {mode:04o} {q(path)}" if mode is not None else "") +
                                      (f" && chown {q((owner or '') + (':' + group if group else ''))} {q(path)}" if owner or group else ""))
                    if not result.ok:
                        raise TaskFailed(f"cannot create {path}: {result.output}")
                return TaskResult("changed", f"{path} created", diff=f"+ file {path}")
            return self._attributes(host, path, state, mode, owner, group)
        # state=file: only attributes of an existing file
        if not state.exists:
            if host.check:  # an earlier task of this run may create it; it was not really run
                return TaskResult("skipped", f"check mode: {path} does not exist yet")
            raise TaskFailed(f"{path} does not exist (state=file changes only an existing file; use copy or state=touch)")
        return self._attributes(host, path, state, mode, owner, group)

    def _attributes(self, host, path, state, mode, owner, group):
        changes = attribute_changes(state, mode, owner, group)
        if not changes:
            return TaskResult("ok", f"{path} is as wanted")
        if not host.check:
            set_attributes(host, path, mode, owner, group, changes)
        return TaskResult("changed", f"{path}: {describe_changes(changes)}", diff=describe_changes(changes))


class CopyModule(Module):
    name = "copy"
    params = {
        "dest": P(required=True, aliases=("path",)), "src": P(), "content": P(type="raw"),
        "mode": P(type="mode"), "owner": P(), "group": P(), "validate": P(), "backup": P(type="bool", default=False),
        "force": P(type="bool", default=True),
    }

    def validate(self, args):
        if (args.get("src") is None) == (args.get("content") is None):
            raise ModuleSpecError("give exactly one of src (a file shipped with the recipe) or content.", param="src" if "src" in args else None)
        validate = args.get("validate")
        if validate and "%s" not in str(validate):
            raise ModuleSpecError("validate must contain %s (the candidate file).", param="validate")

    def content_of(self, host, args):
        if args.get("content") is not None:
            content = args["content"]
            return content.encode() if isinstance(content, str) else str(content).encode()
        return read_source(host, args["src"])

    def run(self, host, args):
        dest = args["dest"]
        if dest.endswith("/") and args.get("src"):
            dest = dest + Path(args["src"]).name
        new = self.content_of(host, args)
        state = read_state(host, dest)
        if state.exists and not args["force"]:
            return TaskResult("ok", f"{dest} exists and force is off")
        return ensure_content(host, dest, new, args["mode"], args["owner"], args["group"], args["validate"], state=state, backup=args["backup"])


class TemplateModule(CopyModule):
    name = "template"
    params = {
        "src": P(required=True), "dest": P(required=True, aliases=("path",)),
        "mode": P(type="mode"), "owner": P(), "group": P(), "validate": P(), "backup": P(type="bool", default=False),
        "force": P(type="bool", default=True),
    }

    def validate(self, args):
        validate = args.get("validate")
        if validate and "%s" not in str(validate):
            raise ModuleSpecError("validate must contain %s (the candidate file).", param="validate")

    def content_of(self, host, args):
        source = read_source(host, args["src"]).decode("utf-8", errors="replace")
        return host.render_template(source, args["src"]).encode()


class LineInFileModule(Module):
    name = "lineinfile"
    params = {
        "path": P(required=True, aliases=("dest", "destfile", "name")), "line": P(aliases=("value",)), "regexp": P(aliases=("regex",)),
        "state": P(choices=("present", "absent"), default="present"), "insertafter": P(), "insertbefore": P(),
        "create": P(type="bool", default=False), "mode": P(type="mode"), "owner": P(), "group": P(), "validate": P(),
        "backup": P(type="bool", default=False), "search_string": P(),
    }

    def validate(self, args):
        if args.get("state", "present") == "present" and args.get("line") is None:
            raise ModuleSpecError("state=present needs line.", param="state")
        for key in ("regexp", "insertafter", "insertbefore"):
            value = args.get(key)
            if value and not _templated(value) and value not in ("EOF", "BOF"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise ModuleSpecError(f"{key} is not a valid regular expression ({exc}).", param=key) from None

    def run(self, host, args):
        path = args["path"]
        state = read_state(host, path)
        if state.exists and state.content is None:
            raise TaskFailed(f"{path} is too large to edit line by line")
        if not state.exists:
            if args["state"] == "absent":
                return TaskResult("ok", f"{path} does not exist")
            if not args["create"]:
                raise TaskFailed(f"{path} does not exist; set create: yes to create it")
        old_text = (state.content or b"").decode(errors="replace")
        lines = old_text.splitlines()
        new_lines = self.edit(lines, args)
        if new_lines == lines and state.exists:
            return ensure_content(host, path, state.content, args["mode"], args["owner"], args["group"], state=state)
        new_text = "\n".join(new_lines) + ("\n" if new_lines else "")
        return ensure_content(host, path, new_text.encode(), args["mode"], args["owner"], args["group"], args["validate"], state=state, backup=args["backup"])

    @staticmethod
    def edit(lines, args):
        line, regexp, search = args.get("line"), args.get("regexp"), args.get("search_string")
        matcher = (lambda text: re.search(regexp, text)) if regexp else (lambda text: search in text) if search else None
        if args["state"] == "absent":
            return [text for text in lines if not ((matcher and matcher(text)) or (not matcher and text == line))]
        if matcher:
            matches = [index for index, text in enumerate(lines) if matcher(text)]
            if matches:
                index = matches[-1]
                if lines[index] == line:
                    return lines
                return lines[:index] + [line] + lines[index + 1:]
        if line in lines:
            return lines
        after, before = args.get("insertafter"), args.get("insertbefore")
        if before:
            if before == "BOF":
                return [line] + lines
            found = [index for index, text in enumerate(lines) if re.search(before, text)]
            if found:
                return lines[:found[-1]] + [line] + lines[found[-1]:]
        elif after and after != "EOF":
            found = [index for index, text in enumerate(lines) if re.search(after, text)]
            if found:
                return lines[:found[-1] + 1] + [line] + lines[found[-1] + 1:]
        return lines + [line]


class AptModule(Module):
    name = "apt"
    aliases = ("package",)
    params = {
        "name": P(aliases=("pkg", "package"), type="list"),
        "state": P(choices=("present", "installed", "latest", "absent", "removed"), default="present"),
        "update_cache": P(type="bool", default=False, aliases=("update-cache",)), "cache_valid_time": P(type="int", default=0),
        "install_recommends": P(type="bool"), "purge": P(type="bool", default=False),
    }

    def validate(self, args):
        if not args.get("name") and not args.get("update_cache"):
            raise ModuleSpecError("give name (packages) or update_cache.")

    STAMP = "/var/lib/apt/periodic/update-success-stamp"

    def run(self, host, args):
        names = [name for name in args["name"] or []]
        for name in names:
            if not re.fullmatch(r"[a-z0-9][a-z0-9+.:=~_-]*", name):
                raise TaskFailed(f"{name!r} is not a Debian package name")
        wanted = args["state"]
        check = (
            "command -v apt-get >/dev/null || { echo NO-APT; exit 0; }; "
            + (f"dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}}\\n' {' '.join(q(n.split('=')[0]) for n in names)} 2>/dev/null; " if names else "")
            + (f"echo @@; stat -c %Y {self.STAMP} 2>/dev/null || echo 0; date +%s" if args["update_cache"] else "echo @@")
        )
        if wanted == "latest" and names:
            check += f"; echo @@; apt-get -s -q install --only-upgrade {' '.join(q(n) for n in names)} 2>/dev/null | grep '^Inst ' || true"
        result = host.run(check)
        if "NO-APT" in result.stdout:
            raise TaskFailed("apt-get is not available on this host (only Debian-family systems are supported)")
        parts = result.stdout.split("@@")
        installed = set()
        for row in parts[0].splitlines():
            fields = row.split()
            if len(fields) >= 2 and fields[1].startswith("ii"):
                installed.add(fields[0])
        stamp_lines = parts[1].split() if len(parts) > 1 and parts[1].split() else ["0", "0"]
        cache_age = int(stamp_lines[1]) - int(stamp_lines[0]) if len(stamp_lines) >= 2 else 10**9
        upgradable = [line.split()[1] for line in parts[2].splitlines() if line.startswith("Inst ")] if len(parts) > 2 else []
        bare = [name.split("=")[0] for name in names]
        if wanted in ("absent", "removed"):
            to_remove = [name for name in bare if name in installed]
            if not to_remove:
                return TaskResult("ok", f"not installed: {', '.join(bare)}")
            if not host.check:
                self._apt(host, f"apt-get {'purge' if args['purge'] else 'remove'} -y -q {' '.join(q(n) for n in to_remove)}")
            return TaskResult("changed", f"removed {', '.join(to_remove)}", diff="\n".join(f"- {n}" for n in to_remove))
        to_install = [name for name, base in zip(names, bare) if base not in installed]
        to_upgrade = [name for name in upgradable if name in bare] if wanted == "latest" else []
        cache_stale = args["update_cache"] and (not args["cache_valid_time"] or cache_age > args["cache_valid_time"])
        if not to_install and not to_upgrade and not (cache_stale and not names):
            return TaskResult("ok", f"installed: {', '.join(bare)}" if bare else "package lists are fresh")
        diff = "\n".join([f"+ {n}" for n in to_install] + [f"↑ {n}" for n in to_upgrade])
        if host.check:
            return TaskResult("changed", self._summary(to_install, to_upgrade, cache_stale), diff=diff)
        steps = ["export DEBIAN_FRONTEND=noninteractive"]
        update = f"apt-get update -q && mkdir -p {q(str(Path(self.STAMP).parent))} && touch {self.STAMP}"
        if cache_stale:
            steps.append(update)
        elif to_install:
            # Fresh images ship without package lists: refresh them only if a package is unknown.
            probes = " ".join(q(n.split("=")[0]) for n in to_install)
            steps.append(f"for p in {probes}; do apt-cache show \"$p\" >/dev/null 2>&1 || {{ {update}; break; }}; done")
        if to_install or to_upgrade:
            recommends = "" if args["install_recommends"] is None else ("--install-recommends " if args["install_recommends"] else "--no-install-recommends ")
            steps.append(f"apt-get install -y -q {recommends}-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "
                         + " ".join(q(n) for n in to_install + to_upgrade))
        self._apt(host, " && ".join(steps))
        return TaskResult("changed", self._summary(to_install, to_upgrade, cache_stale), diff=diff)

    @staticmethod
    def _summary(to_install, to_upgrade, cache_updated):
        parts = []
        if to_install:
            parts.append("installed " + ", ".join(to_install))
        if to_upgrade:
            parts.append("upgraded " + ", ".join(to_upgrade))
        if cache_updated and not parts:
            parts.append("package lists updated")
        return "; ".join(parts)

    @staticmethod
    def _apt(host, command):
        result = host.run(command, timeout=max(host.default_timeout, 1800))
        if not result.ok:
            tail = "\n".join(result.output.splitlines()[-8:])
            raise TaskFailed(f"apt failed (exit {result.exit_status}): {tail}")


class UserModule(Module):
    name = "user"
    params = {
        "name": P(required=True), "state": P(choices=("present", "absent"), default="present"),
        "uid": P(type="int"), "group": P(), "groups": P(type="list"), "append": P(type="bool", default=False),
        "shell": P(), "home": P(), "create_home": P(type="bool", default=True, aliases=("createhome",)),
        "system": P(type="bool", default=False), "comment": P(), "remove": P(type="bool", default=False),
        "password": P(),
    }

    def run(self, host, args):
        name = args["name"]
        if not re.fullmatch(r"[a-z_][a-z0-9_.-]*\$?", name):
            raise TaskFailed(f"{name!r} is not a valid user name")
        result = host.run(f"getent passwd {q(name)} || echo ABSENT; echo @@; id -Gn {q(name)} 2>/dev/null; echo @@; id -gn {q(name)} 2>/dev/null")
        entry, groups_line, primary = (result.stdout.split("@@") + ["", ""])[:3]
        exists = not entry.strip().startswith("ABSENT") and entry.strip() != ""
        if args["state"] == "absent":
            if not exists:
                return TaskResult("ok", f"user {name} is absent")
            if not host.check:
                self._do(host, f"userdel {'-r ' if args['remove'] else ''}{q(name)}")
            return TaskResult("changed", f"user {name} removed", diff=f"- user {name}")
        if not exists:
            options = self._options(args, None, None)
            if args["create_home"]:
                options.append("-m")
            else:
                options.append("-M")
            if args["system"]:
                options.append("-r")
            if not host.check:
                self._do(host, "useradd " + " ".join(options + [q(name)]))
            return TaskResult("changed", f"user {name} created", diff=f"+ user {name}")
        fields = entry.strip().split(":")
        current = {"uid": int(fields[2]), "comment": fields[4], "home": fields[5], "shell": fields[6],
                   "groups": set(groups_line.split()), "group": primary.strip()}
        options = self._options(args, current, fields)
        if not options:
            return TaskResult("ok", f"user {name} is as wanted")
        if not host.check:
            self._do(host, "usermod " + " ".join(options + [q(name)]))
        return TaskResult("changed", f"user {name} updated ({' '.join(options)})", diff=" ".join(options))

    def _options(self, args, current, fields):
        options = []
        def differs(key):
            return args[key] is not None and (current is None or current[key] != args[key])
        if differs("uid"):
            options += ["-u", str(args["uid"])]
        if differs("group"):
            options += ["-g", q(args["group"])]
        if differs("shell"):
            options += ["-s", q(args["shell"])]
        if differs("home"):
            options += ["-d", q(args["home"])]
        if differs("comment"):
            options += ["-c", q(args["comment"])]
        if args["password"] is not None and current is None:  # a hashed password, set when the user is created
            options += ["-p", q(args["password"])]
        if args["groups"] is not None:
            wanted = set(args["groups"])
            have = set() if current is None else current["groups"] - {current["group"]}
            if current is None or (wanted - have) or (not args["append"] and have - wanted):
                options += (["-a"] if args["append"] and current is not None else []) + ["-G", q(",".join(sorted(wanted)))]
        return options

    @staticmethod
    def _do(host, command):
        result = host.run(command)
        if not result.ok:
            raise TaskFailed(f"{command.split()[0]} failed: {result.output}")


def _key_id(line):
    parts = line.split()
    for index, part in enumerate(parts):
        if part.startswith(("ssh-", "ecdsa-", "sk-")) and index + 1 < len(parts):
            return (part, parts[index + 1])
    return None


class AuthorizedKeyModule(Module):
    name = "authorized_key"
    params = {
        "user": P(required=True), "key": P(required=True), "state": P(choices=("present", "absent"), default="present"),
        "exclusive": P(type="bool", default=False), "path": P(), "manage_dir": P(type="bool", default=True),
        "key_options": P(), "comment": P(),
    }

    def run(self, host, args):
        user = args["user"]
        keys = [line.strip() for line in args["key"].splitlines() if line.strip() and not line.strip().startswith("#")]
        if not keys or any(_key_id(key) is None for key in keys):
            raise TaskFailed("key must be one or more OpenSSH public key lines (ssh-ed25519 AAAA...)")
        if args["key_options"]:
            keys = [f"{args['key_options']} {key}" for key in keys]
        result = host.run(f"getent passwd {q(user)} | cut -d: -f6")
        home = result.stdout.strip()
        if not home:
            raise TaskFailed(f"user {user} does not exist on this host")
        path = args["path"] or f"{home}/.ssh/authorized_keys"
        state = read_state(host, path)
        lines = (state.content or b"").decode(errors="replace").splitlines()
        wanted_ids = {_key_id(key) for key in keys}
        if args["state"] == "absent":
            new_lines = [line for line in lines if _key_id(line) not in wanted_ids]
        elif args["exclusive"]:
            new_lines = keys
        else:
            have = {_key_id(line) for line in lines}
            new_lines = lines + [key for key in keys if _key_id(key) not in have]
        if state.exists and new_lines == lines:
            return ensure_content(host, path, state.content, 0o600, user, None, state=state)
        if not state.exists and not new_lines:
            return TaskResult("ok", f"{path} does not exist")
        if args["manage_dir"] and not host.check:
            directory = str(Path(path).parent)
            prepared = host.run(f"mkdir -p {q(directory)} && chmod 0700 {q(directory)} && chown {q(user)}: {q(directory)}")
            if not prepared.ok:
                raise TaskFailed(f"cannot prepare {directory}: {prepared.output}")
        primary = host.run(f"id -gn {q(user)}").stdout.strip() or None
        return ensure_content(host, path, ("\n".join(new_lines) + "\n").encode(), 0o600, user, primary, state=state)


NO_SYSTEMD = "no running systemd on {host}: /run/systemd/system is missing (PID 1 is {pid1}). Run it on a host booted with systemd; containers usually are not."


class SystemdModule(Module):
    name = "systemd"
    aliases = ("systemd_service",)
    params = {
        "name": P(aliases=("service", "unit")), "state": P(choices=("started", "stopped", "restarted", "reloaded")),
        "enabled": P(type="bool"), "daemon_reload": P(type="bool", default=False, aliases=("daemon-reload",)),
        "masked": P(type="bool"),
    }

    def validate(self, args):
        if not args.get("name") and not args.get("daemon_reload"):
            raise ModuleSpecError("give name (a unit) or daemon_reload.")

    def inspect(self, host, name):
        unit = q(name) if name else ""
        script = (
            "if [ ! -d /run/systemd/system ]; then echo \"NO-SYSTEMD $(cat /proc/1/comm 2>/dev/null || echo unknown)\"; exit 0; fi; "
            + (f"echo \"active=$(systemctl is-active {unit} 2>/dev/null)\"; echo \"enabled=$(systemctl is-enabled {unit} 2>/dev/null)\"; "
               f"echo \"reload=$(systemctl show -p NeedDaemonReload --value {unit} 2>/dev/null)\"; "
               f"echo \"load=$(systemctl show -p LoadState --value {unit} 2>/dev/null)\"" if name else "true")
        )
        result = host.run(script)
        first = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
        if first.startswith("NO-SYSTEMD"):
            raise TaskFailed(NO_SYSTEMD.format(host=host.name, pid1=first.split(" ", 1)[1] if " " in first else "unknown"))
        values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        return values

    def run(self, host, args):
        name = args["name"]
        values = self.inspect(host, name)
        steps, notes = [], []
        if args["daemon_reload"] or values.get("reload") == "yes":
            steps.append("systemctl daemon-reload")
        if name and values.get("load") == "not-found" and not (args["daemon_reload"] and not host.check):
            raise TaskFailed(f"unit {name} not found; install its unit file first")
        if args["enabled"] is not None and name:
            is_enabled = values.get("enabled") in ("enabled", "enabled-runtime", "static", "alias", "indirect")
            if args["enabled"] != is_enabled and values.get("enabled") != "static":
                steps.append(f"systemctl {'enable' if args['enabled'] else 'disable'} {q(name)}")
                notes.append("enabled" if args["enabled"] else "disabled")
        state = args["state"]
        active = values.get("active") in ("active", "activating", "reloading")
        if state == "started" and not active:
            steps.append(f"systemctl start {q(name)}")
            notes.append("started")
        elif state == "stopped" and active:
            steps.append(f"systemctl stop {q(name)}")
            notes.append("stopped")
        elif state in ("restarted", "reloaded"):
            verb = "restart" if state == "restarted" else "reload-or-restart"
            steps.append(f"systemctl {verb} {q(name)}")
            notes.append(state)
        if not notes:
            if steps and not host.check:
                host.run(" && ".join(steps))
            return TaskResult("ok", f"{name or 'systemd'} is as wanted")
        if not host.check:
            result = host.run(" && ".join(steps))
            if not result.ok:
                status = host.run(f"systemctl status --no-pager -n 5 {q(name)} 2>&1 | tail -n 8")
                raise TaskFailed(f"{' && '.join(steps)} failed: {result.output}\n{status.stdout.strip()}")
        return TaskResult("changed", f"{name}: {', '.join(notes)}", diff=", ".join(notes))


class ServiceModule(SystemdModule):
    """systemd when it runs; otherwise the host's /etc/init.d script (e.g. sshd in a container)."""

    name = "service"
    aliases = ()
    params = {
        "name": P(required=True), "state": P(choices=("started", "stopped", "restarted", "reloaded")),
        "enabled": P(type="bool"),
    }

    def validate(self, args):
        pass

    def run(self, host, args):
        name = args["name"]
        script = (
            "if [ -d /run/systemd/system ]; then echo SYSTEMD; "
            f"elif [ -x /etc/init.d/{q(name)} ]; then echo SYSV; /etc/init.d/{q(name)} status >/dev/null 2>&1; echo \"status=$?\"; "
            f"ls /etc/rc2.d/S*{q(name)} >/dev/null 2>&1 && echo enabled=yes || echo enabled=no; "
            "else echo \"NONE $(cat /proc/1/comm 2>/dev/null || echo unknown)\"; fi"
        )
        first_pass = host.run(script).stdout
        if first_pass.startswith("SYSTEMD"):
            return super().run(host, {**args, "daemon_reload": False, "masked": None})
        if first_pass.startswith("NONE"):
            pid1 = first_pass.split(" ", 1)[1].strip() if " " in first_pass else "unknown"
            raise TaskFailed(NO_SYSTEMD.format(host=host.name, pid1=pid1) + f" There is no /etc/init.d/{name} script either.")
        values = dict(line.split("=", 1) for line in first_pass.splitlines() if "=" in line)
        running = values.get("status") == "0"
        steps, notes = [], []
        script_path = f"/etc/init.d/{q(name)}"
        state = args["state"]
        if state == "started" and not running:
            steps.append(f"{script_path} start")
            notes.append("started")
        elif state == "stopped" and running:
            steps.append(f"{script_path} stop")
            notes.append("stopped")
        elif state == "restarted":
            steps.append(f"{script_path} restart")
            notes.append("restarted")
        elif state == "reloaded":
            steps.append(f"{script_path} reload" if running else f"{script_path} start")
            notes.append("reloaded" if running else "started")
        if args["enabled"] is not None and args["enabled"] != (values.get("enabled") == "yes"):
            steps.append(f"update-rc.d {q(name)} {'defaults' if args['enabled'] else 'disable'}")
            notes.append("enabled" if args["enabled"] else "disabled")
        if not notes:
            return TaskResult("ok", f"{name} is as wanted (init script)")
        if not host.check:
            result = host.run(" && ".join(steps))
            if not result.ok:
                raise TaskFailed(f"{' && '.join(steps)} failed: {result.output}")
        return TaskResult("changed", f"{name}: {', '.join(notes)} (init script)", diff=", ".join(notes))


class CommandModule(Module):
    name = "command"
    free_form = True
    params = {
        "cmd": P(), "argv": P(type="list"), "creates": P(), "removes": P(), "chdir": P(), "stdin": P(),
    }

    def validate(self, args):
        if not (args.get("_raw_params") or args.get("cmd") or args.get("argv")):
            raise ModuleSpecError("give the command (free form, cmd or argv).")

    def command_line(self, args):
        if args.get("argv"):
            return " ".join(q(word) for word in args["argv"])
        text = args.get("_raw_params") or args.get("cmd")
        try:
            # Words, not shell code: $(...), ;, | and > stay literal characters of the arguments.
            return " ".join(q(word) for word in shlex.split(str(text)))
        except ValueError as exc:
            raise TaskFailed(f"cannot split the command into words ({exc})") from None

    def run(self, host, args):
        command = self.command_line(args)
        guard = []
        if args.get("creates"):
            guard.append(f"if [ -e {q(args['creates'])} ]; then echo '@@filrouge-skip: {args['creates']} exists' >&2; exit 0; fi")
        if args.get("removes"):
            guard.append(f"if [ ! -e {q(args['removes'])} ]; then echo '@@filrouge-skip: {args['removes']} does not exist' >&2; exit 0; fi")
        if host.check:
            if guard:
                probe = host.run("; ".join(guard + ["echo WOULD-RUN"]))
                if "@@filrouge-skip" in probe.stderr:
                    return TaskResult("ok", probe.stderr.strip().replace("@@filrouge-skip: ", ""))
            return TaskResult("skipped", "check mode: the command was not run", data={"rc": 0, "stdout": "", "stderr": ""})
        if args.get("chdir"):
            command = f"cd {q(args['chdir'])} && {command}"
        stdin = (str(args["stdin"]) + "\n").encode() if args.get("stdin") is not None else None
        result = host.run("; ".join(guard + [command]) if guard else command, stdin=stdin, timeout=host.task_timeout)
        if "@@filrouge-skip" in result.stderr:
            return TaskResult("ok", result.stderr.strip().replace("@@filrouge-skip: ", ""), data={"rc": 0, "stdout": "", "stderr": "", "skipped": True})
        data = {"rc": result.exit_status, "stdout": result.stdout.rstrip("\n"), "stderr": result.stderr.rstrip("\n"),
                "stdout_lines": result.stdout.splitlines(), "cmd": args.get("_raw_params") or args.get("cmd") or args.get("argv")}
        output = result.output
        if not result.ok:
            return TaskResult("failed", f"exit {result.exit_status}: {output[-2000:]}" if output else f"exit {result.exit_status}", data=data)
        return TaskResult("changed", output[-2000:] if output else "done", data=data)


class ShellModule(CommandModule):
    name = "shell"
    params = {"cmd": P(), "creates": P(), "removes": P(), "chdir": P(), "stdin": P(), "executable": P()}

    def command_line(self, args):
        text = args.get("_raw_params") or args.get("cmd")
        return f"{q(args.get('executable') or '/bin/sh')} -c {q(str(text))}"


class FactsModule(Module):
    """Ansible's `setup`: one command gathers the panel's fixed set of facts (os, cpus,
    memory, kernel, addresses...). `gather_timeout` bounds that command; `gather_subset`
    and `filter` are accepted so that playbooks read the same, but the set is always the
    same, which the task's line says."""

    name = "setup"
    aliases = ("gather_facts", "facts")
    params = {"gather_subset": P(type="list"), "gather_timeout": P(type="int"), "filter": P(type="list")}

    def run(self, host, args):
        timeout = int(args["gather_timeout"]) if args.get("gather_timeout") not in (None, "") else None
        result = host.run(FACTS_COMMAND, timeout=timeout)
        if not result.ok and not result.stdout:
            raise TaskFailed(f"cannot gather facts: {result.output}")
        facts = parse_facts(result.stdout)
        host.facts = facts
        summary = f"{facts['os']['pretty_name'] or facts['os']['id']}, {facts['cpus']} CPU, kernel {facts['kernel']}"
        ignored = [name for name in ("gather_subset", "filter") if to_list(args.get(name)) and to_list(args.get(name)) != ["all"]]
        if ignored:
            summary += f" (warning: {' and '.join(ignored)} ignored; the panel always gathers the same facts)"
        return TaskResult("ok", summary, data={"ansible_facts": facts})


class PingModule(Module):
    name = "ping"
    params = {"data": P(default="pong")}

    def run(self, host, args):
        result = host.run("true")
        if not result.ok:
            raise TaskFailed(result.output)
        return TaskResult("ok", args["data"])


class DebugModule(Module):
    name = "debug"
    params = {"msg": P(type="raw"), "var": P()}

    def run(self, host, args):
        if args.get("var"):
            return TaskResult("ok", f"{args['var']} = {host.lookup(args['var'])!r}")
        return TaskResult("ok", str(args.get("msg") if args.get("msg") is not None else "Hello world!"))


class LoginGuardModule(Module):
    """Before hardening: refuse if the panel would lock itself out (no key login for its user)."""

    name = "login_guard"
    params = {"forbid_root": P(type="bool", default=True), "keys_only": P(type="bool", default=True)}

    def run(self, host, args):
        target = host.connection.target
        if args["keys_only"] and not target.private_key:
            raise TaskFailed(
                f"the panel logs in to {host.name} with a password; after hardening (keys only) it would be locked out. "
                "Give the server an SSH key credential (and install it with the deploy-user recipe) first."
            )
        if args["forbid_root"] and target.user == "root":
            raise TaskFailed(
                f"the panel logs in to {host.name} as root; after hardening (no root login) it would be locked out. "
                "Create a deploy user with the panel's key (deploy-user recipe), set it as the server's SSH user with become, then harden."
            )
        public = host.panel_public_key
        wanted = _key_id(public or "")
        listing = host.run(
            "f=$(sshd -T -C user=$(id -un),host=localhost,addr=127.0.0.1 2>/dev/null | awk 'tolower($1)==\"authorizedkeysfile\" {for(i=2;i<=NF;i++) print $i}'); "
            "[ -n \"$f\" ] || f='.ssh/authorized_keys .ssh/authorized_keys2'; "
            "for p in $f; do case \"$p\" in /*) ;; *) p=\"$HOME/$p\";; esac; p=$(echo \"$p\" | sed \"s#%h#$HOME#g; s#%u#$(id -un)#g; s#%%#%#g\"); "
            "cat \"$p\" 2>/dev/null; done",
            become=False,
        )
        present = any(_key_id(line) == wanted for line in listing.stdout.splitlines()) if wanted else False
        if not present:
            raise TaskFailed(
                f"the panel's key ({(public or '?').split()[0]}) is not in {target.user}'s authorized keys on {host.name}; "
                "after hardening the panel would be locked out. Install it first (authorized_key or the deploy-user recipe)."
            )
        return TaskResult("ok", f"{target.user} logs in with the panel's key; hardening will not lock the panel out")


class SetFactModule(Module):
    """Variables for the rest of the play on this host; the engine keeps them (data "_set_facts")."""

    name = "set_fact"
    params = {}

    def check_args(self, args, marks=None):
        args = {key: value for key, value in args.items() if key != "cacheable"}
        if "_raw_params" in args:
            raise ModuleSpecError("set_fact takes name: value pairs.")
        if not args:
            raise ModuleSpecError("set_fact needs at least one name: value.")
        return args

    def typed(self, args):
        return dict(args)

    def run(self, host, args):
        return TaskResult("ok", ", ".join(sorted(args)), data={"_set_facts": dict(args), "ansible_facts": dict(args)})


class AssertModule(Module):
    name = "assert"
    params = {"that": P(required=True, type="raw"), "msg": P(type="raw"), "fail_msg": P(type="raw", aliases=("msg",)),
              "success_msg": P(type="raw"), "quiet": P(type="bool", default=False)}

    def check_args(self, args, marks=None):
        if "msg" in args and "fail_msg" not in args:
            args = {**{k: v for k, v in args.items() if k != "msg"}, "fail_msg": args["msg"]}
        return super().check_args(args, marks)

    def run(self, host, args):
        from .templating import evaluate

        conditions = args["that"] if isinstance(args["that"], list) else [args["that"]]
        for condition in conditions:
            if not evaluate(condition, host.variables):
                raise TaskFailed(str(args.get("fail_msg") or f"Assertion failed: {condition}"))
        return TaskResult("ok", str(args.get("success_msg") or "All assertions passed"))


class FailModule(Module):
    name = "fail"
    raw_params_ok = True
    params = {"msg": P(type="raw", default="Failed as requested from task")}

    def run(self, host, args):
        raise TaskFailed(str(args.get("msg") or args.get("_raw_params") or "Failed as requested from task"))


class MetaModule(Module):
    """flush_handlers, noop and end_host; the engine acts on them (other meta actions go to ansible-runner)."""

    name = "meta"
    free_form = True
    params = {}
    NATIVE = ("flush_handlers", "noop", "end_host")

    def validate(self, args):
        if args.get("_raw_params") not in self.NATIVE:
            raise ModuleSpecError(f"meta {args.get('_raw_params')} is not native", param="_raw_params", unknown_param=True)

    def run(self, host, args):
        return TaskResult("ok", args["_raw_params"])


class StatModule(Module):
    name = "stat"
    params = {"path": P(required=True, aliases=("dest", "name")), "follow": P(type="bool", default=False),
              "get_checksum": P(type="bool", default=True), "get_md5": P(type="bool", default=False),
              "get_mime": P(type="bool", default=True), "get_attributes": P(type="bool", default=True),
              "checksum_algorithm": P(choices=("sha1", "sha256", "md5", "sha224", "sha384", "sha512"), default="sha1")}

    def run(self, host, args):
        state = read_state(host, args["path"])
        stat = {"exists": state.exists}
        if state.exists:
            stat.update(path=args["path"], isdir=state.type == "directory", isreg=state.type == "file", islnk=state.type == "link",
                        mode=f"{state.mode:04o}" if state.mode is not None else None, pw_name=state.owner, gr_name=state.group,
                        size=state.size, lnk_target=state.link_target or None)
            if state.content is not None and args["get_checksum"]:
                stat["checksum"] = hashlib.new(args["checksum_algorithm"], state.content).hexdigest()
        return TaskResult("ok", f"{args['path']} {'exists' if state.exists else 'does not exist'}", data={"stat": stat})


class GroupModule(Module):
    name = "group"
    params = {"name": P(required=True), "state": P(choices=("present", "absent"), default="present"), "gid": P(type="int"),
              "system": P(type="bool", default=False)}

    def run(self, host, args):
        name = args["name"]
        found = host.run(f"getent group {q(name)}")
        exists = found.ok and found.stdout.strip() != ""
        if args["state"] == "absent":
            if not exists:
                return TaskResult("ok", f"group {name} is absent")
            command = f"groupdel {q(name)}"
            message = f"group {name} removed"
        else:
            if exists:
                gid = found.stdout.strip().split(":")[2]
                if args["gid"] is None or str(args["gid"]) == gid:
                    return TaskResult("ok", f"group {name} exists")
                command = f"groupmod -g {int(args['gid'])} {q(name)}"
                message = f"group {name}: gid {gid} → {args['gid']}"
            else:
                options = (f" -g {int(args['gid'])}" if args["gid"] is not None else "") + (" -r" if args["system"] else "")
                command = f"groupadd{options} {q(name)}"
                message = f"group {name} created"
        if not host.check:
            result = host.run(command)
            if not result.ok:
                raise TaskFailed(f"{command} failed: {result.output}")
        return TaskResult("changed", message, diff=message)


# Modules only the built-in recipes use: they run, but are not offered in the list of supported modules.
INTERNAL_MODULES = {"login_guard"}

MODULES = {}
for _module in (FileModule, CopyModule, TemplateModule, LineInFileModule, AptModule, UserModule, AuthorizedKeyModule,
                SystemdModule, ServiceModule, CommandModule, ShellModule, FactsModule, PingModule, DebugModule, LoginGuardModule,
                SetFactModule, AssertModule, FailModule, MetaModule, StatModule, GroupModule):
    _instance = _module()
    MODULES[_instance.name] = _instance
ALIASES = {alias: module for module in MODULES.values() for alias in module.aliases}


def resolve_module(name):
    """A module by its name, an alias (package → apt), or a fully qualified name (ansible.builtin.copy)."""
    short = name.rsplit(".", 1)[-1] if name.startswith(("ansible.builtin.", "ansible.legacy.", "ansible.posix.")) else name
    if short in MODULES:
        return MODULES[short]
    if short in ALIASES:
        return ALIASES[short]
    raise ModuleSpecError(f"unsupported module {name!r}")
