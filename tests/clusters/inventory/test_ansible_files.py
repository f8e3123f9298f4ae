"""Ansible inventories: import (INI, YAML), located errors, export, round trips, and the real ansible-inventory."""

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from clusters.inventory.ansible_files import InventoryError, apply_import, export_dynamic, export_ini, export_yaml, parse_inventory, plan_import
from clusters.models import Group, Server
from panel.audit.models import AuditEvent
from tests.support.keys import generate_keypair
from tests.support.services import require

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "examples" / "ansible"
if not EXAMPLES.exists():  # CI clones the repository with shared/ beside it
    EXAMPLES = Path(__file__).resolve().parents[3] / ".." / "shared" / "examples" / "ansible"


def snapshot():
    """Everything an import sets, in a comparable form."""
    servers = {
        server.name: (server.address, server.port, server.user, server.become, server.variables,
                      sorted(server.groups.values_list("name", flat=True)), server.jump_host.name if server.jump_host else None)
        for server in Server.objects.all()
    }
    groups = {group.name: (group.variables, sorted(group.children.values_list("name", flat=True))) for group in Group.objects.all()}
    return servers, groups


def test_the_example_inventory_imports_with_hosts_ports_users_groups_children_and_vars():
    text = (EXAMPLES / "inventory.ini").read_text()

    apply_import(plan_import(parse_inventory(text, "inventory.ini")))

    servers, groups = snapshot()
    assert servers["web01.lab.test"][:4] == ("127.0.0.1", 2201, "deploy", False)
    assert servers["web02.lab.test"][:3] == ("127.0.0.1", 2202, "deploy")
    assert servers["web02.lab.test"][4] == {"ansible_ssh_private_key_file": "~/.ssh/lab_ed25519"}
    assert servers["db01.lab.test"][:3] == ("db01.lab.test", 2203, "root")
    assert servers["web01.lab.test"][5] == ["web"] and servers["db01.lab.test"][5] == ["db"]
    assert groups["lab"] == ({"ansible_python_interpreter": "/usr/bin/python3"}, ["db", "web"])


def test_export_then_import_loses_nothing_in_both_formats():
    text = (EXAMPLES / "inventory.ini").read_text() + """
[db:vars]
backup_hour=3
quoted="a value with spaces"
number_as_text="42"
flags=['x', 'y']

[all:vars]
ntp_server=ntp.lab.test

[edge]
bastion ansible_host=192.0.2.10 ansible_become=true
inner ansible_host=10.1.0.5 ansible_ssh_common_args='-o ProxyJump=bastion' owner="ops team" limits="{'cpu': 2}"
"""
    apply_import(plan_import(parse_inventory(text, "inventory.ini")))
    original = snapshot()
    assert original[0]["inner"][6] == "bastion" and original[0]["bastion"][3] is True
    assert original[0]["inner"][4] == {"owner": "ops team", "limits": {"cpu": 2}}
    assert original[1]["db"][0] == {"backup_hour": 3, "quoted": "a value with spaces", "number_as_text": "42", "flags": ["x", "y"]}

    for exporter, fmt in ((export_ini, "ini"), (export_yaml, "yaml")):
        exported = exporter()
        Server.objects.update(jump_host=None)
        Server.objects.all().delete()
        Group.objects.all().delete()
        apply_import(plan_import(parse_inventory(exported, f"exported.{fmt}")))
        assert snapshot() == original, fmt


def test_a_second_identical_import_changes_nothing():
    text = (EXAMPLES / "inventory.ini").read_text()
    apply_import(plan_import(parse_inventory(text, "inventory.ini")))

    plan = plan_import(parse_inventory(text, "inventory.ini"))

    assert plan.counts["servers_created"] == plan.counts["servers_updated"] == 0
    assert plan.counts["groups_created"] == plan.counts["groups_updated"] == 0


def test_ranges_older_spellings_and_host_port_are_understood():
    inventory = parse_inventory("""
[web]
web[01:03].lab.test ansible_ssh_user=app ansible_ssh_port=2222
db-[a:b]:2299 ansible_ssh_host=10.0.0.9
[odd]
node[1:9:4]
""", "hosts")
    apply_import(plan_import(inventory))

    servers = snapshot()[0]
    assert sorted(servers) == ["db-a", "db-b", "node1", "node5", "node9", "web01.lab.test", "web02.lab.test", "web03.lab.test"]
    assert servers["web02.lab.test"][1:3] == (2222, "app")
    assert servers["db-b"][:3] == ("10.0.0.9", 2299, "root")


def test_a_yaml_inventory_with_nested_children_imports():
    text = """
all:
  vars: {timezone: UTC}
  hosts:
    lonely.lab.test:
  children:
    lab:
      vars: {env: lab}
      children:
        web:
          hosts:
            web[1:2].lab.test: {ansible_user: deploy}
        db:
          hosts:
            db1.lab.test:2203:
"""
    apply_import(plan_import(parse_inventory(text, "inventory.yml")))

    servers, groups = snapshot()
    assert servers["web2.lab.test"][2] == "deploy" and servers["db1.lab.test"][1] == 2203
    assert servers["lonely.lab.test"][5] == []
    assert groups["lab"] == ({"env": "lab"}, ["db", "web"]) and groups["all"][0] == {"timezone": "UTC"}


@pytest.mark.parametrize("text, fmt, expected", [
    ("[web\nweb01\n", "ini", "inventory, line 1: cannot read the section header"),
    ("[web]\nweb01 ansible_port\n", "ini", "inventory, line 2: expected key=value"),
    ("[web]\nweb[05:01]\n", "ini", "inventory, line 2: range [05:01] goes backwards"),
    ("[web]\nweb01 note='unclosed\n", "ini", "inventory, line 2: No closing quotation"),
    ("[lab:children]\nweb db\n", "ini", "inventory, line 2: one group name per line"),
    ("[a:children]\nb\n[b:children]\na\n", "ini", "contains itself"),
    ("all:\n  children:\n    web:\n      hosts: [web01]\n", "yaml", "inventory, line 4: hosts of 'web' must be a mapping"),
    ("all:\n  children:\n    web:\n      hostz: {}\n", "yaml", "inventory, line 4: unknown key 'hostz'"),
    ("all:\n  hosts:\n    web01: {a: 1\n", "yaml", "inventory, line 4, column 1"),
])
def test_broken_inventories_are_refused_with_their_line(text, fmt, expected):
    with pytest.raises(InventoryError) as error:
        parse_inventory(text, "inventory", fmt)

    assert expected in str(error.value)


def test_passwords_in_an_inventory_go_into_an_encrypted_credential_not_variables():
    plan = plan_import(parse_inventory("[web]\nweb01 ansible_password=hunter2-secret ansible_become_pass=sudo-secret\n", "hosts"))
    apply_import(plan)

    server = Server.objects.get(name="web01")
    assert "hunter2-secret" not in json.dumps(server.variables) and "hunter2" not in json.dumps(plan.as_dict())
    assert server.credential.kind == "password"
    assert server.credential.get_secret() == {"password": "hunter2-secret", "become_password": "sudo-secret"}
    assert "hunter2-secret" not in export_ini() and "hunter2-secret" not in export_yaml()


def test_the_import_command_previews_with_dry_run_and_then_imports(tmp_path, capsys):
    private, _ = generate_keypair()
    key_file = tmp_path / "lab_ed25519"
    key_file.write_text(private)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text((EXAMPLES / "inventory.ini").read_text().replace("~/.ssh/lab_ed25519", str(key_file)))

    call_command("import_inventory", str(inventory), "--dry-run")
    out = capsys.readouterr().out
    assert "server create    web01.lab.test  deploy@127.0.0.1:2201  groups: web" in out
    assert "Nothing was changed" in out and Server.objects.count() == 0

    call_command("import_inventory", str(inventory))
    assert Server.objects.count() == 3
    web02 = Server.objects.get(name="web02.lab.test")
    assert web02.credential.kind == "ssh-key" and web02.credential.public["key_type"] == "ssh-ed25519"
    assert AuditEvent.objects.filter(source="cli", action="create", object_repr="web02.lab.test").exists()


def test_the_import_command_fails_with_the_location_of_the_error(tmp_path):
    broken = tmp_path / "broken.ini"
    broken.write_text("[web]\nweb01\n[web:vars]\nnot a pair\n")

    with pytest.raises(CommandError, match="broken.ini, line 4: expected key=value"):
        call_command("import_inventory", str(broken))
    assert Server.objects.count() == 0


def test_the_dynamic_inventory_lists_groups_children_and_hostvars():
    apply_import(plan_import(parse_inventory((EXAMPLES / "inventory.ini").read_text(), "inventory.ini")))

    data = export_dynamic()

    assert data["web"]["hosts"] == ["web01.lab.test", "web02.lab.test"]
    assert data["lab"]["children"] == ["db", "web"] and data["lab"]["vars"] == {"ansible_python_interpreter": "/usr/bin/python3"}
    assert data["_meta"]["hostvars"]["db01.lab.test"] == {"ansible_port": 2203, "ansible_user": "root"}
    assert "lab" in data["all"]["children"] and "web" not in data["all"]["children"]


DYNAMIC_SCRIPT = """#!{python}
# Filrouge as an Ansible dynamic inventory (docs/api-guide.md).
import json, os, sys, urllib.request
if "--host" in sys.argv:
    print("{{}}"); sys.exit(0)
request = urllib.request.Request(os.environ["FILROUGE_URL"] + "/api/inventory/ansible/",
                                 headers={{"Authorization": "Bearer " + os.environ["FILROUGE_TOKEN"]}})
print(urllib.request.urlopen(request).read().decode())
"""


@pytest.mark.django_db(transaction=True)
def test_the_real_ansible_inventory_accepts_the_dynamic_inventory(live_server, bob, tmp_path):
    ansible_inventory = shutil.which("ansible-inventory", path=str(Path(sys.executable).parent)) or shutil.which("ansible-inventory")
    require(ansible_inventory, "ansible-inventory is missing (pip install '.[test]' brings ansible-core)")
    from tests.fixtures.actors import api_client

    apply_import(plan_import(parse_inventory((EXAMPLES / "inventory.ini").read_text(), "inventory.ini")))
    token = api_client(bob, scope="read").plaintext
    script = tmp_path / "filrouge_inventory.py"
    script.write_text(DYNAMIC_SCRIPT.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "FILROUGE_URL": live_server.url, "FILROUGE_TOKEN": token, "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"), "ANSIBLE_HOME": str(tmp_path / "ansible-home")}

    result = subprocess.run([ansible_inventory, "-i", str(script), "--list"], capture_output=True, text=True, env=env, timeout=120)

    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert sorted(listed["web"]["hosts"]) == ["web01.lab.test", "web02.lab.test"]
    assert listed["_meta"]["hostvars"]["web01.lab.test"]["ansible_port"] == 2201
    assert listed["_meta"]["hostvars"]["db01.lab.test"]["ansible_python_interpreter"] == "/usr/bin/python3"  # group var inherited
    assert set(listed["lab"]["children"]) == {"db", "web"}


def test_attaching_a_credential_or_a_jump_host_to_existing_servers_is_previewed_as_a_change():
    from clusters.models import Credential

    text = "[web]\nweb01 ansible_host=10.0.0.1\nbastion ansible_host=10.0.0.9\n"
    apply_import(plan_import(parse_inventory(text, "inventory.ini")))
    credential = Credential(name="deploy-key", kind="ssh-key")
    credential.set_secret({"private_key": generate_keypair()[0]})
    credential.save()

    plan = plan_import(parse_inventory(text, "inventory.ini"), default_credential=credential)
    rows = {item["name"]: item for item in plan.servers}
    assert (rows["web01"]["action"], rows["web01"]["changed"]) == ("update", ["credential"])
    assert plan.counts["servers_updated"] == 2 and plan.counts["servers_unchanged"] == 0
    apply_import(plan)
    assert Server.objects.get(name="web01").credential == credential
    assert plan_import(parse_inventory(text, "inventory.ini"), default_credential=credential).counts["servers_unchanged"] == 2

    jumped = text.replace("web01 ansible_host=10.0.0.1", "web01 ansible_host=10.0.0.1 ansible_ssh_common_args='-J bastion'")
    rows = {item["name"]: item for item in plan_import(parse_inventory(jumped, "inventory.ini"), default_credential=credential).servers}
    assert (rows["web01"]["action"], rows["web01"]["changed"]) == ("update", ["jump_host"])
