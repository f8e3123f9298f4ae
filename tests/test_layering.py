"""Arrows only point down (docs/developer-guide.md, "Layers").

    panel core  <-  metrics  <-  clusters  <-  deployments  <-  labs

`clusters` never imports `deployments` or `labs` (it tells them what it observed through
clusters/signals.py), `deployments` never imports `labs`, and the panel core imports no app.
Routing (panel/urls.py, panel/api_urls.py) and the dashboard's overview panels
(panel/dashboard/) put the apps side by side on one page, so they may name every app.

Imports are read with `ast` from the source, including imports inside functions (a lazy
import is still an arrow) and dotted paths handed to import_string / import_module.
"""

import ast
import gc
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ("metrics", "clusters", "deployments", "labs")

# package -> apps it must never import
FORBIDDEN = {
    "metrics": ("clusters", "deployments", "labs"),
    "clusters": ("deployments", "labs"),
    "deployments": ("labs",),
    "panel": APPS,
}
# Modules of `panel` that compose the apps (routing, the dashboard): allowed to name them.
COMPOSITION = ("panel/urls.py", "panel/api_urls.py", "panel/dashboard/")

DOTTED = re.compile(r"^[a-z_]+(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def parse_without_collecting(source):
    """ast.parse with garbage collection held off while it runs.

    CPython before 3.11.8 keeps the AST constructor's recursion depth in state the whole
    interpreter shares (gh-106905). The constructor runs no Python code, except when an
    allocation starts a collection whose finalizers do: the GIL can then go to another
    thread, and if that thread calls ast.parse too (3.11 formats the caret lines of a
    traceback with it, e.g. a live server logging an error), the first parse raises
    SystemError "AST constructor recursion depth mismatch" for a tree it built correctly.
    With collection held off, no other thread runs while the tree is built."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(source)
    finally:
        if collecting:
            gc.enable()


def imported_modules(source):
    """(line, module) for every import statement and every dotted module path in a string
    literal of the source (import_string("deployments.backends...") is an import too)."""
    found = []
    for node in ast.walk(parse_without_collecting(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and DOTTED.match(node.value):
            found.append((node.lineno, node.value))
    return found


def upward_imports(package, relative_path, source):
    """The imports in one file of `package` that point up (or sideways into an app)."""
    if package == "panel" and relative_path.startswith(COMPOSITION):
        return []
    forbidden = FORBIDDEN[package]
    return [
        f"{relative_path}:{line} imports {module}"
        for line, module in imported_modules(source)
        if module.split(".")[0] in forbidden
    ]


def source_files(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path.relative_to(ROOT).as_posix(), path.read_text()


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_only_point_down(package):
    problems = [problem for relative, source in source_files(package) for problem in upward_imports(package, relative, source)]
    assert not problems, f"{package} must not import {', '.join(FORBIDDEN[package])}:\n" + "\n".join(problems)


def test_the_guard_catches_a_lazy_import_a_dotted_path_and_a_core_module():
    probe = "def refresh(cluster):\n    from deployments.probe import store_service_observations\n"
    assert upward_imports("clusters", "clusters/docker/jobs.py", probe) == ["clusters/docker/jobs.py:2 imports deployments.probe"]
    registry = 'BACKENDS = {"lab": "labs.providers.docker.DockerProvider"}\n'
    assert upward_imports("deployments", "deployments/backends/base.py", registry) == [
        "deployments/backends/base.py:1 imports labs.providers.docker.DockerProvider"
    ]
    assert upward_imports("panel", "panel/jobs/runner.py", "import clusters.models\n") == ["panel/jobs/runner.py:1 imports clusters.models"]


def test_routing_and_the_dashboard_may_name_every_app():
    assert upward_imports("panel", "panel/api_urls.py", "from labs import api as labs_api\n") == []
    assert upward_imports("panel", "panel/dashboard/panels.py", "from deployments.models import Service\n") == []
