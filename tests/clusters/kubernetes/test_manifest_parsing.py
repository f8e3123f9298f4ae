"""Parsing manifest text: every problem has a place (file, document, line, column)."""

import pytest

from clusters.kubernetes.manifests import ManifestInvalid, parse_documents


def problems_of(text, name="app.yaml"):
    with pytest.raises(ManifestInvalid) as caught:
        parse_documents([(name, text)])
    return caught.value.problems


def test_it_names_the_document_line_and_column_of_a_yaml_error():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n   labels: x\n"
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].startswith("app.yaml, document 2: YAML error at line 9, column")
    assert "mapping values are not allowed here" in problems[0]


def test_it_refuses_a_document_that_is_not_a_mapping():
    problems = problems_of("- a\n- b\n")
    assert problems == ["app.yaml, document 1 (line 1): expected a mapping (an object with apiVersion, kind, metadata), found list."]


def test_it_lists_every_missing_field_with_its_document():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\nkind: Secret\nmetadata: {}\n"
    assert problems_of(text) == ["app.yaml, document 2 (line 5): missing apiVersion, metadata.name."]


def test_it_refuses_the_same_object_twice():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
    problems = problems_of(text)
    assert "ConfigMap/a is also defined at app.yaml, document 1 (line 1)" in problems[0]


def test_it_refuses_an_empty_set():
    assert "no object found" in problems_of("# only a comment\n")[0]


def test_it_reads_several_files_lists_and_skips_empty_documents():
    first = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n"
    second = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n- {apiVersion: v1, kind: Secret, metadata: {name: c}}\n"
    objects = parse_documents([("one.yaml", first), ("two.yaml", second)])
    assert [(o.source, o.document, o.label) for o in objects] == [("one.yaml", 1, "ConfigMap/a"), ("two.yaml", 1, "ConfigMap/b"), ("two.yaml", 1, "Secret/c")]
    assert objects[0].line == 2
