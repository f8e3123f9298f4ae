"""The panel and `ansible-playbook --syntax-check` agree on a corpus of playbooks written like public examples.

Accepted by one, accepted by the other (and the panel says which engine runs it);
refused by one, refused by the other (and the panel names the line).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from clusters.recipes import RecipeError, load_file
from clusters.recipes.ansible_compat import ansible_environment
from clusters.recipes.project import find_playbook

CORPUS = Path(__file__).resolve().parents[2] / "data" / "ansible_corpus"
EXAMPLES = Path(__file__).resolve().parents[4] / "shared" / "examples" / "ansible"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

# Which engine the panel picks, and why: the point of widening the native engine.
EXPECTED = {
    "lamp": ("native", ""),
    "nginx": ("native", ""),
    "users": ("native", ""),
    "varsfiles": ("ansible-runner", "vars_files with a templated name is not native"),
    "rolling": ("ansible-runner", "module wait_for is not native"),
    "local": ("native", ""),
    "healthcheck": ("ansible-runner", "module wait_for is not native"),
    "script": ("ansible-runner", "module script is not native"),
    "raw": ("ansible-runner", "module raw is not native"),
    "groupby": ("ansible-runner", "module group_by is not native"),
    "blocks": ("native", ""),
    "includes": ("native", ""),
    "loops": ("native", ""),
    "oldstyle": ("native", ""),
    "database": ("ansible-runner", "module postgresql_db is not native"),  # community.postgresql, from Debian's ansible package
    "strategy": ("ansible-runner", "task keyword run_once is not native"),
}
REFUSED = {
    "badkeyword": "line 5, column 7: task 'a typo in a keyword' has several modules or an unknown keyword (command, regsiter)",
    "missingrole": "line 3, column 7: role 'not_there' not found",
    "unknownmodule": "line 4, column 7: unknown module 'frobnicate' in task 'no such module'",
    "playinclude": "line 1, column 3: the play-level `include` was removed from Ansible (2.16); write `import_playbook: other.yml` instead.",
}


def syntax_check(playbook, inventory):
    env = {**os.environ, **ansible_environment(), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_HOME": "/tmp/filrouge-syntax-check"}
    result = subprocess.run([str(ANSIBLE_PLAYBOOK), "--syntax-check", "-i", str(inventory), str(playbook)], cwd=playbook.parent,
                            capture_output=True, text=True, env=env, timeout=120)
    return result.returncode == 0, result.stdout + result.stderr


def panel(playbook):
    try:
        return load_file(playbook), ""
    except RecipeError as exc:
        return None, str(exc)


needs_ansible = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="ansible-core is a dependency; its ansible-playbook is missing")


@needs_ansible
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_playbook_ansible_accepts_is_accepted_and_the_engine_is_said(name):
    playbook = find_playbook(CORPUS / name)

    accepted, output = syntax_check(playbook, CORPUS / "inventory.ini")
    recipe, problems = panel(playbook)

    assert accepted, output
    assert recipe is not None, problems
    engine, reason = EXPECTED[name]
    assert recipe.engine == engine, recipe.engine_reason()
    assert reason in recipe.engine_reason()


@needs_ansible
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_playbook_ansible_refuses_is_refused_with_its_line(name):
    playbook = find_playbook(CORPUS / "refused" / name)

    accepted, output = syntax_check(playbook, CORPUS / "inventory.ini")
    recipe, problems = panel(playbook)

    assert not accepted, output
    assert recipe is None
    assert REFUSED[name] in problems


@needs_ansible
def test_the_shared_example_playbook_and_inventory_are_accepted(db):
    from clusters.inventory.ansible_files import apply_import, parse_inventory, plan_import
    from clusters.models import Server

    apply_import(plan_import(parse_inventory((EXAMPLES / "inventory.ini").read_text(), "inventory.ini")))
    accepted, output = syntax_check(EXAMPLES / "webapp.yml", EXAMPLES / "inventory.ini")
    recipe = load_file(EXAMPLES / "webapp.yml")

    assert accepted, output
    assert recipe.engine == "native"
    assert Server.objects.filter(groups__name="web").count() == 2
