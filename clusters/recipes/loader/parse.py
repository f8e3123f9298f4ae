"""The entry points: parse_recipe (text to a checked Recipe) and as_playbook (for ansible-runner)."""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import RecipeError
from .marked_yaml import load_yaml
from .model import Play, Recipe
from .reader import Reader
from .scope import Scope


def parse_recipe(text, source="recipe", base_dir=None, trusted_paths=False, name=None, playbook_path=None):
    """Parse and check a recipe, task list or playbook. Raises RecipeError listing every problem."""
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig", errors="replace")
    text = text.replace("\r\n", "\n")
    data = load_yaml(text, source)
    if data is None:
        raise RecipeError(f"{source}: the file is empty; write a list of tasks or plays.")
    reader = Reader(source, base_dir, trusted_paths)
    directory = Path(base_dir).resolve() if base_dir else None
    description = ""
    is_playbook = False
    if isinstance(data, dict):
        description = str(data.get("description", ""))
        play = reader.play(data, source, directory, recipe_shape=True)
        plays = [play] if play is not None else []
        name = name or str(data.get("name", "") or "")
    elif isinstance(data, list):
        if not data:
            raise RecipeError(f"{source}: the list is empty; nothing to run.")
        if any(isinstance(item, dict) and ("hosts" in item or "import_playbook" in item) for item in data) \
                or all(isinstance(item, dict) and ("tasks" in item or "roles" in item) for item in data):
            plays = reader.playbook(data, source, directory)
            is_playbook = True
        else:
            scope = Scope(source=source, directory=directory, search_dirs=tuple(path for path in (directory,) if path))
            tasks = reader.tasks(data, scope)
            reader.check_notify(tasks, [])
            plays = [Play(name="", hosts=None, tasks=tasks, line=getattr(data, "line", 1))]
    else:
        raise RecipeError(f"{source}, line 1: expected a list of tasks or plays, found {type(data).__name__}.")
    if reader.problems:
        count = len(reader.problems)
        header = "" if count == 1 else f"{count} problems:\n"
        raise RecipeError(header + "\n".join(reader.problems), problems=list(reader.problems))
    recipe = Recipe(name=name or (plays[0].name if plays else ""), plays=plays, description=description, source=source,
                    base_dir=directory, trusted_paths=trusted_paths, fallbacks=reader.fallbacks, uses_facts=reader.uses_facts)
    # What ansible-runner would run (needed when a fallback exists, or when an operator forces that engine).
    if is_playbook and playbook_path is not None:
        recipe.playbook_path = Path(playbook_path)
    elif is_playbook:
        recipe.playbook_text = text
    else:
        recipe.playbook_text = as_playbook(data)
    if directory is not None:
        recipe.group_vars, recipe.host_vars = project_vars(directory, reader)
        if reader.problems:
            raise RecipeError("\n".join(reader.problems), problems=list(reader.problems))
    for play in recipe.plays:
        if play.gather_facts is None:
            play.gather_facts = reader.uses_facts
    return recipe


def project_vars(directory, reader):
    """group_vars/ and host_vars/ next to the playbook, as Ansible reads them."""
    found = {}
    for kind in ("group_vars", "host_vars"):
        folder = directory / kind
        values = {}
        if folder.is_dir():
            for entry in sorted(folder.iterdir()):
                files = [entry] if entry.is_file() else sorted(path for path in entry.rglob("*") if path.is_file()) if entry.is_dir() else []
                target = entry.stem if entry.is_file() and entry.suffix in (".yml", ".yaml", ".json") else entry.name
                if entry.is_file() and entry.suffix not in (".yml", ".yaml", ".json", ""):
                    continue
                for path in files:
                    if path.suffix not in (".yml", ".yaml", ".json", ""):
                        continue
                    data, label = reader.read_yaml_file(path, reader.source, 0, None, kind)
                    if data is None:
                        continue
                    if not isinstance(data, dict):
                        reader.problem(label, 1, None, f"a {kind} file must be a mapping.")
                        continue
                    values.setdefault(target, {}).update(data)
        found[kind] = values
    return found["group_vars"], found["host_vars"]


def as_playbook(data):
    """A task list or a recipe mapping as an Ansible playbook (for ansible-runner)."""
    import json

    plain = json.loads(json.dumps(data, default=str))
    if isinstance(plain, list):
        play = {"hosts": "all", "gather_facts": False, "tasks": plain}
    else:
        play = {key: value for key, value in plain.items() if key not in ("description",)}
        play.setdefault("hosts", "all")
        play.setdefault("gather_facts", False)
    return yaml.safe_dump([play], sort_keys=False, default_flow_style=False)
