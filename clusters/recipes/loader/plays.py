"""Reading plays: playbooks, import_playbook, play keywords, serial, vars_files, vars_prompt."""

from __future__ import annotations

import re

from .keywords import MAX_INCLUDE_DEPTH, NATIVE_PLAY_KEYWORDS, RECIPE_KEYWORDS
from .marked_yaml import LineList, MarkedText
from .model import Play, add_tags, flush_handlers_task, leaf_tasks
from .scope import Scope
from .values import as_list, as_number, read_bool, tag_set


class PlayReading:
    """The reader's verbs for plays (Reader combines them)."""

    def playbook(self, data, source, directory, depth=0):
        plays = []
        for item in data:
            if not isinstance(item, dict):
                self.problem(source, getattr(item, "line", 0), None, "a play must be a mapping such as `- hosts: web`.")
                continue
            if "import_playbook" in item:
                plays.extend(self.import_playbook(item, source, directory, depth))
            elif "include" in item and "hosts" not in item:
                line, column = item.mark_of("include")
                self.problem(source, line, column, f"the play-level `include` was removed from Ansible (2.16); write "
                                                   f"`import_playbook: {item.get('include')}` instead.")
            else:
                play = self.play(item, source, directory)
                if play is not None:
                    plays.append(play)
        return plays

    def import_playbook(self, item, source, directory, depth):
        line, column = item.mark_of("import_playbook")
        name = item.get("import_playbook")
        extra = set(item) - {"import_playbook", "name", "vars", "tags", "when"}
        if extra:
            key = sorted(extra, key=str)[0]
            self.problem(source, *item.mark_of(key), f"{key!r} is not valid beside import_playbook.")
        if not isinstance(name, str) or not name:
            self.problem(source, line, column, "import_playbook needs a file name.")
            return []
        if "{{" in name:
            self.fallback(source, line, "import_playbook with a templated file name is not native")
            return []
        if depth > MAX_INCLUDE_DEPTH:
            self.problem(source, line, column, "import_playbook nests too deeply (a loop?).")
            return []
        if self.base_dir is None and directory is None:
            self.problem(source, line, column, f"import_playbook {name} needs the project folder; upload the project (zip or tar.gz) "
                                               "or run the playbook from its folder.")
            return []
        path = (directory or self.base_dir) / name
        if not path.is_file() and name.count(".") >= 2 and "/" not in name:
            self.fallback(source, line, f"import_playbook of the collection playbook {name} is not native")
            return []
        if not path.is_file():
            self.problem(source, line, column, f"import_playbook: {name} not found (looked for {self.label_of(path)}).")
            return []
        data, label = self.read_yaml_file(path, source, line, column, "playbook")
        if data is None:
            return []
        if not isinstance(data, list):
            self.problem(label, 1, None, "a playbook must be a list of plays.")
            return []
        plays = self.playbook(data, label, path.parent, depth + 1)
        extra_vars = dict(item.get("vars") or {}) if isinstance(item.get("vars"), dict) else {}
        extra_tags = tag_set(item.get("tags"))
        for play in plays:
            play.vars = {**play.vars, **extra_vars}
            if item.get("when") is not None:
                for task in play.tasks:
                    task.when = [item["when"], *task.when]
            if extra_tags:
                add_tags(play.tasks, extra_tags)
        return plays

    def play(self, data, source, directory, recipe_shape=False):
        allowed = RECIPE_KEYWORDS if recipe_shape else None
        ansible_known = self.ansible_keywords("play")
        for key in data:
            line, column = data.mark_of(key)
            if recipe_shape:
                if key not in allowed:
                    self.problem(source, line, column, f"unknown recipe keyword {key!r}. Known: {', '.join(sorted(allowed))}.")
                continue
            if key in NATIVE_PLAY_KEYWORDS:
                continue
            if ansible_known is not None and key in ansible_known:
                self.fallback(source, line, f"play keyword {key} is not native")
                continue
            known = sorted(ansible_known or NATIVE_PLAY_KEYWORDS)
            self.problem(source, line, column, f"{key!r} is not a play keyword. Play keywords: {', '.join(known)}.")
        if "hosts" not in data and not recipe_shape:
            self.problem(source, data.line, data.column, "a play needs `hosts:` (a group, a host name, or all).")
        hosts = data.get("hosts")
        if isinstance(hosts, list):
            hosts = ",".join(str(item) for item in hosts)
        if hosts is not None and re.search(r"\[|~|\{\{", str(hosts)):
            self.fallback(source, data.mark_of("hosts")[0], f"the host pattern {hosts!r} is not native")
        variables = data.get("vars") or {}
        if not isinstance(variables, dict):
            self.problem(source, *data.mark_of("vars"), "vars must be a mapping.")
            variables = {}
        variables = dict(variables)
        variables.update(self.vars_files(data, source, directory))
        prompts = self.vars_prompt(data, source)
        become = read_bool(self, data.get("become", False), source, data.mark_of("become"), "become")
        become_user = self.become_user(data, source)
        connection = str(data.get("connection") or "ssh")
        if connection not in ("ssh", "local", "smart", "paramiko", "paramiko_ssh", "ansible.builtin.ssh", "ansible.builtin.local"):
            self.fallback(source, data.mark_of("connection")[0], f"connection {connection} is not native")
        local = connection.endswith("local")
        strategy = data.get("strategy")
        if strategy is not None and str(strategy).rsplit(".", 1)[-1] not in ("linear", "free"):
            self.fallback(source, data.mark_of("strategy")[0], f"strategy {strategy} is not native")
        gather = data.get("gather_facts")
        gather_facts = None if gather is None and not recipe_shape else read_bool(self, gather or False, source, data.mark_of("gather_facts"), "gather_facts")
        scope = Scope(source=source, directory=directory, tags=tag_set(data.get("tags")), become=None, local=local,
                       environment=data.get("environment"),
                       ignore_errors=read_bool(self, data["ignore_errors"], source, data.mark_of("ignore_errors"), "ignore_errors") if "ignore_errors" in data else None,
                       no_log=read_bool(self, data["no_log"], source, data.mark_of("no_log"), "no_log") if "no_log" in data else None,
                       check_mode=read_bool(self, data["check_mode"], source, data.mark_of("check_mode"), "check_mode") if "check_mode" in data else None,
                       search_dirs=tuple(path for path in (directory,) if path))
        tasks, handlers = [], []
        pre = self.task_list(data, "pre_tasks", scope)
        if pre:
            tasks.extend(pre)
            tasks.append(flush_handlers_task())
        roles = data.get("roles")
        for index, role_item in enumerate(as_list(roles)):
            if isinstance(role_item, str) and isinstance(roles, LineList):
                role_item = MarkedText(role_item, roles.line + index, roles.column + 2)
            role_tasks, role_handlers = self.role_from_play(role_item, data, source, scope)
            tasks.extend(role_tasks)
            handlers.extend(role_handlers)
        tasks.extend(self.task_list(data, "tasks", scope))
        post = self.task_list(data, "post_tasks", scope)
        if post:
            tasks.append(flush_handlers_task())
            tasks.extend(post)
        handlers.extend(self.task_list(data, "handlers", scope, handlers=True))
        handlers = self.role_handlers + handlers
        self.role_handlers = []
        self.check_notify(tasks, handlers)
        timeout = data.get("timeout")
        if timeout:
            for task in leaf_tasks(tasks):
                task.timeout = task.timeout or as_number(timeout)
        return Play(
            name=str(data.get("name") or ""), hosts=str(hosts) if hosts is not None else None, tasks=tasks, handlers=handlers,
            vars=variables, become=become, become_user=become_user, gather_facts=gather_facts, line=data.line,
            gather_args={key: data[key] for key in ("gather_subset", "gather_timeout") if data.get(key) is not None},
            remote_user=str(data.get("remote_user") or ""), connection="local" if local else "ssh",
            serial=self.serial(data, source), vars_prompt=prompts,
        )

    def serial(self, data, source):
        value = data.get("serial")
        if value in (None, "", 0):
            return []
        items = value if isinstance(value, list) else [value]
        batches = []
        for item in items:
            text = str(item).strip()
            if re.fullmatch(r"\d+%?", text):
                batches.append(text)
            elif "{{" in text:
                self.fallback(source, data.mark_of("serial")[0], "a templated serial is not native")
                return []
            else:
                self.problem(source, *data.mark_of("serial"), f"serial must be a number, a percentage or a list of them, not {item!r}.")
        return batches

    def become_user(self, data, source):
        method = data.get("become_method")
        if method is not None and str(method).rsplit(".", 1)[-1] != "sudo":
            self.fallback(source, data.mark_of("become_method")[0], f"become_method {method} is not native (sudo is)")
        user = data.get("become_user")
        return str(user) if user not in (None, "") else None

    def vars_files(self, data, source, directory):
        merged = {}
        line, column = data.mark_of("vars_files")
        for entry in as_list(data.get("vars_files")):
            names = entry if isinstance(entry, list) else [entry]  # a list: the first that exists
            if any("{{" in str(name) for name in names):
                self.fallback(source, line, "vars_files with a templated name is not native")
                continue
            if self.base_dir is None and directory is None:
                self.problem(source, line, column, f"vars_files {names[0]} needs the project folder; upload the project "
                                                   "(zip or tar.gz) or run the playbook from its folder.")
                continue
            found = next((path for name in names if (path := (directory or self.base_dir) / str(name)).is_file()), None)
            if found is None:
                self.problem(source, line, column, f"vars_files: {', '.join(map(str, names))} not found.")
                continue
            loaded, label = self.read_yaml_file(found, source, line, column, "vars file")
            if loaded is None:
                continue
            if not isinstance(loaded, dict):
                self.problem(label, 1, None, "a vars file must be a mapping of names to values.")
                continue
            merged.update(loaded)
        return merged

    def vars_prompt(self, data, source):
        prompts = []
        for item in as_list(data.get("vars_prompt")):
            if not isinstance(item, dict) or "name" not in item:
                self.problem(source, *data.mark_of("vars_prompt"), "each vars_prompt entry needs a name.")
                continue
            prompts.append({"name": str(item["name"]), "default": item.get("default"), "private": item.get("private", True)})
        return prompts
