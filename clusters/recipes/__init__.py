"""Recipes: YAML task lists (and simple Ansible playbooks) run over SSH by `engine`.

Built-in recipes live in builtin/<name>/recipe.yml, with the files and templates they
ship next to them.
"""

from functools import lru_cache
from pathlib import Path

from .loader import Recipe, RecipeError, parse_recipe

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"

__all__ = ["Recipe", "RecipeError", "builtin_choices", "builtin_names", "load_builtin", "load_file", "load_text"]


def builtin_names():
    return sorted(path.parent.name for path in BUILTIN_DIR.glob("*/recipe.yml"))


@lru_cache(maxsize=32)
def _builtin(name, mtime):
    path = BUILTIN_DIR / name / "recipe.yml"
    return parse_recipe(path.read_text(), source=f"{name}/recipe.yml", base_dir=path.parent)


def load_builtin(name):
    if name not in builtin_names():
        raise RecipeError(f"Unknown built-in recipe {name!r}. Built-in recipes: {', '.join(builtin_names())}.")
    path = BUILTIN_DIR / name / "recipe.yml"
    return _builtin(name, path.stat().st_mtime)


def builtin_choices():
    return [(name, load_builtin(name).name or name) for name in builtin_names()]


def load_file(path, trusted=True, playbook=""):
    """A recipe or playbook from a file or a project folder on the panel's machine (command line).

    `src` files, roles, includes and vars files are read next to the playbook."""
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        from .project import load_folder

        try:
            return load_folder(path, playbook=playbook, trusted=trusted)
        except RecipeError as exc:
            if str(exc).startswith(("the project", "no playbook", "playbook ")):
                raise RecipeError(f"{path}: {exc}") from None
            raise
    try:
        text = path.read_text()
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read the file ({exc.strerror}).") from None
    return parse_recipe(text, source=str(path), base_dir=path.parent, trusted_paths=trusted, playbook_path=path)


def load_text(text, source="recipe"):
    """A recipe sent as text (pages, API): it has no folder, so `src` files are refused at run time."""
    return parse_recipe(text, source=source)
