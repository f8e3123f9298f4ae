"""A JSON body nested 1,000 levels deep, to any API endpoint: 400 with a message, never 500."""

import re

import pytest

from panel.lib.parsers import json_depth
from tests.fixtures.actors import api_client
from tests.support.hostile import nested_json

pytestmark = pytest.mark.django_db

DEEP = nested_json(1000)


def post_deep(client, path, method="post"):
    return getattr(client, method)(path, DEEP, content_type="application/json")


@pytest.mark.parametrize("path", ["/api/jobs/", "/api/servers/", "/api/tokens/", "/api/inventory/import/", "/api/recipe-runs/", "/api/services/"])
def test_a_deeply_nested_body_is_a_400_that_says_why(alice, path):
    response = post_deep(api_client(alice), path)

    assert response.status_code == 400, response.content[:500]
    assert "nested more than 100 levels" in response.json()["detail"]


def test_no_write_endpoint_of_the_schema_answers_a_deep_body_with_a_500(alice):
    client = api_client(alice)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    answers = {}
    for path, operations in schema["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        for method in ("post", "put", "patch"):
            if method in operations:
                answers[f"{method.upper()} {path}"] = post_deep(client, concrete, method).status_code
    assert len(answers) > 20
    assert [name for name, code in answers.items() if code >= 500] == []
    assert sum(code == 400 for code in answers.values()) >= 10


def test_an_ordinary_nested_body_is_still_accepted(alice):
    body = {"text": "[web]\nweb01 ansible_host=10.0.0.1\n", "dry_run": True, "extra": {"a": [{"b": [1, 2, {"c": None}]}]}}
    response = api_client(alice).post("/api/inventory/import/", body, format="json")
    assert response.status_code == 200, response.content


def test_a_deep_body_in_utf16_is_counted_on_its_text_not_its_bytes(alice):
    # U+2200 is the bytes 0x00 0x22 in UTF-16-LE: a count over the raw bytes sees a quote
    # there and takes the thousand brackets after it for the inside of a string.
    body = '["\u2200", ' + "[" * 1000 + "]" * 1000 + ', "\u2200"]'
    response = api_client(alice).post("/api/inventory/import/", body.encode("utf-16"), content_type="application/json; charset=utf-16")

    assert response.status_code == 400, response.content[:500]
    assert "nested more than 100 levels" in response.json()["detail"]


def test_an_ordinary_body_in_utf16_is_still_read(alice):
    body = '{"text": "[web]\\nweb01 ansible_host=10.0.0.1\\n", "dry_run": true, "extra": {"a": ["\u2200"]}}'
    response = api_client(alice).post("/api/inventory/import/", body.encode("utf-16"), content_type="application/json; charset=utf-16")
    assert response.status_code == 200, response.content


def test_brackets_inside_strings_do_not_count():
    assert json_depth('{"a": "[[[[{{{{\\"[[[", "b": [1, {"c": "]]]]"}]}') == 3
    assert json_depth("7") == 0
    assert json_depth("[" * 50, stop_after=10) == 11
