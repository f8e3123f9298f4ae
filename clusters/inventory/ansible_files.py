"""Ansible inventories in and out: INI and YAML files, and the dynamic-inventory JSON.

Reading gives an `AnsibleInventory` (hosts with their own vars, groups with hosts,
children and vars), with errors that name the file and line. `plan_import` turns it into
a preview of what would be created or changed; `apply_import` does it in one
transaction. Export writes the same formats back, so export → import loses nothing.

Connection variables become server fields (ansible_host → address, ansible_port → port,
ansible_user → user, ansible_become → become, also their older ansible_ssh_* spellings);
everything else stays a variable. Passwords in an inventory never become variables: they
go into an encrypted credential.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import string
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.db import transaction

from clusters.models import Credential, CredentialKind, Group, Server, name_validator
from clusters.recipes.loader import LineDict, MarkedLoader
from panel.lib import safe_yaml

IMPLICIT_GROUPS = {"all", "ungrouped"}
ADDRESS_KEYS = ("ansible_host", "ansible_ssh_host")
PORT_KEYS = ("ansible_port", "ansible_ssh_port")
USER_KEYS = ("ansible_user", "ansible_ssh_user")
KEY_FILE_KEYS = ("ansible_ssh_private_key_file", "ansible_private_key_file")
PASSWORD_KEYS = ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password")
BECOME_PASSWORD_KEYS = ("ansible_become_password", "ansible_become_pass", "ansible_sudo_pass")
BECOME_KEYS = ("ansible_become", "ansible_sudo")
SECRET_KEYS = PASSWORD_KEYS + BECOME_PASSWORD_KEYS
JUMP_KEY = "filrouge_jump_host"  # written by our export next to the ProxyJump it stands for
FIELD_KEYS = ADDRESS_KEYS + PORT_KEYS + USER_KEYS + BECOME_KEYS + SECRET_KEYS + (JUMP_KEY,)
ONLY_PROXY_JUMP = re.compile(r"\s*(?:-o\s*ProxyJump[= ]\S+|-J\s*\S+)\s*")


class InventoryError(ValueError):
    """A file we cannot read; the message names the file and the line."""


@dataclass
class GroupData:
    name: str
    hosts: list = field(default_factory=list)
    children: list = field(default_factory=list)
    vars: dict = field(default_factory=dict)


@dataclass
class AnsibleInventory:
    hosts: dict = field(default_factory=dict)  # name -> own vars (ordered)
    groups: dict = field(default_factory=dict)  # name -> GroupData
    source: str = "inventory"

    def group(self, name):
        if name not in self.groups:
            self.groups[name] = GroupData(name)
        return self.groups[name]

    def add_host(self, name, variables, group=None):
        self.hosts.setdefault(name, {}).update(variables)
        if group and group not in IMPLICIT_GROUPS:
            members = self.group(group).hosts
            if name not in members:
                members.append(name)


# ---- host patterns: web[01:03], db-[a:c] ------------------------------------------------

_RANGE = re.compile(r"\[([^\]]*)\]")


def expand_hostname(pattern, where):
    match = _RANGE.search(pattern)
    if not match:
        return [pattern]
    body = match.group(1)
    parts = body.split(":")
    if len(parts) not in (2, 3):
        raise InventoryError(f"{where}: bad range [{body}] in {pattern!r}; write [01:03] or [a:c].")
    start, end = parts[0], parts[1]
    step = 1
    if len(parts) == 3:
        if not parts[2].isdigit() or int(parts[2]) < 1:
            raise InventoryError(f"{where}: the step of [{body}] must be a positive number.")
        step = int(parts[2])
    head, tail = pattern[: match.start()], pattern[match.end():]
    if start.isdigit() and end.isdigit():
        if int(start) > int(end):
            raise InventoryError(f"{where}: range [{body}] goes backwards.")
        width = len(start) if start.startswith("0") else 0
        values = [str(number).zfill(width) for number in range(int(start), int(end) + 1, step)]
    elif len(start) == 1 and len(end) == 1 and start in string.ascii_letters and end in string.ascii_letters:
        if start > end:
            raise InventoryError(f"{where}: range [{body}] goes backwards.")
        values = [chr(code) for code in range(ord(start), ord(end) + 1, step)]
    else:
        raise InventoryError(f"{where}: bad range [{body}] in {pattern!r}; write [01:03] or [a:c].")
    return [name for value in values for name in expand_hostname(head + value + tail, where)]


def split_host_port(text):
    """"db01:2203" → ("db01", 2203); "[::1]:22" → ("::1", 22); plain names unchanged."""
    if text.startswith("[") and "]:" in text and not _RANGE.fullmatch(text):
        host, _, port = text[1:].partition("]:")
        if port.isdigit():
            return host, int(port)
    match = re.fullmatch(r"(.+):(\d+)", text)
    if match and ":" not in _RANGE.sub("", match.group(1)):  # a bare IPv6 address has no port
        return match.group(1), int(match.group(2))
    return text, None


def parse_value(text):
    """INI values as Ansible reads them: Python literals when they parse, strings otherwise."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    return value if value is None or isinstance(value, (str, int, float, bool, list, dict, tuple)) else text


# ---- INI ----------------------------------------------------------------------------------------


def parse_ini(text, source="inventory.ini"):
    inventory = AnsibleInventory(source=source)
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        where = f"{source}, line {number}"
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            match = re.fullmatch(r"\[([^\]:\s]+)(?::(\w+))?\]", line.split("#")[0].strip())
            if not match:
                raise InventoryError(f"{where}: cannot read the section header {line!r}; write [group], [group:children] or [group:vars].")
            section, kind = match.group(1), match.group(2) or "hosts"
            if kind not in ("hosts", "children", "vars"):
                raise InventoryError(f"{where}: unknown section type :{kind}; use :children or :vars.")
            _check_name(section, where, "group")
            if section not in IMPLICIT_GROUPS:
                inventory.group(section)
            elif section == "all" and kind in ("vars", "children"):
                inventory.group("all")
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise InventoryError(f"{where}: {exc} (an unclosed quote?)") from None
        if not words:
            continue
        if kind == "vars":
            if "=" not in line:
                raise InventoryError(f"{where}: expected key=value in [{section}:vars], found {line!r}.")
            key, _, value = line.partition("=")
            key, value = key.strip(), value.strip()
            # As Ansible: a vars line's value is read whole (quotes included) as a Python literal.
            inventory.group(section).vars[key] = parse_value(value)
        elif kind == "children":
            if len(words) != 1:
                raise InventoryError(f"{where}: one group name per line in [{section}:children], found {line!r}.")
            child = words[0]
            _check_name(child, where, "group")
            inventory.group(child)
            if child not in inventory.group(section).children:
                inventory.group(section).children.append(child)
        else:
            host_part, *pairs = words
            variables = {}
            for pair in pairs:
                if "=" not in pair:
                    raise InventoryError(f"{where}: expected key=value after the host name, found {pair!r}.")
                key, _, value = pair.partition("=")
                variables[key] = parse_value(value)
            host_text, port = split_host_port(host_part)
            for name in expand_hostname(host_text, where):
                _check_name(name, where, "host")
                own = dict(variables)
                if port is not None:
                    own.setdefault("ansible_port", port)
                inventory.add_host(name, own, section)
    _check_children(inventory)
    return inventory


def _check_name(name, where, what):
    try:
        name_validator(name)
    except Exception:
        raise InventoryError(f"{where}: {what} name {name!r} is not allowed here (letters, digits, dots, dashes, underscores).") from None


def _check_children(inventory):
    for group in inventory.groups.values():
        seen, stack = set(), list(group.children)
        while stack:
            child = stack.pop()
            if child == group.name:
                raise InventoryError(f"{inventory.source}: group {group.name!r} contains itself through its children.")
            if child not in seen:
                seen.add(child)
                stack.extend(inventory.groups.get(child, GroupData(child)).children)


# ---- YAML ---------------------------------------------------------------------------------------


def parse_yaml(text, source="inventory.yml"):
    try:
        data = safe_yaml.load(text.replace("\r\n", "\n"), Loader=MarkedLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark else source
        raise InventoryError(f"{where}: {exc.problem or exc.context}") from None
    if data is None:
        raise InventoryError(f"{source}: the file is empty.")
    if not isinstance(data, dict):
        raise InventoryError(f"{source}, line 1: an inventory is a mapping of groups (all: hosts/children/vars).")
    inventory = AnsibleInventory(source=source)
    for name, body in data.items():
        _yaml_group(inventory, str(name), body, source, data)
    _check_children(inventory)
    return inventory


def _line_of(mapping, key=None):
    if isinstance(mapping, LineDict):
        return mapping.mark_of(key)[0] if key is not None else mapping.line
    return "?"


def _yaml_group(inventory, name, body, source, parent):
    where = f"{source}, line {_line_of(parent, name)}"
    _check_name(name, where, "group")
    if name != "all":
        inventory.group(name)
    if body is None:
        return
    if not isinstance(body, dict):
        raise InventoryError(f"{where}: group {name!r} must be a mapping with hosts, children and vars.")
    for key in body:
        if key not in ("hosts", "children", "vars"):
            raise InventoryError(f"{source}, line {_line_of(body, key)}: unknown key {key!r} in group {name!r}; use hosts, children or vars.")
    hosts = body.get("hosts") or {}
    if not isinstance(hosts, dict):
        raise InventoryError(f"{source}, line {_line_of(body, 'hosts')}: hosts of {name!r} must be a mapping (host: vars).")
    for host_key, host_vars in hosts.items():
        host_where = f"{source}, line {_line_of(hosts, host_key)}"
        if host_vars is not None and not isinstance(host_vars, dict):
            raise InventoryError(f"{host_where}: the vars of host {host_key!r} must be a mapping.")
        host_text, port = split_host_port(str(host_key))
        for host in expand_hostname(host_text, host_where):
            _check_name(host, host_where, "host")
            own = dict(host_vars or {})
            if port is not None:
                own.setdefault("ansible_port", port)
            inventory.add_host(host, own, None if name == "all" else name)
    variables = body.get("vars") or {}
    if not isinstance(variables, dict):
        raise InventoryError(f"{source}, line {_line_of(body, 'vars')}: vars of {name!r} must be a mapping.")
    if variables:
        inventory.group(name).vars.update(dict(variables))
    children = body.get("children") or {}
    if not isinstance(children, dict):
        raise InventoryError(f"{source}, line {_line_of(body, 'children')}: children of {name!r} must be a mapping of groups.")
    for child, child_body in children.items():
        child = str(child)
        if child == "ungrouped":
            for host in ((child_body or {}).get("hosts") or {}):
                host_text, port = split_host_port(str(host))
                for expanded in expand_hostname(host_text, where):
                    inventory.add_host(expanded, {**(((child_body or {}).get("hosts") or {}).get(host) or {}), **({"ansible_port": port} if port else {})})
            continue
        _yaml_group(inventory, child, child_body, source, children)
        if name != "all" and child not in inventory.group(name).children:
            inventory.group(name).children.append(child)


def parse_inventory(text, source="inventory", fmt=None):
    """INI or YAML, by `fmt` ("ini", "yaml") or guessed from the name and the content."""
    if fmt is None:
        suffix = Path(source).suffix.lower()
        if suffix in (".yml", ".yaml", ".json"):
            fmt = "yaml"
        elif suffix in (".ini", ".cfg", ".hosts"):
            fmt = "ini"
        else:
            first = next((line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")), "")
            fmt = "yaml" if first.endswith(":") or first.startswith(("{", "---", "all:")) else "ini"
    return parse_yaml(text, source) if fmt == "yaml" else parse_ini(text, source)


# ---- import ---------------------------------------------------------------------------------------


@dataclass
class ImportPlan:
    servers: list = field(default_factory=list)  # dicts: name, action, fields, variables, groups
    groups: list = field(default_factory=list)  # dicts: name, action, variables, children
    credentials: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    @property
    def counts(self):
        def count(items, action):
            return sum(1 for item in items if item["action"] == action)

        return {
            "servers_created": count(self.servers, "create"), "servers_updated": count(self.servers, "update"),
            "servers_unchanged": count(self.servers, "unchanged"),
            "groups_created": count(self.groups, "create"), "groups_updated": count(self.groups, "update"),
            "groups_unchanged": count(self.groups, "unchanged"),
            "credentials_created": len(self.credentials),
        }

    def as_dict(self):
        return {"counts": self.counts, "servers": self.servers, "groups": self.groups,
                "credentials": [{key: value for key, value in item.items() if key != "secret"} for item in self.credentials],
                "warnings": self.warnings}


def _first(variables, keys):
    for key in keys:
        if key in variables:
            return variables[key]
    return None


def _effective_vars(inventory):
    """{host: vars as Ansible sees them}: all < parents < children < host."""
    parents = {}
    for group in inventory.groups.values():
        for child in group.children:
            parents.setdefault(child, []).append(group.name)
    membership = {host: [] for host in inventory.hosts}
    for group in inventory.groups.values():
        for host in group.hosts:
            membership.setdefault(host, []).append(group.name)

    def ancestors(name, depth=0, seen=None):
        seen = seen if seen is not None else {}
        for parent in parents.get(name, []):
            if parent not in seen or seen[parent] < depth + 1:
                seen[parent] = depth + 1
                ancestors(parent, depth + 1, seen)
        return seen

    result = {}
    for host, own in inventory.hosts.items():
        depths = {}
        for group in membership.get(host, []):
            depths[group] = max(depths.get(group, 0), 0)
            for ancestor, depth in ancestors(group).items():
                depths[ancestor] = max(depths.get(ancestor, 0), depth)
        ordered = sorted(depths, key=lambda name: (-depths[name], name))
        merged = dict(inventory.groups["all"].vars) if "all" in inventory.groups else {}
        for group in ordered:
            merged.update(inventory.groups[group].vars)
        merged.update(own)
        result[host] = merged
    return result


def plan_import(inventory, read_key_files=False, default_credential=None):
    """What importing would do, without doing it."""
    plan = ImportPlan()
    existing_servers = {server.name: server for server in Server.objects.filter(name__in=list(inventory.hosts)).select_related("credential", "jump_host").prefetch_related("groups")}
    existing_groups = {group.name: group for group in Group.objects.filter(name__in=list(inventory.groups)).prefetch_related("children")}
    effective = _effective_vars(inventory)
    membership = {host: [] for host in inventory.hosts}
    for group in inventory.groups.values():
        for host in group.hosts:
            membership.setdefault(host, []).append(group.name)
    for name, group in inventory.groups.items():
        current = existing_groups.get(name)
        item = {"name": name, "variables": group.vars, "children": list(group.children)}
        for key in SECRET_KEYS:
            if key in group.vars:
                plan.warnings.append(f"group {name}: {key} is a secret; it was left out (put it in a credential).")
                item["variables"] = {k: v for k, v in item["variables"].items() if k not in SECRET_KEYS}
        if current is None:
            item["action"] = "create"
        else:
            same = current.variables == item["variables"] and set(item["children"]) <= {child.name for child in current.children.all()}
            item["action"] = "unchanged" if same else "update"
        plan.groups.append(item)
    for name, own in inventory.hosts.items():
        merged = effective[name]
        address = _first(merged, ADDRESS_KEYS) or name
        port = _first(merged, PORT_KEYS) or 22
        try:
            port = int(port)
        except (TypeError, ValueError):
            plan.warnings.append(f"host {name}: port {port!r} is not a number; 22 is used.")
            port = 22
        user = _first(merged, USER_KEYS) or "root"
        become = _truthy(_first(merged, BECOME_KEYS))
        fields = {"address": str(address), "port": port, "user": str(user), "become": become}
        variables = {key: value for key, value in own.items() if key not in FIELD_KEYS}
        credential = None
        key_file = _first(merged, KEY_FILE_KEYS)
        password = _first(own, PASSWORD_KEYS)
        become_password = _first(own, BECOME_PASSWORD_KEYS)
        if key_file:
            credential = _key_file_credential(plan, name, str(key_file), read_key_files)
        elif password:
            credential = {"name": _credential_name(f"password-{name}"), "kind": CredentialKind.PASSWORD,
                          "secret": {"password": str(password), **({"become_password": str(become_password)} if become_password else {})},
                          "username": str(user), "action": "create"}
            plan.credentials.append(credential)
        if credential is None and default_credential is not None:
            credential = {"name": default_credential.name, "action": "existing"}
        current = existing_servers.get(name)
        item = {"name": name, "fields": fields, "variables": variables, "groups": sorted(membership.get(name, [])),
                "credential": credential["name"] if credential else None}
        jump = merged.get(JUMP_KEY) or _proxy_jump(merged.get("ansible_ssh_common_args") or merged.get("ansible_ssh_extra_args"))
        if jump:
            item["jump_host"] = str(jump)
            if jump not in inventory.hosts and not Server.objects.filter(name=jump).exists():
                plan.warnings.append(f"host {name}: its jump host {jump} is not in the inventory; it is left without one.")
            if ONLY_PROXY_JUMP.fullmatch(str(variables.get("ansible_ssh_common_args", "x"))):
                variables.pop("ansible_ssh_common_args")  # it is the jump host field now; export writes it back
        if current is None:
            item["action"] = "create"
        else:
            changed = [key for key, value in fields.items() if getattr(current, key) != value]
            if current.variables != variables:
                changed.append("variables")
            if not set(item["groups"]) <= {group.name for group in current.groups.all()}:
                changed.append("groups")
            # A credential or jump host the import gives the server is a change too (an
            # import never takes one away: no credential in the file leaves the current one).
            if item["credential"] and (current.credential is None or current.credential.name != item["credential"]):
                changed.append("credential")
            if item.get("jump_host") and (current.jump_host is None or current.jump_host.name != item["jump_host"]):
                changed.append("jump_host")
            item["action"] = "update" if changed else "unchanged"
            item["changed"] = changed
        plan.servers.append(item)
    return plan


def _truthy(value):
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "true", "on", "1")
    return bool(value)


def _proxy_jump(args):
    if not args:
        return None
    match = re.search(r"(?:-J\s*|ProxyJump[= ])(?:[^@\s'\"]+@)?([^\s:'\",]+)", str(args))
    return match.group(1) if match else None


def _credential_name(base):
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", base).strip("-.")[:190] or "imported"
    return cleaned


def _key_file_credential(plan, host, key_file, read_key_files):
    name = _credential_name(f"key-{Path(key_file).name}")
    if Credential.objects.filter(name=name).exists():
        return {"name": name, "action": "existing"}
    for item in plan.credentials:
        if item["name"] == name:
            return item
    path = Path(key_file).expanduser()
    if not read_key_files:
        plan.warnings.append(f"host {host}: private key file {key_file} is on the machine that wrote the inventory; "
                             f"the server gets no credential from it (create an SSH key credential named {name} and import again, or assign one).")
        return None
    if not path.is_file():
        plan.warnings.append(f"host {host}: private key file {key_file} not found on this machine; the server gets no credential.")
        return None
    item = {"name": name, "kind": CredentialKind.SSH_KEY, "secret": {"private_key": path.read_text()}, "username": "", "action": "create",
            "source": str(path)}
    plan.credentials.append(item)
    return item


@transaction.atomic
def apply_import(plan):
    """Create and update what the plan says (merging: nothing is removed). Returns the plan's counts."""
    credentials = {}
    for item in plan.credentials:
        credential = Credential(name=item["name"], kind=item["kind"], username=item.get("username", ""),
                                description=f"Imported from an Ansible inventory{' (' + item['source'] + ')' if item.get('source') else ''}")
        credential.set_secret(item["secret"])
        credential.save()
        credentials[credential.name] = credential
    groups = {group.name: group for group in Group.objects.filter(name__in=[item["name"] for item in plan.groups])}
    for item in plan.groups:
        group = groups.get(item["name"])
        if group is None:
            group = groups[item["name"]] = Group.objects.create(name=item["name"], variables=item["variables"])
        elif group.variables != item["variables"]:
            group.variables = item["variables"]
            group.save()
    for item in plan.groups:
        wanted = [groups[name] for name in item["children"] if name in groups]
        have = set(groups[item["name"]].children.values_list("pk", flat=True))
        missing = [group for group in wanted if group.pk not in have]
        if missing:
            groups[item["name"]].children.add(*missing)
    servers = {server.name: server for server in Server.objects.filter(name__in=[item["name"] for item in plan.servers])}
    pending_jumps = []
    for item in plan.servers:
        server = servers.get(item["name"])
        credential = None
        if item.get("credential"):
            credential = credentials.get(item["credential"]) or Credential.objects.filter(name=item["credential"]).first()
        if server is None:
            server = Server(name=item["name"], **item["fields"], variables=item["variables"], credential=credential)
            server.full_clean(exclude=[f.name for f in Server._meta.fields if f.name not in ("name", "address", "port", "user")], validate_unique=False)
            server.save()
            servers[server.name] = server
        elif item["action"] == "update" or (credential and server.credential_id != credential.pk):
            for key, value in item["fields"].items():
                setattr(server, key, value)
            server.variables = item["variables"]
            if credential is not None:
                server.credential = credential
            server.save()
        have = set(server.groups.values_list("name", flat=True))
        missing = [groups[name] for name in item["groups"] if name not in have and name in groups]
        if missing:
            server.groups.add(*missing)
        if item.get("jump_host"):
            pending_jumps.append((server, item["jump_host"]))
    for server, jump_name in pending_jumps:
        jump = servers.get(jump_name) or Server.objects.filter(name=jump_name).first()
        if jump is not None and jump.pk != server.pk and server.jump_host_id != jump.pk:
            server.jump_host = jump
            server.save()
    return plan.counts


# ---- export -----------------------------------------------------------------------------------------


def _inventory_rows(servers=None):
    servers = servers if servers is not None else Server.objects.all()
    servers = list(servers.select_related("jump_host").prefetch_related("groups").order_by("name"))
    groups = list(Group.objects.prefetch_related("children").order_by("name"))
    return servers, groups


def _host_vars(server):
    variables = {}
    if server.address != server.name:
        variables["ansible_host"] = server.address
    if server.port != 22:
        variables["ansible_port"] = server.port
    variables["ansible_user"] = server.user
    if server.become:
        variables["ansible_become"] = True
    if server.jump_host_id:
        jump = server.jump_host
        variables["ansible_ssh_common_args"] = f"-o ProxyJump={jump.user}@{jump.address}:{jump.port}"
        variables[JUMP_KEY] = jump.name
    variables.update(server.variables or {})
    return variables


def export_dynamic(servers=None):
    """The JSON an Ansible dynamic inventory script prints for --list."""
    servers, groups = _inventory_rows(servers)
    names = {server.name for server in servers}
    data = {"_meta": {"hostvars": {server.name: _host_vars(server) for server in servers}}}
    child_names = {child.name for group in groups for child in group.children.all()}
    top = []
    for group in groups:
        if group.name in IMPLICIT_GROUPS:
            continue
        entry = {"hosts": sorted(server.name for server in group.servers.all() if server.name in names)}
        if group.variables:
            entry["vars"] = group.variables
        children = sorted(child.name for child in group.children.all())
        if children:
            entry["children"] = children
        data[group.name] = entry
        if group.name not in child_names:
            top.append(group.name)
    ungrouped = sorted(server.name for server in servers if not any(g.name not in IMPLICIT_GROUPS for g in server.groups.all()))
    data["all"] = {"children": ["ungrouped", *top]}
    all_group = next((group for group in groups if group.name == "all"), None)
    if all_group is not None and all_group.variables:
        data["all"]["vars"] = all_group.variables
    data["ungrouped"] = {"hosts": ungrouped}
    return data


def _ini_value(value):
    """A value written so that parse_value reads back exactly the same value and type."""
    if isinstance(value, str):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            parsed = value
        if not isinstance(parsed, str) or parsed != value:  # "1" or "True" would come back as a number or a bool
            return shlex.quote(repr(value))
        return shlex.quote(value) if value == "" or re.search(r"[\s'\"#;\\]", value) else value
    if isinstance(value, (dict, list, tuple)):
        return shlex.quote(repr(json.loads(json.dumps(value))))
    return shlex.quote(repr(value))


def _ini_vars_value(value):
    """A [group:vars] value (read whole, without shell-like splitting) that reads back the same."""
    if isinstance(value, str) and value == value.strip() and value and parse_value(value) == value:
        return value
    return repr(json.loads(json.dumps(value)) if isinstance(value, (dict, list, tuple)) else value)


def export_ini(servers=None):
    servers, groups = _inventory_rows(servers)
    lines = ["# Exported by Filrouge"]
    written = set()

    def host_line(server):
        if server.name in written:
            return server.name
        written.add(server.name)
        pairs = " ".join(f"{key}={_ini_value(value)}" for key, value in _host_vars(server).items())
        return f"{server.name} {pairs}".strip()

    ungrouped = [server for server in servers if not any(g.name not in IMPLICIT_GROUPS for g in server.groups.all())]
    if ungrouped:
        lines += ["", "[ungrouped]"] + [host_line(server) for server in ungrouped]
    names = {server.name for server in servers}
    by_group = {}
    for server in servers:
        for group in server.groups.all():
            by_group.setdefault(group.name, []).append(server)
    for group in groups:
        if group.name in IMPLICIT_GROUPS:
            continue
        lines += ["", f"[{group.name}]"] + [host_line(server) for server in by_group.get(group.name, []) if server.name in names]
        children = sorted(child.name for child in group.children.all())
        if children:
            lines += ["", f"[{group.name}:children]"] + children
        if group.variables:
            lines += ["", f"[{group.name}:vars]"] + [f"{key}={_ini_vars_value(value)}" for key, value in group.variables.items()]
    all_group = next((group for group in groups if group.name == "all"), None)
    if all_group is not None and all_group.variables:
        lines += ["", "[all:vars]"] + [f"{key}={_ini_vars_value(value)}" for key, value in all_group.variables.items()]
    return "\n".join(lines) + "\n"


def export_yaml(servers=None):
    servers, groups = _inventory_rows(servers)
    names = {server.name for server in servers}
    child_names = {child.name for group in groups for child in group.children.all()}
    by_name = {group.name: group for group in groups}

    def group_body(group, seen):
        body = {}
        hosts = {server.name: (_host_vars(server) or None) for server in servers if any(g.pk == group.pk for g in server.groups.all())}
        if hosts:
            body["hosts"] = hosts
        if group.variables:
            body["vars"] = group.variables
        children = {}
        for child in sorted(group.children.all(), key=lambda g: g.name):
            if child.name not in seen:
                children[child.name] = group_body(by_name[child.name], seen | {child.name})
        if children:
            body["children"] = children
        return body or None

    top = {}
    ungrouped = {server.name: _host_vars(server) or None for server in servers
                 if not any(g.name not in IMPLICIT_GROUPS for g in server.groups.all()) and server.name in names}
    if ungrouped:
        top["ungrouped"] = {"hosts": ungrouped}
    for group in groups:
        if group.name not in IMPLICIT_GROUPS and group.name not in child_names:
            top[group.name] = group_body(group, {group.name})
    document = {"all": {"children": top}}
    if "all" in by_name and by_name["all"].variables:
        document["all"]["vars"] = by_name["all"].variables
    return "# Exported by Filrouge\n" + yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True)
