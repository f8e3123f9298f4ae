"""What the native engine runs. Anything else Ansible knows goes to ansible-runner."""

from __future__ import annotations

MAX_INCLUDE_DEPTH = 20

NATIVE_TASK_KEYWORDS = {
    "name", "become", "become_user", "become_method", "when", "register", "notify", "changed_when", "failed_when",
    "ignore_errors", "loop", "loop_control", "tags", "vars", "no_log", "args", "timeout", "listen", "environment",
    "until", "retries", "delay", "check_mode", "diff", "connection", "delegate_to", "remote_user", "action",
    "local_action", "collections",
}
NATIVE_BLOCK_KEYWORDS = {
    "name", "block", "rescue", "always", "become", "become_user", "become_method", "when", "tags", "vars", "ignore_errors",
    "no_log", "environment", "check_mode", "diff", "connection", "delegate_to", "remote_user", "collections", "timeout",
}
NATIVE_PLAY_KEYWORDS = {
    "name", "hosts", "become", "become_user", "become_method", "vars", "vars_files", "vars_prompt", "tasks", "pre_tasks",
    "post_tasks", "handlers", "roles", "gather_facts", "gather_subset", "gather_timeout", "fact_path", "tags",
    "remote_user", "connection", "serial", "collections", "environment", "ignore_errors", "no_log", "check_mode",
    "diff", "timeout", "strategy",
}
NATIVE_ROLE_KEYWORDS = {"role", "name", "tags", "when", "vars", "become", "become_user", "become_method", "environment",
                        "connection", "delegate_to", "remote_user", "collections", "ignore_errors", "no_log", "check_mode", "diff"}
RECIPE_KEYWORDS = {"name", "description", "hosts", "become", "become_user", "vars", "tasks", "handlers", "gather_facts", "tags",
                   "remote_user", "pre_tasks", "post_tasks"}
# Loops the native engine understands; other `with_<lookup>` forms are lookup plugins: ansible-runner.
NATIVE_LOOPS = {"items", "list", "dict", "nested", "cartesian", "together", "fileglob", "indexed_items", "flattened", "sequence"}
INCLUDES = ("include_tasks", "import_tasks", "include_role", "import_role")
LOCALHOST = {"localhost", "127.0.0.1", "::1"}
