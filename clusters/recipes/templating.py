"""Jinja2 for recipes, in a sandbox (recipes come from users; the panel's process is not theirs).

Also `scan`: what a template needs (filters, tests, lookups, facts, hostvars) so the loader
can tell, before anything runs, whether the native engine can render it or the playbook
must go to ansible-runner.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from functools import lru_cache

import yaml
from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.nativetypes import NativeCodeGenerator, native_concat, NativeTemplate
from jinja2.sandbox import ImmutableSandboxedEnvironment

from panel.lib import safe_yaml

from .modules import TaskFailed, to_bool


def _test_changed(result):
    return bool(isinstance(result, dict) and result.get("changed"))


def _test_failed(result):
    return bool(isinstance(result, dict) and result.get("failed"))


def _test_skipped(result):
    return bool(isinstance(result, dict) and result.get("skipped"))


def _test_succeeded(result):
    return isinstance(result, dict) and not result.get("failed")


def _filter_bool(value):
    try:
        return to_bool(value)
    except TaskFailed:
        return bool(value)


def _mandatory(value, msg=None):
    return value


def _combine(*dicts, recursive=False, list_merge="replace"):
    result = {}
    for item in dicts:
        for entry in item if isinstance(item, list) else [item]:
            result = _merge(result, entry or {}, recursive)
    return result


def _merge(left, right, recursive):
    merged = dict(left)
    for key, value in right.items():
        if recursive and isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = _merge(merged[key], value, True)
        else:
            merged[key] = value
    return merged


def _flatten(value, levels=None):
    result = []
    for item in value:
        if isinstance(item, (list, tuple)) and (levels is None or levels > 0):
            result.extend(_flatten(item, None if levels is None else levels - 1))
        elif item is not None:
            result.append(item)
    return result


def _ternary(value, true_value, false_value, none_value=None):
    if value is None and none_value is not None:
        return none_value
    return true_value if value else false_value


def _regex_search(value, pattern, *groups, ignorecase=False, multiline=False):
    flags = (re.I if ignorecase else 0) | (re.M if multiline else 0)
    match = re.search(pattern, str(value), flags)
    if not match:
        return None
    if not groups:
        return match.group(0)
    picked = [match.group(int(group[1:]) if group.startswith("\\") else group) for group in groups]
    return picked


def _version_test(value, version, operator="eq", strict=None, version_type=None):
    from packaging.version import InvalidVersion, Version

    operators = {"eq": "__eq__", "==": "__eq__", "ne": "__ne__", "!=": "__ne__", "<>": "__ne__", "lt": "__lt__", "<": "__lt__",
                 "le": "__le__", "<=": "__le__", "gt": "__gt__", ">": "__gt__", "ge": "__ge__", ">=": "__ge__"}
    try:
        left, right = Version(str(value)), Version(str(version))
    except InvalidVersion:
        left, right = [int(part) if part.isdigit() else part for part in re.split(r"[.\-]", str(value))], \
                      [int(part) if part.isdigit() else part for part in re.split(r"[.\-]", str(version))]
    return getattr(left, operators[operator])(right)


FILTERS = {
    "bool": _filter_bool, "quote": lambda value: shlex.quote(str(value)), "to_json": lambda value, **kw: json.dumps(value, **kw),
    "to_yaml": lambda value, **kw: yaml.safe_dump(value, default_flow_style=False, **kw),
    "to_nice_yaml": lambda value, indent=4, **kw: yaml.safe_dump(value, default_flow_style=False, indent=indent, sort_keys=True),
    "to_nice_json": lambda value, indent=4, **kw: json.dumps(value, indent=indent, sort_keys=True),
    "from_json": lambda value: json.loads(value), "from_yaml": lambda value: safe_yaml.safe_load(value),
    "basename": lambda value: os.path.basename(str(value)), "dirname": lambda value: os.path.dirname(str(value)),
    "splitext": lambda value: list(os.path.splitext(str(value))),
    "regex_replace": lambda value, pattern, replacement="", ignorecase=False, multiline=False: re.sub(
        pattern, replacement, str(value), flags=(re.I if ignorecase else 0) | (re.M if multiline else 0)),
    "regex_search": _regex_search, "regex_findall": lambda value, pattern, ignorecase=False, multiline=False: re.findall(
        pattern, str(value), (re.I if ignorecase else 0) | (re.M if multiline else 0)),
    "regex_escape": lambda value: re.escape(str(value)),
    "mandatory": _mandatory, "combine": _combine, "flatten": _flatten, "ternary": _ternary,
    "dict2items": lambda value, key_name="key", value_name="value": [{key_name: k, value_name: v} for k, v in value.items()],
    "items2dict": lambda value, key_name="key", value_name="value": {item[key_name]: item[value_name] for item in value},
    "b64encode": lambda value: base64.b64encode(str(value).encode()).decode(),
    "b64decode": lambda value: base64.b64decode(str(value)).decode(errors="replace"),
    "hash": lambda value, kind="sha1": hashlib.new(kind, str(value).encode()).hexdigest(),
    "md5": lambda value: hashlib.md5(str(value).encode()).hexdigest(),  # noqa: S324 - as Ansible's filter
    "sha1": lambda value: hashlib.sha1(str(value).encode()).hexdigest(),  # noqa: S324 - as Ansible's filter
    "checksum": lambda value: hashlib.sha1(str(value).encode()).hexdigest(),  # noqa: S324 - as Ansible's filter
    "difference": lambda a, b: [item for item in a if item not in b],
    "intersect": lambda a, b: [item for item in dict.fromkeys(a) if item in b],
    "union": lambda a, b: list(dict.fromkeys([*a, *b])),
    "symmetric_difference": lambda a, b: [item for item in dict.fromkeys([*a, *b]) if (item in a) != (item in b)],
    "type_debug": lambda value: type(value).__name__,
    "zip": lambda *lists: [list(item) for item in zip(*lists)],
}
TESTS = {"changed": _test_changed, "failed": _test_failed, "skipped": _test_skipped, "succeeded": _test_succeeded,
         "success": _test_succeeded, "successful": _test_succeeded, "change": _test_changed, "failure": _test_failed,
         "skip": _test_skipped,
         "match": lambda value, pattern, ignorecase=False, multiline=False: bool(re.match(pattern, str(value), (re.I if ignorecase else 0) | (re.M if multiline else 0))),
         "search": lambda value, pattern, ignorecase=False, multiline=False: bool(re.search(pattern, str(value), (re.I if ignorecase else 0) | (re.M if multiline else 0))),
         "regex": lambda value, pattern, ignorecase=False, multiline=False, match_type="search": bool(
             getattr(re, match_type)(pattern, str(value), (re.I if ignorecase else 0) | (re.M if multiline else 0))),
         "version": _version_test, "version_compare": _version_test,
         "subset": lambda a, b: set(a) <= set(b), "superset": lambda a, b: set(a) >= set(b),
         "contains": lambda seq, value: value in seq, "any": any, "all": all}


def _setup(env):
    env.filters.update(FILTERS)
    env.tests.update(TESTS)
    return env


class NativeSandbox(ImmutableSandboxedEnvironment):
    """Whole-value expressions keep their type ("{{ packages }}" stays a list), as in Ansible."""

    code_generator_class = NativeCodeGenerator
    concat = staticmethod(native_concat)
    template_class = NativeTemplate


VALUE_ENV = _setup(NativeSandbox(undefined=StrictUndefined, keep_trailing_newline=True))
TEXT_ENV = _setup(ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True))
STRING_ENV = _setup(ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True))

SINGLE_EXPRESSION = re.compile(r"\{\{((?!\}\}).)*\}\}", re.S)


@lru_cache(maxsize=4096)
def compiled(kind, source):
    """Compiling costs about a millisecond; the same task runs on every host, so compile once."""
    if kind == "expression":
        return VALUE_ENV.compile_expression(source)
    return {"value": VALUE_ENV, "string": STRING_ENV, "text": TEXT_ENV}[kind].from_string(source)


def render_value(value, variables):
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        if SINGLE_EXPRESSION.fullmatch(value):  # "{{ packages }}" keeps its type (a list stays a list)
            return compiled("value", value).render(**variables)
        return compiled("string", value).render(**variables)
    if isinstance(value, list):
        return [render_value(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: render_value(item, variables) for key, item in value.items()}
    return value


def evaluate(expression, variables):
    """A `when` / `changed_when` condition: a bare Jinja2 expression, or a list of them (all must hold)."""
    if isinstance(expression, bool):
        return expression
    if isinstance(expression, list):
        return all(evaluate(item, variables) for item in expression)
    if expression is None:
        return False
    text = str(expression).strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2]
    value = compiled("expression", text)(**variables)
    if isinstance(value, str):
        try:
            return to_bool(value)
        except TaskFailed:
            return bool(value)
    return bool(value)


# ---- facts: ours, under the names Ansible gives them ---------------------------------------------

OS_FAMILIES = {"debian": "Debian", "ubuntu": "Debian", "linuxmint": "Debian", "raspbian": "Debian", "rhel": "RedHat",
               "centos": "RedHat", "fedora": "RedHat", "rocky": "RedHat", "almalinux": "RedHat", "ol": "RedHat", "amzn": "RedHat",
               "alpine": "Alpine", "arch": "Archlinux", "opensuse-leap": "Suse", "sles": "Suse"}


def ansible_facts(facts):
    """Our facts (clusters.inventory.facts) as Ansible's: distribution, os_family, hostname, memtotal_mb..."""
    os_info = facts.get("os") or {}
    version = str(os_info.get("version") or "")
    ident = str(os_info.get("id") or "")
    memory = facts.get("memory") or {}
    addresses = facts.get("addresses") or []
    ipv4 = [item.get("address") for item in addresses if isinstance(item, dict) and ":" not in str(item.get("address", ""))] \
        if addresses and isinstance(addresses[0], dict) else [str(item) for item in addresses if ":" not in str(item)]
    total = memory.get("total_bytes")
    result = {
        "distribution": (os_info.get("name") or "").split(" ")[0] or ident.capitalize(),
        "distribution_version": version, "distribution_major_version": version.split(".")[0] if version else "",
        "distribution_release": os_info.get("codename") or "", "os_family": OS_FAMILIES.get(ident, ident.capitalize()),
        "hostname": str(facts.get("hostname") or "").split(".")[0], "nodename": facts.get("hostname") or "",
        "fqdn": facts.get("hostname") or "", "kernel": str(facts.get("kernel") or "").split(" ")[-1],
        "system": "Linux", "processor_vcpus": facts.get("cpus"), "processor_cores": facts.get("cpus"),
        "memtotal_mb": int(total / 1048576) if total else None, "service_mgr": facts.get("init") or "",
        "all_ipv4_addresses": [address for address in ipv4 if address and not address.startswith("127.")],
        "python_version": facts.get("python") or "",
    }
    return result


NATIVE_FACTS = set(ansible_facts({}))
# Variables named ansible_* that are not facts (the inventory and the run define them).
CONNECTION_VARIABLES = {
    "ansible_host", "ansible_port", "ansible_user", "ansible_check_mode", "ansible_become", "ansible_become_user",
    "ansible_python_interpreter", "ansible_connection", "ansible_ssh_private_key_file", "ansible_facts",
    "ansible_play_hosts", "ansible_play_batch", "ansible_loop", "ansible_play_hosts_all", "ansible_version",
    "ansible_hostname_short", "ansible_diff_mode", "ansible_verbosity", "ansible_run_tags", "ansible_skip_tags",
    "ansible_become_password", "ansible_password", "ansible_ssh_user", "ansible_ssh_host", "ansible_ssh_port",
    "ansible_role_name", "ansible_parent_role_names", "ansible_playbook_python", "ansible_forks", "ansible_limit",
    "ansible_inventory_sources", "ansible_config_file", "ansible_loop_var", "ansible_index_var", "ansible_search_path",
    "ansible_play_name", "ansible_dependent_role_names", "ansible_role_names", "ansible_collection_name",
}


@dataclass
class ScanResult:
    filters: set = field(default_factory=set)
    tests: set = field(default_factory=set)
    lookups: set = field(default_factory=set)
    facts: bool = False
    facts_missing: set = field(default_factory=set)
    hostvars: bool = False
    error: str = ""


@lru_cache(maxsize=4096)
def scan(text, expression=False, whole_file=False):
    """What a template (or a bare `when` expression) needs that the native engine may not have."""
    result = ScanResult()
    if not isinstance(text, str):
        return result
    if expression:
        stripped = text.strip()
        source = stripped if stripped.startswith("{{") else "{{ " + stripped + " }}"
    elif "{{" in text or "{%" in text:
        source = text
    else:
        return result
    try:
        tree = STRING_ENV.parse(source)
    except TemplateError as exc:
        result.error = str(exc)
        return result
    for node in tree.find_all(nodes.Filter):
        if node.name not in STRING_ENV.filters:
            result.filters.add(node.name)
    for node in tree.find_all(nodes.Test):
        if node.name not in STRING_ENV.tests:
            result.tests.add(node.name)
    for node in tree.find_all(nodes.Call):
        if isinstance(node.node, nodes.Name) and node.node.name in ("lookup", "query", "q"):
            first = node.args[0] if node.args else None
            result.lookups.add(first.value if isinstance(first, nodes.Const) else node.node.name)
    for node in tree.find_all(nodes.Name):
        name = node.name
        if name == "hostvars":
            result.hostvars = True
        elif name.startswith("ansible_") and name not in CONNECTION_VARIABLES:
            result.facts = True
            if name[len("ansible_"):] not in NATIVE_FACTS:
                result.facts_missing.add(name)
        elif name == "ansible_facts":
            result.facts = True
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node.node, nodes.Name) and node.node.name == "ansible_facts":
            result.facts = True
            key = node.attr if isinstance(node, nodes.Getattr) else (node.arg.value if isinstance(node.arg, nodes.Const) else None)
            if key is not None and str(key) not in NATIVE_FACTS:
                result.facts_missing.add(f"ansible_facts.{key}")
    return result
