"""Inventory REST API: write-only secrets, servers, groups, import/export, recipe runs, field errors."""

import json

import pytest

from clusters.models import Credential, Group, Server
from panel.audit.models import AuditEvent
from panel.jobs.models import Job
from tests.fixtures.actors import api_client
from tests.support.keys import generate_keypair

pytestmark = pytest.mark.django_db


def test_a_credential_secret_is_write_only(bob):
    private, public = generate_keypair()
    client = api_client(bob)

    created = client.post("/api/credentials/", {"name": "deploy", "kind": "ssh-key", "secret": {"private_key": private, "become_password": "pw-123456"}},
                          format="json")
    listed = client.get("/api/credentials/")
    detail = client.get(f"/api/credentials/{created.data['id']}/")

    assert created.status_code == 201, created.data
    for response in (created, listed, detail):
        text = json.dumps(response.data)
        assert "PRIVATE KEY" not in text and "pw-123456" not in text and "secret" not in text
    assert detail.data["public"]["fingerprint"].startswith("SHA256:") and detail.data["public"]["key_type"] == "ssh-ed25519"
    audit = json.dumps(list(AuditEvent.objects.values("before", "after", "message")))
    assert "PRIVATE KEY" not in audit and "pw-123456" not in audit


def test_credential_errors_are_field_errors(bob):
    client = api_client(bob)

    missing = client.post("/api/credentials/", {"name": "a", "kind": "ssh-key"}, format="json")
    broken = client.post("/api/credentials/", {"name": "b", "kind": "ssh-key", "secret": {"private_key": "nope"}}, format="json")
    unknown = client.post("/api/credentials/", {"name": "c", "kind": "password", "secret": {"password": "x1234", "pin": "1"}}, format="json")
    bad_name = client.post("/api/credentials/", {"name": "no spaces", "kind": "password", "secret": {"password": "x1234"}}, format="json")

    assert missing.status_code == 400 and "secret" in missing.data
    assert broken.status_code == 400 and "Not a usable" in str(broken.data["secret"]["private_key"])
    assert unknown.status_code == 400 and "pin" in unknown.data["secret"]
    assert bad_name.status_code == 400 and "name" in bad_name.data


def test_updating_a_credential_without_a_secret_keeps_it(bob):
    client = api_client(bob)
    created = client.post("/api/credentials/", {"name": "pw", "kind": "password", "secret": {"password": "first-pass"}}, format="json")

    client.patch(f"/api/credentials/{created.data['id']}/", {"description": "new words"}, format="json")
    client.patch(f"/api/credentials/{created.data['id']}/", {"secret": {"become_password": "sudo-pass"}}, format="json")

    secret = Credential.objects.get(name="pw").get_secret()
    assert secret == {"password": "first-pass", "become_password": "sudo-pass"}


def test_servers_are_created_filtered_and_read_with_their_state(bob):
    client = api_client(bob)
    Group.objects.create(name="web")
    client.post("/api/credentials/", {"name": "pw", "kind": "password", "secret": {"password": "first-pass"}}, format="json")

    created = client.post("/api/servers/", {"name": "web01", "address": "10.0.0.1", "port": 2222, "user": "deploy", "credential": "pw",
                                            "groups": ["web"], "labels": {"env": "prod"}, "variables": {"app_port": 8080}}, format="json")
    client.post("/api/servers/", {"name": "db01", "address": "10.0.0.2"}, format="json")

    assert created.status_code == 201, created.data
    assert created.data["groups"] == ["web"] and created.data["credential"] == "pw"
    assert created.data["host_key"]["pinned"] == "" and created.data["state"]["reachable"] is None
    assert [s["name"] for s in client.get("/api/servers/?group=web").data["results"]] == ["web01"]
    assert [s["name"] for s in client.get("/api/servers/?label=env=prod").data["results"]] == ["web01"]
    assert [s["name"] for s in client.get("/api/servers/?q=10.0.0.2").data["results"]] == ["db01"]
    assert [s["name"] for s in client.get("/api/servers/?state=unknown").data["results"]] == ["db01", "web01"]


def test_bad_server_input_is_a_400_with_field_paths(bob):
    response = api_client(bob).post("/api/servers/", {"name": "x y", "address": "", "port": 0, "credential": "nope", "groups": ["missing"],
                                                      "labels": {"a": {"b": 1}}}, format="json")

    assert response.status_code == 400
    assert set(response.data) >= {"name", "address", "port", "credential", "groups", "labels"}


def test_the_inventory_api_is_for_operators_only(sam, charlie):
    for user in (sam, charlie):
        client = api_client(user)
        assert client.get("/api/servers/").status_code == 403
        assert client.get("/api/inventory/ansible/").status_code == 403
        assert client.post("/api/credentials/", {"name": "x", "kind": "password", "secret": {"password": "abcd"}}, format="json").status_code == 403


def test_a_read_token_cannot_write(bob):
    assert api_client(bob, scope="read").post("/api/servers/", {"name": "a", "address": "b"}, format="json").status_code == 403


def test_import_with_dry_run_previews_and_without_it_imports(bob):
    client = api_client(bob)
    text = "[web]\nweb[01:02] ansible_user=deploy\n[lab:children]\nweb\n"

    preview = client.post("/api/inventory/import/", {"text": text, "dry_run": True}, format="json")
    assert preview.status_code == 200 and preview.data["applied"] is False
    assert preview.data["counts"]["servers_created"] == 2 and Server.objects.count() == 0

    applied = client.post("/api/inventory/import/", {"text": text}, format="json")
    assert applied.status_code == 201 and Server.objects.count() == 2

    broken = client.post("/api/inventory/import/", {"text": "[web\n", "source": "hosts.ini"}, format="json")
    assert broken.status_code == 400 and broken.data["text"][0].startswith("hosts.ini, line 1:")


def test_export_formats_and_the_dynamic_inventory(bob):
    client = api_client(bob)
    client.post("/api/inventory/import/", {"text": "[web]\nweb01 ansible_host=10.0.0.1 ansible_port=2201\n"}, format="json")

    ini = client.get("/api/inventory/export/?format=ini")
    yaml_text = client.get("/api/inventory/export/?format=yaml")
    dynamic = client.get("/api/inventory/ansible/")

    assert "[web]\nweb01 ansible_host=10.0.0.1 ansible_port=2201 ansible_user=root" in ini.content.decode()
    assert "web01:" in yaml_text.content.decode()
    assert dynamic.data["web"]["hosts"] == ["web01"] and dynamic.data["_meta"]["hostvars"]["web01"]["ansible_port"] == 2201
    assert client.get("/api/inventory/export/?format=toml").status_code == 400


def test_a_recipe_run_is_started_for_servers_or_a_limit(bob):
    client = api_client(bob)
    web = Group.objects.create(name="web")
    servers = [Server.objects.create(name=f"web{i}", address="10.0.0.1") for i in range(3)]
    web.servers.add(*servers[:2])

    by_ids = client.post("/api/recipe-runs/", {"recipe": "base-packages", "servers": [servers[2].pk], "check": True}, format="json")
    by_limit = client.post("/api/recipe-runs/", {"playbook": "- name: hi\n  ping:\n", "limit": "web"}, format="json")

    assert by_ids.status_code == 201, by_ids.data
    assert by_ids.data["kind"] == "recipe-run" and by_ids.data["params"]["check"] is True
    assert by_ids.data["target"]["name"] == "web2"
    assert sorted(Job.objects.get(pk=by_limit.data["id"]).params["servers"]) == sorted(s.pk for s in servers[:2])


@pytest.mark.parametrize("body, field, words", [
    ({"recipe": "base-packages"}, "servers", "Choose at least one server"),
    ({"recipe": "nope", "limit": "all"}, "recipe", "not a valid choice"),
    ({"recipe": "base-packages", "playbook": "- ping:", "limit": "all"}, "recipe", "exactly one"),
    ({"playbook": "- name: x\n  frobnicate: {}\n", "limit": "all"}, "playbook", "playbook, line 2, column 3: unknown module 'frobnicate'"),
    ({"playbook": "- name: x\n  copy: {dest: /a, content: b, mode: rwx}\n", "limit": "all"}, "playbook", "playbook, line 2"),
    ({"playbook": "- name: x\n  copy: {dest: /a\n", "limit": "all"}, "playbook", "playbook, line 3, column 1"),
    ({"recipe": "base-packages", "limit": "nothing-matches"}, "limit", "matches no server"),
    ({"recipe": "base-packages", "servers": [999999]}, "servers", "No such server"),
    ({"recipe": "base-packages", "limit": "all", "path": "/etc/passwd"}, "path", "command line"),
])
def test_bad_recipe_runs_are_refused_before_anything_runs(bob, body, field, words):
    Server.objects.create(name="web0", address="10.0.0.1")

    response = api_client(bob).post("/api/recipe-runs/", body, format="json")

    assert response.status_code == 400, response.data
    assert words in json.dumps(response.data), response.data
    assert field in json.dumps(response.data)
    assert Job.objects.count() == 0


def test_the_recipes_list_names_the_built_in_recipes(bob):
    names = [recipe["name"] for recipe in api_client(bob).get("/api/recipes/").data]

    assert names == ["base-packages", "deploy-user", "docker-engine", "gunicorn-app", "ssh-hardening"]


def test_accept_host_key_is_a_conflict_without_a_refused_key(bob):
    server = Server.objects.create(name="web0", address="10.0.0.1")

    assert api_client(bob).post(f"/api/servers/{server.pk}/accept-host-key/").status_code == 409


def test_the_openapi_schema_includes_the_inventory(bob):
    response = api_client(bob).get("/api/schema/?format=json")

    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    assert "/api/servers/" in paths and "/api/recipe-runs/" in paths and "/api/inventory/ansible/" in paths
