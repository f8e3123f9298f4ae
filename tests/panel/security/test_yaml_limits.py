"""The limited YAML loader itself: every limit refuses with its name and line, quickly
because nothing is expanded, and ordinary YAML (aliases included) still loads."""

import re
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from panel.lib import safe_yaml
from tests.support.hostile import yaml_bomb

ROOT = Path(__file__).resolve().parents[3]


@contextmanager
def refused_long_before(seconds=20):
    """A guard, not a measure: today's code spends 30 s of CPU on the bomb; stop it instead of
    letting it eat the machine's memory. Timings are measured by benchmarks/bench_yaml_bombs.py."""
    def stop(signum, frame):
        raise AssertionError(f"still working on the document after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_it_refuses_the_nine_level_alias_bomb_naming_the_node_limit_and_its_line():
    with refused_long_before(), pytest.raises(safe_yaml.YAMLLimitExceeded) as caught:
        safe_yaml.load(yaml_bomb())

    assert caught.value.limit == "YAML_MAX_NODES"
    assert "YAML_MAX_NODES" in caught.value.problem and "aliases are expanded" in caught.value.problem
    assert caught.value.problem_mark.line + 1 == 6  # a5 is where 9**6 nodes cross 250,000
    assert isinstance(caught.value, yaml.MarkedYAMLError)


def test_it_refuses_too_many_aliases_too_deep_nesting_a_recursive_alias_and_a_huge_document():
    many_aliases = "base: &b 1\nitems: [" + ", ".join(["*b"] * 1001) + "]\n"
    deep = "[" * 101 + "]" * 101
    recursive = "a: &a [1, *a]\n"
    huge = "key: " + "x" * (2 * 1024 * 1024) + "\n"

    refused = {}
    for name, text in {"aliases": many_aliases, "depth": deep, "recursive": recursive, "size": huge}.items():
        with pytest.raises(safe_yaml.YAMLLimitExceeded) as caught:
            safe_yaml.load(text)
        refused[name] = caught.value

    assert refused["aliases"].limit == "YAML_MAX_ALIASES" and "more than 1000 aliases" in refused["aliases"].problem
    assert refused["depth"].limit == "YAML_MAX_DEPTH" and "more than 100 levels" in refused["depth"].problem
    assert "recursive alias" in refused["recursive"].problem and refused["recursive"].problem_mark.line == 0
    assert refused["size"].limit == "YAML_MAX_BYTES" and "larger than 2097152 bytes" in refused["size"].problem


def test_ordinary_yaml_with_anchors_and_merge_keys_still_loads():
    text = "defaults: &defaults {image: app, replicas: 2}\nweb:\n  <<: *defaults\n  replicas: 3\nworkers: [*defaults, *defaults]\n"

    data = safe_yaml.load(text)

    assert data["web"] == {"image": "app", "replicas": 3}
    assert data["workers"] == [{"image": "app", "replicas": 2}] * 2
    assert list(safe_yaml.load_all("a: 1\n---\nb: 2\n")) == [{"a": 1}, {"b": 2}]
    assert safe_yaml.compose("a: [1, 2]\n").value[0][1].start_mark.line == 0


def test_the_limits_come_from_the_settings(settings):
    settings.YAML_MAX_NODES = 20
    with pytest.raises(safe_yaml.YAMLLimitExceeded, match="more than 20 nodes"):
        safe_yaml.load("[" + ", ".join(["1"] * 30) + "]")


def test_a_loader_without_the_limits_is_refused():
    with pytest.raises(TypeError, match="safe_yaml"):
        safe_yaml.load("a: 1", Loader=yaml.SafeLoader)


def test_no_code_of_the_panel_reads_yaml_around_the_limited_loader():
    """Every YAML the panel reads goes through panel.lib.safe_yaml: no direct PyYAML loading."""
    direct = re.compile(r"(?<!\w)yaml\.(safe_load|load|load_all|safe_load_all|full_load|unsafe_load|compose|compose_all|parse)\(|"
                        r"(?<!\w)yaml\.(Safe|Full|Unsafe|C|CSafe|Base)?Loader\b(?!\.construct)")
    offenders = []
    for folder in ("panel", "clusters", "deployments", "labs"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "safe_yaml.py" or "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if direct.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
