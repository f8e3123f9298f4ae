"""Reading tasks: keywords, modules and their arguments, loops, blocks, includes, notify."""

from __future__ import annotations

from dataclasses import replace

from .. import ansible_compat
from ..modules import INTERNAL_MODULES, MODULES, ModuleSpecError, resolve_module
from .arguments import free_form_args, split_action, split_args
from .keywords import INCLUDES, LOCALHOST, MAX_INCLUDE_DEPTH, NATIVE_BLOCK_KEYWORDS, NATIVE_LOOPS, NATIVE_TASK_KEYWORDS
from .marked_yaml import LineDict, with_marks
from .model import Task, leaf_tasks
from .values import as_list, as_number, read_bool, tag_set


class TaskReading:
    """The reader's verbs for tasks (Reader combines them)."""

    def task_list(self, data, key, scope, handlers=False):
        items = data.get(key)
        if items is None:
            return []
        if not isinstance(items, list):
            self.problem(scope.source, *data.mark_of(key), f"{key} must be a list.")
            return []
        return self.tasks(items, scope, handlers=handlers)

    def tasks(self, items, scope, handlers=False):
        result = []
        for item in items:
            result.extend(self.task(item, scope, handlers))
        return result

    def child_scope(self, scope, data, source):
        """Keywords a block, include or role hands down to what it contains."""
        if not isinstance(data, dict):
            return scope
        mark = data.mark_of if isinstance(data, LineDict) else (lambda key: (getattr(data, "line", 0), None))
        when = scope.when + tuple(as_list(data.get("when"))) if data.get("when") is not None else scope.when
        variables = {**scope.vars, **data["vars"]} if isinstance(data.get("vars"), dict) else scope.vars
        local = scope.local
        if data.get("connection") is not None:
            local = str(data["connection"]).endswith("local")
        if data.get("delegate_to") is not None:
            local = self.delegate_local(data, source) or local
        if data.get("become_method") is not None and str(data["become_method"]).rsplit(".", 1)[-1] != "sudo":
            self.fallback(source, mark("become_method")[0], f"become_method {data['become_method']} is not native (sudo is)")
        return replace(
            scope, when=when, tags=scope.tags | tag_set(data.get("tags")), vars=variables,
            become=read_bool(self, data["become"], source, mark("become"), "become") if "become" in data else scope.become,
            become_user=str(data["become_user"]) if data.get("become_user") else scope.become_user,
            local=local, environment=data.get("environment", scope.environment),
            ignore_errors=read_bool(self, data["ignore_errors"], source, mark("ignore_errors"), "ignore_errors") if "ignore_errors" in data else scope.ignore_errors,
            no_log=read_bool(self, data["no_log"], source, mark("no_log"), "no_log") if "no_log" in data else scope.no_log,
            check_mode=read_bool(self, data["check_mode"], source, mark("check_mode"), "check_mode") if "check_mode" in data else scope.check_mode,
        )

    def delegate_local(self, data, source):
        target = str(data.get("delegate_to"))
        if target in LOCALHOST:
            return True
        self.fallback(source, data.mark_of("delegate_to")[0], f"delegate_to {target} is not native (only localhost is)")
        return False

    def task(self, data, scope, handlers=False):
        source = scope.source
        if not isinstance(data, dict):
            self.problem(source, getattr(data, "line", 0), None, "a task must be a mapping such as `- name: ...` with one module.")
            return []
        if "block" in data:
            return self.block(data, scope, handlers)
        ansible_task = self.ansible_keywords("task")
        task_keywords = (ansible_task | {"listen"}) if ansible_task is not None else NATIVE_TASK_KEYWORDS
        name = str(data.get("name") or "")
        loop_keys = [key for key in data if isinstance(key, str) and key.startswith("with_")]
        action_keys = [key for key in data if key not in task_keywords and key not in loop_keys]
        if "action" in data or "local_action" in data:
            action_keys = [key for key in action_keys if key not in ("action", "local_action")] + [k for k in ("action", "local_action") if k in data]
        for key in data:
            if key in task_keywords and key not in NATIVE_TASK_KEYWORDS and key not in ("action", "local_action"):
                self.fallback(source, data.mark_of(key)[0], f"task keyword {key} is not native")
        if "include" in action_keys:
            line, column = data.mark_of("include")
            self.problem(source, line, column, "the task-level `include` was removed from Ansible (2.16); write include_tasks or import_tasks.")
            return []
        if not action_keys:
            self.problem(source, data.line, data.column, f"task {name!r} names no module (no action found among {', '.join(map(str, data))}).")
            return []
        if len(action_keys) > 1:
            key = action_keys[1]
            self.problem(source, *data.mark_of(key),
                         f"task {name!r} has several modules or an unknown keyword ({', '.join(map(str, action_keys))}); a task uses one "
                         f"module. Task keywords: {', '.join(sorted(task_keywords))}.")
            return []
        key = action_keys[0]
        line, column = data.mark_of(key)
        raw = data[key]
        module_name = str(key)
        local = False
        if key in ("action", "local_action"):
            local = key == "local_action"
            module_name, raw = split_action(raw)
            if not module_name:
                self.problem(source, line, column, f"{key} needs a module, such as `{key}: command echo hi`.")
                return []
        inherited = ("become", "become_user", "become_method", "environment", "connection", "delegate_to")
        inner = self.child_scope(scope, with_marks({k: v for k, v in data.items() if k in inherited}, getattr(data, "key_marks", {}), data), source)
        if local:
            inner = replace(inner, local=True)
        short = module_name.rsplit(".", 1)[-1] if module_name.startswith(("ansible.builtin.", "ansible.legacy.")) else module_name
        if short in INCLUDES:
            return self.include(short, raw, data, inner, line, column, handlers)
        loop, loop_kind = self.loop(data, loop_keys, source)
        loop_control = data.get("loop_control") or {}
        if not isinstance(loop_control, dict):
            self.problem(source, *data.mark_of("loop_control"), "loop_control must be a mapping.")
            loop_control = {}
        for option in loop_control:
            if option not in ("loop_var", "index_var", "label"):
                self.fallback(source, data.mark_of("loop_control")[0], f"loop_control.{option} is not native")
        try:
            module = resolve_module(module_name)
        except ModuleSpecError:
            module = None
        if module is None:
            known = ansible_compat.module_known(module_name)
            if known:
                self.fallback(source, line, f"module {module_name} is not native")
                self.scan_task_templates(data, source, line)
                return [self.make_task(data, known, {}, line, column, inner, loop, loop_kind, loop_control, handlers)]
            supported = ", ".join(sorted(name for name in MODULES if name not in INTERNAL_MODULES))
            hint = "" if ansible_compat.available() else " (ansible-core is not installed, so only native modules can run)"
            self.problem(source, line, column, f"unknown module {module_name!r} in task {name!r}: it is not native, and Ansible knows no "
                                               f"such module or action with the collections installed here{hint}. Native: {supported}.")
            return []
        args = self.module_args(module, raw, source, line, column)
        if args is None:
            return []
        if data.get("args"):
            if not isinstance(data["args"], dict):
                self.problem(source, *data.mark_of("args"), "args must be a mapping.")
                return []
            args = {**data["args"], **args}
        try:
            args = module.check_args(args, marks=getattr(raw, "key_marks", {}) if isinstance(raw, dict) else {})
        except ModuleSpecError as exc:
            arg_line, arg_column = (raw.mark_of(exc.param) if isinstance(raw, LineDict) and exc.param in raw else (line, column))
            if exc.unknown_param:
                self.fallback(source, arg_line, f"parameter {exc.param} of {module.name} is not native")
                return [self.make_task(data, module_name, {}, line, column, inner, loop, loop_kind, loop_control, handlers)]
            self.problem(source, arg_line, arg_column, f"{module.name} in task {name!r}: {exc}")
            return []
        self.scan_task_templates(data, source, line)
        if module.name in ("template",) and isinstance(args.get("src"), str) and "{{" not in args["src"]:
            self.scan_template_file(args["src"], inner, source, line)
        return [self.make_task(data, module.name, args, line, column, inner, loop, loop_kind, loop_control, handlers)]

    def make_task(self, data, module, args, line, column, scope, loop, loop_kind, loop_control, handlers):
        source = scope.source
        name = str(data.get("name") or "")
        notify = data.get("notify") or []
        listen = data.get("listen") or []
        until = data.get("until")
        if "become_user" in data and not data.get("become_user"):
            self.problem(source, *data.mark_of("become_user"), "become_user is empty.")
        return Task(
            name=name, module=module, args=args, line=line, column=column, source=source,
            become=scope.become, become_user=scope.become_user,
            when=[*scope.when, *as_list(data.get("when"))] if data.get("when") is not None else list(scope.when),
            register=str(data.get("register") or ""),
            notify=[notify] if isinstance(notify, str) else [str(item) for item in notify],
            changed_when=data.get("changed_when"), failed_when=data.get("failed_when"),
            ignore_errors=read_bool(self, data["ignore_errors"], source, data.mark_of("ignore_errors"), "ignore_errors") if "ignore_errors" in data else bool(scope.ignore_errors),
            loop=loop, loop_kind=loop_kind, loop_var=str(loop_control.get("loop_var") or "item"),
            index_var=str(loop_control.get("index_var") or ""), loop_label=loop_control.get("label"),
            vars={**scope.vars, **(dict(data.get("vars")) if isinstance(data.get("vars"), dict) else {})},
            no_log=read_bool(self, data["no_log"], source, data.mark_of("no_log"), "no_log") if "no_log" in data else bool(scope.no_log),
            timeout=as_number(data["timeout"]) if data.get("timeout") else None,
            listen=[listen] if isinstance(listen, str) else [str(item) for item in listen],
            notify_line=data.mark_of("notify")[0] if "notify" in data else line,
            tags=scope.tags | tag_set(data.get("tags")), role=scope.role, search_dirs=scope.search_dirs, local=scope.local,
            environment=scope.environment,
            until=until, retries=int(as_number(data.get("retries", 3)) or 3) if "{{" not in str(data.get("retries", "")) else 3,
            delay=as_number(data.get("delay", 5)) if "{{" not in str(data.get("delay", "")) else 5,
            check_mode=read_bool(self, data["check_mode"], source, data.mark_of("check_mode"), "check_mode") if "check_mode" in data else scope.check_mode,
            remote_user=str(data.get("remote_user") or ""),
        )

    def block(self, data, scope, handlers):
        source = scope.source
        ansible_block = self.ansible_keywords("block")
        for key in data:
            line, column = data.mark_of(key)
            if key in NATIVE_BLOCK_KEYWORDS:
                continue
            if ansible_block is not None and key in ansible_block:
                self.fallback(source, line, f"block keyword {key} is not native")
                continue
            self.problem(source, line, column, f"{key!r} is not a block keyword. Block keywords: {', '.join(sorted(ansible_block or NATIVE_BLOCK_KEYWORDS))}.")
        inner = self.child_scope(scope, data, source)
        parts = {}
        for key in ("block", "rescue", "always"):
            items = data.get(key)
            if items is None:
                parts[key] = []
            elif not isinstance(items, list):
                self.problem(source, *data.mark_of(key), f"{key} must be a list of tasks.")
                parts[key] = []
            else:
                parts[key] = self.tasks(items, inner, handlers)
        line, column = data.mark_of("block")
        return [Task(name=str(data.get("name") or ""), module="block", args={}, line=line, column=column, source=source,
                     block=parts["block"], rescue=parts["rescue"], always=parts["always"], tags=inner.tags, role=scope.role)]

    def include(self, kind, raw, data, scope, line, column, handlers):
        source = scope.source
        name_key = "file" if kind.endswith("tasks") else "name"
        params = raw if isinstance(raw, dict) else {}
        target = params.get(name_key) or params.get("_raw_params") or (raw if isinstance(raw, str) else None)
        if isinstance(target, str) and target.startswith(("file=", "name=")):
            target = target.split("=", 1)[1].strip()
        if not target or not isinstance(target, str):
            self.problem(source, line, column, f"{kind} needs a {'file' if name_key == 'file' else 'role name'}.")
            return []
        loops = [key for key in data if isinstance(key, str) and (key == "loop" or key.startswith("with_"))]
        if loops:
            self.fallback(source, line, f"{kind} with a loop is not native")
            return []
        if "{{" in target:
            self.fallback(source, line, f"{kind} of a templated name is not native")
            return []
        inner = self.child_scope(scope, with_marks({k: v for k, v in data.items() if k in ("when", "tags", "vars", "ignore_errors", "no_log", "check_mode")},
                                                    getattr(data, "key_marks", {}), data), source)
        apply = params.get("apply") if isinstance(params, dict) else None
        if isinstance(apply, dict):
            inner = self.child_scope(inner, apply, source)
        if inner.depth > MAX_INCLUDE_DEPTH:
            self.problem(source, line, column, f"{kind} nests too deeply (an include loop?).")
            return []
        if kind.endswith("role"):
            role_params = {k: v for k, v in params.items() if k not in ("name", "tasks_from", "handlers_from", "vars_from", "defaults_from",
                                                                        "apply", "public", "allow_duplicates", "rolespec_validate")}
            for option in ("vars_from", "defaults_from", "handlers_from"):
                if option in params:
                    self.fallback(source, line, f"{kind} {option} is not native")
            tasks, role_handlers = self.expand_role(target, inner, {}, source, line, column, seen=set(),
                                                    tasks_from=str(params.get("tasks_from") or "main"))
            for task in leaf_tasks(tasks):
                task.vars = {**role_params, **task.vars}
            self.role_handlers.extend(role_handlers)
            return tasks
        if self.base_dir is None and scope.directory is None and scope.role is None:
            self.problem(source, line, column, f"{kind} {target} needs the project folder; upload the project (zip or tar.gz) "
                                               "or run the playbook from its folder.")
            return []
        path = self.find_file(target, scope, "tasks")
        if path is None:
            self.problem(source, line, column, f"{kind}: {target} not found.")
            return []
        return self.task_file(path, inner, source, line, column, handlers=handlers)

    def loop(self, data, loop_keys, source):
        if "loop" in data and loop_keys:
            self.problem(source, *data.mark_of(loop_keys[0]), f"a task takes loop or {loop_keys[0]}, not both.")
        if len(loop_keys) > 1:
            self.problem(source, *data.mark_of(loop_keys[1]), f"a task takes one loop ({', '.join(loop_keys)}).")
        if "loop" in data:
            return data["loop"], "loop"
        if not loop_keys:
            return None, ""
        key = loop_keys[0]
        kind = key[len("with_"):]
        if kind not in NATIVE_LOOPS:
            if ansible_compat.available() and not ansible_compat.lookup_known(kind):
                self.problem(source, *data.mark_of(key), f"{key}: Ansible has no lookup plugin named {kind!r}.")
            else:
                self.fallback(source, data.mark_of(key)[0], f"{key} (the {kind} lookup) is not native")
        return data[key], kind

    def module_args(self, module, raw, source, line, column):
        if raw is None:
            return {}
        if isinstance(raw, dict):
            return dict(raw)
        if isinstance(raw, (str, int, float)):
            raw = str(raw)
            if module.free_form:
                return free_form_args(raw)
            try:
                words = split_args(raw)
            except ValueError as exc:
                self.problem(source, line, column, f"cannot read {module.name} arguments ({exc}).")
                return None
            args = {}
            for word in words:
                if "=" not in word:
                    if module.name in ("meta", "fail", "debug", "set_fact") or module.raw_params_ok:
                        return {"_raw_params": raw}
                    self.problem(source, line, column, f"{module.name} expects key=value arguments, found {word!r}.")
                    return None
                key, _, value = word.partition("=")
                args[key] = value
            return args
        self.problem(source, line, column, f"arguments of {module.name} must be a mapping.")
        return None

    def check_notify(self, tasks, handlers):
        known = set()
        for handler in handlers:
            known.add(handler.name)
            known.update(handler.listen)
            if handler.role is not None:
                known.add(f"{handler.role.name} : {handler.name}")
        for task in leaf_tasks(tasks):
            for name in task.notify:
                if name not in known and "{{" not in name:
                    self.problem(task.source, task.notify_line, None, f"task {task.label!r} notifies {name!r}, which is not a handler of this play.")
