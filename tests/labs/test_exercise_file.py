"""Exercise files: what a valid one gives, and every kind of mistake named with its file, line and column."""

from datetime import timedelta

import pytest

from labs.exercise_file import ExerciseFileError, exercise_to_yaml, parse_exercise, render_instructions
from labs.models import Exercise

from .conftest import GOOD_EXERCISE


def error_of(text, filename="ex.yaml"):
    with pytest.raises(ExerciseFileError) as info:
        parse_exercise(text, filename)
    return info.value


def test_it_parses_a_valid_exercise():
    parsed = parse_exercise(GOOD_EXERCISE, "two-tier.yaml")

    assert parsed["slug"] == "two-tier" and parsed["target"] == "docker"
    assert parsed["ttl"] == timedelta(hours=2)
    assert parsed["start"] == {"ports": ["web", "api"]}
    assert parsed["checks"][0] == {
        "name": "The web tier answers", "type": "test.answer", "points": 2,
        "hint": "Publish the web service on the port named `web`.", "params": {"port": "web", "contains": "notes"},
    }
    assert parsed["checks"][1]["points"] == 1  # the default


@pytest.mark.parametrize(
    "old, new, line, column, words",
    [
        ("ttl: 2h", "ttl: 2h\ncolour: blue", 5, 1, "unknown key 'colour'"),
        ("target: docker", "target: podman", 3, 9, "target must be one of docker, kubernetes, ssh"),
        ("ttl: 2h", "ttl: 9d", 4, 6, "longer than the 7d maximum"),
        ("ttl: 2h", "ttl: soon", 4, 6, "ttl must look like 30m, 2h or 1d"),
        ("type: test.answer\n    points: 2", "type: test.nothing\n    points: 2", 12, 11, "unknown check type 'test.nothing'"),
        ("params: {port: web, contains: notes}", "params: {port: web, contain: notes}", 15, 25, "unknown parameter 'contain' for a test.answer check"),
        ("params: {port: web, contains: notes}", "params: {port: db, contains: notes}", 15, 20, "port 'db' is not allocated"),
        ("params: {contains: other}", "params: {contains: 3}", 18, 24, "parameter 'contains' must be str"),
        ("quota: {cpu: 1.0, memory: 512Mi, ports: 2}", "quota: {cpu: 1.0, memory: lots, ports: 2}", 5, 27, "memory must look like 512Mi"),
        ("quota: {cpu: 1.0, memory: 512Mi, ports: 2}", "quota: {cpu: 1.0, memory: 512Mi, pods: 2}", 5, 34, "unknown quota 'pods' for a docker exercise"),
        ("points: 2", "points: many", 13, 13, "points must be a whole number"),
        ("slug: two-tier", "slug: Two Tier", 1, 7, "slug must be lowercase"),
    ],
)
def test_it_names_the_line_and_column_of_a_schema_error(old, new, line, column, words):
    assert old in GOOD_EXERCISE
    error = error_of(GOOD_EXERCISE.replace(old, new, 1), "courses/devops/two-tier.yaml")

    assert words in error.message
    assert (error.line, error.column) == (line, column), str(error)
    assert str(error).startswith(f"courses/devops/two-tier.yaml, line {line}, column {column}: ")


def test_it_names_the_line_of_a_yaml_syntax_error():
    error = error_of(GOOD_EXERCISE.replace("ttl: 2h", "ttl: [2h"), "broken.yaml")

    assert error.filename == "broken.yaml" and error.line >= 4
    assert "YAML error" in error.message


def test_it_refuses_a_check_without_its_required_parameter():
    text = GOOD_EXERCISE + "  - name: Boom\n    type: test.explodes\n    params: {}\n"

    error = error_of(text)

    assert "a test.explodes check needs the parameter 'message'" in error.message
    assert error.line == 21


def test_it_refuses_two_checks_with_one_name():
    error = error_of(GOOD_EXERCISE.replace("name: Something else", "name: The web tier answers"))

    assert "two checks are named" in error.message and error.line == 16


def test_it_refuses_a_file_that_is_not_a_mapping_or_lacks_a_target():
    assert "is a mapping" in error_of("- just\n- a list\n").message
    missing = error_of("slug: a\ntitle: A\n")
    assert "needs a 'target'" in missing.message and missing.line == 1


def test_it_renders_instructions_without_running_the_teachers_html():
    html = render_instructions("# Title\n\nSome **bold** <script>alert(1)</script> [x](javascript:alert(1))\n\n<div onclick='x()'>raw</div>")

    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html
    assert "<script" not in html and "<div" not in html and "javascript:" not in html
    assert "&lt;script&gt;" in html  # shown as text


@pytest.mark.django_db
def test_it_exports_an_exercise_to_a_file_that_parses_back_the_same(exercise):
    assert exercise_to_yaml(exercise) == GOOD_EXERCISE

    exercise.source = ""
    written = exercise_to_yaml(exercise)
    again = parse_exercise(written, "exported.yaml")

    for field in ("slug", "title", "target", "ttl", "quota", "start", "instructions", "checks"):
        expected = getattr(exercise, field)
        assert again[field] == expected, field
    assert isinstance(Exercise.objects.get(pk=exercise.pk).ttl, timedelta)


KUBE_EXERCISE = """slug: kube-one
title: One namespace
target: kubernetes
start:
  workspace: WORKSPACE
"""


def test_a_kubernetes_exercise_may_leave_out_its_workspace_pod():
    assert parse_exercise(KUBE_EXERCISE.replace("WORKSPACE", "false"))["start"] == {"workspace": False}
    assert parse_exercise(KUBE_EXERCISE.replace("WORKSPACE", "true"))["start"] == {"workspace": True}
    error = error_of(KUBE_EXERCISE.replace("WORKSPACE", "no thanks"))
    assert "workspace must be true or false" in error.message and (error.line, error.column) == (5, 14)
    docker = error_of(GOOD_EXERCISE.replace("start: {ports: [web, api]}", "start: {ports: [web, api], workspace: false}", 1))
    assert "unknown start key 'workspace' for a docker exercise" in docker.message
