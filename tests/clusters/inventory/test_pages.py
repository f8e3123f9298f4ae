"""Inventory pages: lists with filters, detail, forms with field errors, access, host-key acceptance."""

import html
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clusters.models import Credential, Group, Server
from panel.audit.models import AuditEvent
from panel.jobs.models import Job
from tests.fixtures.actors import logged_in
from tests.support.keys import generate_keypair

from tests.clusters.conftest import key_credential

pytestmark = pytest.mark.django_db


@pytest.fixture
def inventory(db):
    web = Group.objects.create(name="web", variables={"app_port": 8080})
    db_group = Group.objects.create(name="db")
    lab = Group.objects.create(name="lab")
    lab.children.add(web, db_group)
    servers = []
    for index in range(1, 4):
        server = Server.objects.create(name=f"web{index:02d}", address=f"10.0.0.{index}", labels={"env": "prod" if index < 3 else "staging"},
                                       reachable=index != 2)
        server.groups.add(web)
        servers.append(server)
    database = Server.objects.create(name="db01", address="10.0.1.1")
    database.groups.add(db_group)
    return {"web": web, "db": db_group, "lab": lab, "servers": servers, "db01": database}


def names(response):
    return [server.name for server in response.context["page"]]


def test_the_server_list_filters_by_search_group_label_and_state(bob, inventory):
    client = logged_in(bob)

    assert names(client.get("/inventory/")) == ["db01", "web01", "web02", "web03"]
    assert names(client.get("/inventory/?q=web0")) == ["web01", "web02", "web03"]
    assert names(client.get("/inventory/?q=10.0.1")) == ["db01"]
    assert names(client.get("/inventory/?group=db")) == ["db01"]
    assert names(client.get("/inventory/?group=lab")) == ["db01", "web01", "web02", "web03"]  # children included
    assert names(client.get("/inventory/?label=env=staging")) == ["web03"]
    assert names(client.get("/inventory/?label=env")) == ["web01", "web02", "web03"]
    assert names(client.get("/inventory/?state=unreachable")) == ["web02"]
    assert names(client.get("/inventory/?state=unknown")) == ["db01"]
    assert names(client.get("/inventory/?group=web&state=reachable")) == ["web01", "web03"]


def test_the_server_list_answers_htmx_with_the_table_only(bob, inventory):
    response = logged_in(bob).get("/inventory/?q=db", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="server-table")

    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="server-table"' in body and "<html" not in body
    assert "db01" in body and "web01" not in body


def test_the_server_list_paginates_with_a_constant_number_of_queries(bob, inventory):
    client = logged_in(bob)
    client.get("/inventory/")
    with CaptureQueriesContext(connection) as few:
        client.get("/inventory/")
    group = Group.objects.get(name="web")
    for index in range(60):
        server = Server.objects.create(name=f"extra{index:03d}", address="10.9.9.9", labels={"n": str(index)})
        server.groups.add(group)
    with CaptureQueriesContext(connection) as many:
        response = client.get("/inventory/?page=2")

    assert len(response.context["page"]) == 14
    assert len(many.captured_queries) == len(few.captured_queries)


def test_inventory_pages_are_for_operators_only(charlie, sam, carol, inventory):
    for user in (charlie, sam, carol):
        client = logged_in(user)
        assert client.get("/inventory/").status_code == 403
        assert client.get(f"/inventory/servers/{inventory['db01'].pk}/").status_code == 403
        assert client.post("/inventory/servers/new/", {"name": "x", "address": "y"}).status_code == 403
    assert not Server.objects.filter(name="x").exists()


def test_anonymous_visitors_are_sent_to_the_login_page(client, inventory):
    response = client.get("/inventory/")

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_server_is_created_with_labels_variables_and_groups(bob, inventory):
    response = logged_in(bob).post("/inventory/servers/new/", {
        "name": "cache01", "address": "10.0.2.1", "port": "2222", "user": "deploy", "become": "on",
        "groups": [inventory["web"].pk], "labels_text": "env=prod, tier=cache", "variables_text": "redis_port: 6379\nnested: {a: 1}",
    })

    server = Server.objects.get(name="cache01")
    assert response.status_code == 302 and response["Location"] == f"/inventory/servers/{server.pk}/"
    assert (server.port, server.user, server.become) == (2222, "deploy", True)
    assert server.labels == {"env": "prod", "tier": "cache"}
    assert server.variables == {"redis_port": 6379, "nested": {"a": 1}}
    assert list(server.groups.values_list("name", flat=True)) == ["web"]
    assert AuditEvent.objects.filter(object_repr="cache01", action="create", username="bob").exists()


def test_bad_server_input_gives_field_errors(bob, inventory):
    response = logged_in(bob).post("/inventory/servers/new/", {
        "name": "bad name!", "address": "", "port": "70000", "user": "root", "labels_text": "nolabel", "variables_text": "a: [1, 2",
    })

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) >= {"name", "address", "port", "labels_text", "variables_text"}
    assert "line 1, column" in errors["variables_text"][0] or "line 2, column" in errors["variables_text"][0]
    assert "key=value" in errors["labels_text"][0]


def test_a_jump_host_loop_is_refused(bob, inventory):
    first, second = inventory["servers"][:2]
    second.jump_host = first
    second.save()

    response = logged_in(bob).post(f"/inventory/servers/{first.pk}/edit/", {
        "name": first.name, "address": first.address, "port": 22, "user": "root", "jump_host": second.pk,
    })

    assert response.status_code == 400
    assert "loop" in response.context["form"].errors["jump_host"][0]


def test_the_server_page_shows_facts_state_and_recent_jobs(bob, inventory):
    server = inventory["servers"][0]
    server.facts = {"os": {"pretty_name": "Debian GNU/Linux 12 (bookworm)"}, "kernel": "Linux 6.1", "cpus": 4,
                    "memory": {"total_bytes": 8 * 2**30}, "docker": {"installed": True, "version": "Docker version 20.10"},
                    "disks": [{"mount": "/", "free_bytes": 10 * 2**30, "size_bytes": 20 * 2**30}], "addresses": [{"interface": "eth0", "address": "10.0.0.1"}]}
    server.load_1m, server.disk_free_bytes = 0.42, 10 * 2**30
    from django.utils import timezone

    server.facts_at = server.last_seen_at = timezone.now()
    server.save()
    job = Job.objects.create(kind="recipe-run", params={"recipe": "base-packages", "servers": [server.pk]}, timeout=60, user=bob)
    from clusters.models import ServerJob

    ServerJob.objects.create(server=server, job=job, recap={"ok": 3, "changed": 1, "failed": 0, "unreachable": 0})

    body = logged_in(bob).get(f"/inventory/servers/{server.pk}/").content.decode()

    assert "Debian GNU/Linux 12 (bookworm)" in body and "Docker version 20.10" in body
    assert "0.42" in body and "10.0\xa0GB" in body
    assert f"/jobs/{job.pk}/" in body and "ok=3 changed=1" in body
    assert "base-packages" in body


def test_a_refused_host_key_can_be_accepted_by_an_operator_and_it_is_audited(bob, inventory):
    server = inventory["servers"][0]
    old_key, new_key = generate_keypair()[1], generate_keypair()[1]
    server.pinned_host_key = " ".join(old_key.split()[:2])
    server.offered_host_key = " ".join(new_key.split()[:2])
    from django.utils import timezone

    server.offered_host_key_at = timezone.now()
    server.save()
    client = logged_in(bob)

    page = client.get(f"/inventory/servers/{server.pk}/").content.decode()
    assert server.pinned_fingerprint in page and server.offered_fingerprint in page
    response = client.post(f"/inventory/servers/{server.pk}/accept-host-key/")

    server.refresh_from_db()
    assert response.status_code == 302
    assert server.pinned_host_key == " ".join(new_key.split()[:2]) and server.offered_host_key == ""
    event = AuditEvent.objects.get(action="update", object_repr=server.name, username="bob", message__startswith="Accepted the new host key")
    assert event.after == {"pinned_host_key": server.pinned_fingerprint}


def test_accepting_needs_a_post(bob, inventory):
    server = inventory["servers"][0]

    assert logged_in(bob).get(f"/inventory/servers/{server.pk}/accept-host-key/").status_code == 405


def test_groups_can_nest_but_not_in_a_loop(bob, inventory):
    client = logged_in(bob)
    web, lab = inventory["web"], inventory["lab"]

    response = client.post(f"/inventory/groups/{web.pk}/edit/", {"name": "web", "children": [lab.pk], "variables_text": "app_port: 8080"})
    assert response.status_code == 400 and "loop" in str(response.context["form"].errors["children"])

    response = client.post("/inventory/groups/new/", {"name": "europe", "children": [lab.pk], "variables_text": "region: eu"})
    europe = Group.objects.get(name="europe")
    assert response.status_code == 302
    assert list(europe.children.values_list("name", flat=True)) == ["lab"] and europe.variables == {"region": "eu"}
    assert "web" in client.get(f"/inventory/groups/{lab.pk}/").content.decode()


def test_credentials_show_only_their_public_part(bob, db):
    private, public = generate_keypair()
    client = logged_in(bob)

    response = client.post("/inventory/credentials/new/?kind=ssh-key", {"kind": "ssh-key", "name": "deploy-key", "secret_private_key": private,
                                                                        "secret_become_password": "sudo-secret-123"})
    assert response.status_code == 302
    credential = Credential.objects.get(name="deploy-key")
    listing = client.get("/inventory/credentials/").content.decode()
    edit = client.get(f"/inventory/credentials/{credential.pk}/edit/").content.decode()

    assert credential.public["fingerprint"] in listing
    for page in (listing, edit):
        assert "PRIVATE KEY" not in page and private.splitlines()[1] not in page and "sudo-secret-123" not in page
    assert "sudo-secret-123" not in credential.secret_encrypted and "PRIVATE" not in credential.secret_encrypted
    assert credential.get_secret()["become_password"] == "sudo-secret-123"


def test_editing_a_credential_without_a_new_secret_keeps_it(bob, db):
    private, _ = generate_keypair()
    credential = key_credential(private, name="keep-me")

    response = logged_in(bob).post(f"/inventory/credentials/{credential.pk}/edit/", {"name": "keep-me", "description": "renamed nothing"})

    credential.refresh_from_db()
    assert response.status_code == 302
    assert credential.description == "renamed nothing" and credential.get_secret()["private_key"].strip() == private.strip()


def test_a_broken_or_encrypted_key_is_a_field_error(bob, db):
    private, _ = generate_keypair(passphrase="right horse")
    client = logged_in(bob)

    broken = client.post("/inventory/credentials/new/?kind=ssh-key", {"kind": "ssh-key", "name": "k1", "secret_private_key": "not a key"})
    encrypted = client.post("/inventory/credentials/new/?kind=ssh-key", {"kind": "ssh-key", "name": "k2", "secret_private_key": private})
    wrong = client.post("/inventory/credentials/new/?kind=ssh-key", {"kind": "ssh-key", "name": "k3", "secret_private_key": private, "secret_passphrase": "wrong"})
    right = client.post("/inventory/credentials/new/?kind=ssh-key", {"kind": "ssh-key", "name": "k4", "secret_private_key": private, "secret_passphrase": "right horse"})

    assert broken.status_code == 400 and "Not a usable" in str(broken.context["form"].errors["secret_private_key"])
    assert encrypted.status_code == 400 and "passphrase" in str(encrypted.context["form"].errors["secret_private_key"])
    assert wrong.status_code == 400
    assert right.status_code == 302 and Credential.objects.filter(name="k4").exists()
    assert not Credential.objects.filter(name__in=["k1", "k2", "k3"]).exists()


def test_a_credential_in_use_cannot_be_deleted(bob, inventory):
    private, _ = generate_keypair()
    credential = key_credential(private)
    inventory["db01"].credential = credential
    inventory["db01"].save()

    response = logged_in(bob).post(f"/inventory/credentials/{credential.pk}/delete/", follow=True)

    assert Credential.objects.filter(pk=credential.pk).exists()
    assert "still used" in response.content.decode()


def test_the_dashboard_counts_servers_and_reachable_ones(bob, inventory):
    body = logged_in(bob).get("/").content.decode()

    assert "servers" in body and "2 reachable, 1 unreachable" in body
    assert 'href="/inventory/"' in body


def test_importing_shows_a_preview_then_imports_on_confirmation(bob, db):
    client = logged_in(bob)
    text = "[web]\nweb[01:02] ansible_user=deploy ansible_port=2222\n[lab:children]\nweb\n[lab:vars]\nregion=eu\n"

    preview = client.post("/inventory/import/", {"text": text})
    assert preview.status_code == 200 and Server.objects.count() == 0
    body = preview.content.decode()
    assert "2 server(s) to create" in body and "deploy@web01:2222" in body and 'id="confirm-import"' in body

    done = client.post("/inventory/import/", {"text": text, "confirm": "1"}, follow=True)
    assert sorted(Server.objects.values_list("name", flat=True)) == ["web01", "web02"]
    assert Group.objects.get(name="lab").variables == {"region": "eu"}
    assert "Imported: 2 server(s) created" in done.content.decode()
    assert AuditEvent.objects.filter(action="create", object_repr="web01", username="bob").exists()


def test_a_broken_inventory_is_shown_with_its_line_and_nothing_is_imported(bob, db):
    response = logged_in(bob).post("/inventory/import/", {"text": "[web]\nweb01 port\n", "confirm": "1"})

    assert response.status_code == 400
    assert "inventory, line 2: expected key=value" in response.content.decode()
    assert Server.objects.count() == 0


def test_the_inventory_downloads_as_ini_and_yaml(bob, inventory):
    client = logged_in(bob)

    ini = client.get("/inventory/export/?format=ini")
    yaml_file = client.get("/inventory/export/?format=yaml")

    assert ini["Content-Disposition"] == 'attachment; filename="inventory.ini"'
    assert "[lab:children]\ndb\nweb" in ini.content.decode()
    assert "web01:" in yaml_file.content.decode()


def test_a_recipe_that_cannot_run_is_a_field_error_on_the_run_form(bob, inventory):
    server = inventory["servers"][0]
    response = logged_in(bob).post("/inventory/run/", {"servers": [server.pk], "playbook": "- name: x\n  nosuchmodule: {}\n", "forks": 20})

    assert response.status_code == 400
    assert "playbook, line 2, column 3: unknown module 'nosuchmodule'" in html.unescape(response.content.decode())
    assert Job.objects.count() == 0


def test_the_run_form_starts_a_job_and_shows_its_hosts(bob, inventory):
    servers = inventory["servers"][:2]
    client = logged_in(bob)

    selected = client.post("/inventory/run/", {"select": "1", "servers": [s.pk for s in servers]})
    assert selected.status_code == 200 and "web01" in selected.content.decode() and "errorlist" not in selected.content.decode()
    response = client.post("/inventory/run/", {"servers": [s.pk for s in servers], "recipe": "base-packages", "check": "on", "forks": 5})

    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/inventory/runs/{job.pk}/"
    assert job.params["check"] is True and job.params["forks"] == 5 and sorted(job.params["servers"]) == sorted(s.pk for s in servers)
    page = client.get(f"/inventory/runs/{job.pk}/")
    assert page.status_code == 200 and "Waiting for the first host" in page.content.decode()
    assert logged_in(bob).get(f"/inventory/runs/{job.pk}/", HTTP_HX_REQUEST="true").content.decode().startswith("\n<section")


def test_the_state_panel_refreshes_itself_through_htmx(bob, inventory):
    server = inventory["servers"][1]
    Server.objects.filter(pk=server.pk).update(probe_error="web02 (root@10.0.0.2:22): cannot connect (Connection refused).")

    response = logged_in(bob).get(f"/inventory/servers/{server.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="server-state")

    body = response.content.decode()
    assert body.lstrip().startswith('<section class="card" id="server-state"') and "<html" not in body
    assert "unreachable" in body and "Connection refused" in body and 'hx-trigger="every 10s"' in body


@pytest.mark.parametrize("filename, text", [
    ("hosts.ini", "[web]\nweb01 ansible_host=10.0.0.1\nweb02 ansible_host=10.0.0.2\n"),
    ("hosts.yml", "all:\n  children:\n    web:\n      hosts:\n        web01: {ansible_host: 10.0.0.1}\n        web02: {ansible_host: 10.0.0.2}\n"),
])
def test_an_uploaded_inventory_is_shown_in_the_preview_so_that_confirming_imports_it(bob, db, filename, text):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = logged_in(bob)
    preview = client.post("/inventory/import/", {"text": "", "upload": SimpleUploadedFile(filename, text.encode())})
    assert preview.status_code == 200 and 'id="confirm-import"' in preview.content.decode()
    # What the browser sends on "Import": the form as the preview rendered it (a file input comes back empty).
    shown = re.search(r'<textarea name="text"[^>]*>(.*?)</textarea>', preview.content.decode(), re.S)
    assert shown and html.unescape(shown.group(1)).strip() == text.strip()

    client.post("/inventory/import/", {"text": html.unescape(shown.group(1)), "confirm": "1"})
    assert sorted(Server.objects.values_list("name", flat=True)) == ["web01", "web02"]
