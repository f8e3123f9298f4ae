"""Reading recipes and Ansible playbooks into plays and tasks, and deciding which engine runs them.

Three shapes are accepted:
- a playbook: a list of plays (`hosts`, `vars`, `vars_files`, `roles`, `tasks`, `handlers`...),
  with `import_playbook`, roles (tasks, handlers, defaults, vars, templates, files, meta
  dependencies), `import_tasks` / `include_tasks`, `import_role` / `include_role`, blocks;
- a task list: a list of tasks, run on the hosts the job targets;
- a recipe: a mapping with `name`, `description`, `vars`, `become`, `tasks`, `handlers`.

Everything is read before anything runs, and every problem is reported at once, each
with its file, line and column. Two kinds of findings:
- problems: what Ansible would refuse too (YAML errors, unknown keywords, a module
  neither native nor known to Ansible, a missing role or file); the recipe is refused;
- fallbacks: what Ansible runs but the native engine does not (a module such as
  `wait_for`, a lookup plugin, a strategy...); the recipe is accepted and the job
  runs it through ansible-runner, saying why on its first line.

Where things are: parse.py (parse_recipe, as_playbook), model.py (Recipe, Play, Task...),
reader.py (the Reader and its findings) with its verbs in plays.py, roles.py, tasks.py and
template_scan.py, keywords.py (what is native), marked_yaml.py (YAML with lines),
arguments.py and values.py (how Ansible reads words and values), errors.py.
"""

from .arguments import split_args
from .errors import RecipeError
from .keywords import (
                       INCLUDES,
                       LOCALHOST,
                       MAX_INCLUDE_DEPTH,
                       NATIVE_BLOCK_KEYWORDS,
                       NATIVE_LOOPS,
                       NATIVE_PLAY_KEYWORDS,
                       NATIVE_ROLE_KEYWORDS,
                       NATIVE_TASK_KEYWORDS,
                       RECIPE_KEYWORDS,
)
from .marked_yaml import LineDict, LineList, MarkedLoader, load_yaml
from .model import Fallback, Play, Recipe, RoleScope, Task
from .parse import as_playbook, parse_recipe

__all__ = [
    "INCLUDES", "LOCALHOST", "MAX_INCLUDE_DEPTH", "NATIVE_BLOCK_KEYWORDS", "NATIVE_LOOPS", "NATIVE_PLAY_KEYWORDS",
    "NATIVE_ROLE_KEYWORDS", "NATIVE_TASK_KEYWORDS", "RECIPE_KEYWORDS", "Fallback", "LineDict", "LineList", "MarkedLoader",
    "Play", "Recipe", "RecipeError", "RoleScope", "Task", "as_playbook", "load_yaml", "parse_recipe", "split_args",
]
