"""What Ansible itself knows: its keywords, its modules (with the installed collections), its lookups.

The native engine runs a subset; for the rest the same playbook goes to ansible-runner.
To tell "not native but fine for Ansible" from "wrong for Ansible too" without running
`ansible-playbook --syntax-check` on every form submit, we ask ansible-core's own tables
(keyword attributes of Play/Block/Task, its plugin loader) in this process. The answers
are cached: the plugin loader costs about half a second the first time.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

from clusters import conf

_lock = threading.Lock()
_ready = False


def collections_paths():
    """Where collections are looked for: the configured paths that exist (Debian's `ansible` package ships many)."""
    return [path for path in conf.ANSIBLE_COLLECTIONS_PATHS if Path(path).is_dir()]


def ansible_environment():
    """Environment variables that make ansible-core here see the same collections as the loader did."""
    paths = collections_paths()
    return {"ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(paths)} if paths else {}


def _prepare_environment():
    """ansible-core reads its configuration once, at import: the collections path must be set before."""
    for key, value in ansible_environment().items():
        os.environ.setdefault(key, value)


def available():
    try:
        import ansible  # noqa: F401
    except ImportError:
        return False
    return True


def _init():
    global _ready
    with _lock:
        if _ready:
            return
        _prepare_environment()
        from ansible.plugins.loader import init_plugin_loader

        init_plugin_loader()
        _ready = True


@lru_cache(maxsize=1)
def keywords():
    """{"play": set, "block": set, "task": set, "role": set} as ansible-core defines them."""
    if not available():
        return None
    _prepare_environment()
    from ansible.playbook.block import Block
    from ansible.playbook.play import Play
    from ansible.playbook.role.include import RoleInclude
    from ansible.playbook.task import Task

    return {
        "play": set(Play.fattributes) | {"import_playbook", "hosts"},
        "block": set(Block.fattributes),
        "task": set(Task.fattributes) | {"local_action", "action"},
        "role": set(RoleInclude.fattributes),
    }


@lru_cache(maxsize=2048)
def module_known(name):
    """The fully qualified name Ansible resolves `name` to, or "" when it knows no such module or action."""
    if not available():
        return ""
    _init()
    import warnings

    from ansible.plugins.loader import action_loader, module_loader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            found = module_loader.find_plugin_with_context(name)
            if found.resolved:
                return found.resolved_fqcn or name
            action = action_loader.find_plugin_with_context(name)
            if action.resolved:
                return action.resolved_fqcn or name
        except Exception:  # a broken collection on the machine must not break validation
            return ""
    return ""


@lru_cache(maxsize=512)
def lookup_known(name):
    if not available():
        return False
    _init()
    from ansible.plugins.loader import lookup_loader

    try:
        return bool(lookup_loader.find_plugin_with_context(name).resolved)
    except Exception:
        return False
