"""Reading real playbooks: keywords people use every day, honest messages, every problem at once, projects."""

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from clusters.recipes import RecipeError, load_file, load_text
from clusters.recipes.engine import batches, loop_items, tags_selected
from clusters.recipes.loader import split_args
from clusters.recipes.project import encode_archive, opened_project

PROJECT = Path(__file__).resolve().parents[1] / "data" / "projects" / "webrole"


def refused(text):
    with pytest.raises(RecipeError) as error:
        load_text(text, source="site.yml")
    return str(error.value)


# ---- the four misleading messages of issue 16 ----------------------------------------------------

def test_remote_user_is_accepted_and_not_listed_as_known_then_refused():
    recipe = load_text("- hosts: web\n  remote_user: deploy\n  become: yes\n  tasks:\n    - name: Hi\n      ping:\n")

    assert recipe.engine == "native" and recipe.plays[0].remote_user == "deploy"


def test_the_old_action_keyword_is_read_as_its_module_not_as_an_unsupported_module():
    native = load_text("- hosts: all\n  tasks:\n    - name: Old style\n      action: file path=/tmp/x state=touch\n"
                       "    - name: Mapping style\n      action:\n        module: command\n        cmd: uptime\n")
    other = load_text("- hosts: all\n  tasks:\n    - name: Wait\n      action: wait_for port=22\n")

    assert [task.module for task in native.plays[0].tasks] == ["file", "command"]
    assert native.plays[0].tasks[0].args == {"path": "/tmp/x", "state": "touch"}
    assert other.engine == "ansible-runner" and other.engine_reason() == "module wait_for is not native, line 4"


def test_a_play_level_include_is_named_on_its_own_line():
    message = refused("- include: other.yml\n- hosts: all\n  tasks:\n    - name: Hi\n      ping:\n")

    assert message == ("site.yml, line 1, column 3: the play-level `include` was removed from Ansible (2.16); "
                       "write `import_playbook: other.yml` instead.")


def test_the_panel_internal_login_guard_is_not_offered_as_a_module():
    message = refused("- name: x\n  frobnicate: {}\n")

    assert "Native: apt, assert, authorized_key, command" in message and "login_guard" not in message


# ---- every problem at once, with its line ------------------------------------------------------

def test_every_problem_is_reported_at_once_with_its_line():
    message = refused(
        "- hosts: all\n"
        "  tasks:\n"
        "    - name: One\n"
        "      frobnicate: {}\n"
        "    - name: Two\n"
        "      file: {path: /a, state: folder}\n"
        "    - name: Three\n"
        "      copy: {dest: /a, content: b}\n"
        "      notify: nobody\n"
        "  hostz: web\n"
    )

    lines = message.splitlines()
    assert lines[0] == "4 problems:"
    assert lines[1].startswith("site.yml, line 10, column 3: 'hostz' is not a play keyword")
    assert any(line.startswith("site.yml, line 4, column 7: unknown module 'frobnicate'") for line in lines)
    assert any(line.startswith("site.yml, line 6, column 24: file in task 'Two': state must be one of") for line in lines)
    assert any(line.startswith("site.yml, line 9: task 'Three' notifies 'nobody'") for line in lines)


@pytest.mark.parametrize("text, reason", [
    ("- hosts: all\n  tasks:\n    - debug: msg=\"{{ lookup('file', '/etc/hostname') }}\"\n", "the lookup file is not native, line 3"),
    ("- hosts: all\n  tasks:\n    - debug: msg={{ item }}\n      with_lines: cat /etc/hosts\n", "with_lines (the lines lookup) is not native, line 4"),
    ("- hosts: all\n  strategy: host_pinned\n  tasks: []\n", "strategy host_pinned is not native, line 2"),
    ("- hosts: all\n  tasks:\n    - command: uptime\n      async: 60\n", "task keyword async is not native, line 4"),
    ("- hosts: all\n  tasks:\n    - copy: {dest: /a, content: b, checksum: abc}\n", "parameter checksum of copy is not native, line 3"),
    ("- hosts: all\n  tasks:\n    - debug: msg=\"{{ hostvars[groups.db[0]].ansible_host }}\"\n", "hostvars (other hosts' variables and facts) is not native, line 3"),
    ("- hosts: all\n  become: yes\n  become_method: su\n  tasks: []\n", "become_method su is not native (sudo is), line 3"),
    ("- hosts: all\n  tasks:\n    - debug: msg=\"{{ ansible_default_ipv4.address }}\"\n", "the fact ansible_default_ipv4 is not gathered natively, line 3"),
])
def test_what_the_native_engine_lacks_goes_to_ansible_runner_and_says_why(text, reason):
    recipe = load_text(text, source="site.yml")

    assert recipe.engine == "ansible-runner"
    assert recipe.engine_reason() == reason
    assert recipe.playbook_text == text


def test_a_task_list_that_needs_ansible_runner_becomes_a_playbook_for_it():
    recipe = load_text("- name: Wait\n  wait_for: {port: 22, timeout: 5}\n")

    assert recipe.engine == "ansible-runner"
    assert recipe.playbook_text.startswith("- hosts: all\n  gather_facts: false\n  tasks:\n  - name: Wait\n")


def test_the_features_real_playbooks_use_are_native():
    recipe = load_file(PROJECT / "site.yml")

    play = recipe.plays[0]
    assert recipe.engine == "native", recipe.engine_reason()
    labels = [task.label for task in play.tasks]
    assert labels == ["base : Base folder", "web : Site folders", "web : Write the site config", "web : Drop the default page",
                      "web : Check the config is readable"]
    assert [handler.label for handler in play.handlers] == ["web : reload web"]
    assert play.tasks[1].loop_kind == "items" and play.tasks[2].notify == ["reload web"]
    assert {tag for task in play.tasks for tag in task.tags} == {"web"}
    assert recipe.group_vars == {"all": {"web_owner_note": "managed by the panel"}}
    assert play.tasks[0].role.name == "base" and play.tasks[1].role.defaults["web_port"] == 8080


@pytest.mark.parametrize("text, words", [
    ("path={{ root }}/{{ item }} state=directory mode=0755", ["path={{ root }}/{{ item }}", "state=directory", "mode=0755"]),
    ('msg="hello world" var={{ x | default("a b") }}', ["msg=hello world", 'var={{ x | default("a b") }}']),
    ("content='{{ a }}\\n' dest=/x", ["content={{ a }}\\n", "dest=/x"]),
])
def test_key_value_arguments_split_as_ansible_does(text, words):
    assert split_args(text) == words


def test_tags_follow_ansible_rules():
    assert tags_selected(set()) and not tags_selected({"never"})
    assert tags_selected({"web"}, only={"web"}) and not tags_selected({"db"}, only={"web"})
    assert tags_selected({"always"}, only={"web"}) and not tags_selected({"always"}, only={"web"}, skip={"always"})
    assert tags_selected({"never", "debug"}, only={"debug"}) and not tags_selected({"web"}, skip={"web"})
    assert tags_selected(set(), only={"untagged"}) and not tags_selected({"x"}, only={"untagged"})
    assert tags_selected({"x"}, only={"tagged"}) and not tags_selected(set(), only={"tagged"})


def test_loops_and_serial_batches_read_like_ansible():
    assert loop_items("items", [["a", "b"], "c"], ()) == ["a", "b", "c"]
    assert loop_items("dict", {"x": 1}, ()) == [{"key": "x", "value": 1}]
    assert loop_items("nested", [["a", "b"], [1, 2]], ()) == [["a", 1], ["a", 2], ["b", 1], ["b", 2]]
    assert loop_items("together", [["a", "b"], [1]], ()) == [["a", 1], ["b", None]]
    assert loop_items("sequence", "start=1 end=3 format=disk%02d", ()) == ["disk01", "disk02", "disk03"]
    assert loop_items("indexed_items", ["a", "b"], ()) == [[0, "a"], [1, "b"]]
    assert [len(batch) for batch in batches(list(range(10)), ["1", "50%"])] == [1, 5, 4]
    assert [len(batch) for batch in batches(list(range(5)), ["2"])] == [2, 2, 1]


# ---- projects: a folder, an archive -----------------------------------------------------------------

def archive_of(folder, kind="zip", prefix="webrole/"):
    data = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(data, "w") as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, prefix + str(path.relative_to(folder)))
    else:
        with tarfile.open(fileobj=data, mode="w:gz") as archive:
            archive.add(folder, arcname=prefix.rstrip("/"))
    return data.getvalue()


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_an_uploaded_project_is_read_with_its_roles(kind):
    with opened_project(encode_archive(archive_of(PROJECT, kind)), source="webrole.zip") as recipe:
        assert recipe.engine == "native" and recipe.task_count == 5
        assert recipe.source == "webrole.zip:site.yml" and not recipe.trusted_paths
        folder = recipe.base_dir
        assert (folder / "roles" / "web" / "templates" / "site.conf.j2").is_file()
    assert not folder.exists()
    with opened_project(encode_archive(archive_of(PROJECT, kind)), playbook="wait.yml") as other:
        assert other.engine == "ansible-runner"


def test_a_project_archive_that_escapes_its_folder_is_refused():
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("../../etc/cron.d/evil", "* * * * * root true\n")
    with pytest.raises(RecipeError, match="a path outside its folder"):
        with opened_project(encode_archive(data.getvalue())):
            pass


def test_the_api_starts_a_run_of_an_uploaded_project(bob):
    from clusters.models import Server
    from panel.jobs.models import Job
    from tests.fixtures.actors import api_client

    server = Server.objects.create(name="web0", address="10.0.0.1")
    client = api_client(bob)
    body = {"project": encode_archive(archive_of(PROJECT)), "servers": [server.pk], "tags": ["web"]}

    started = client.post("/api/recipe-runs/", body, format="json")
    broken = client.post("/api/recipe-runs/", {**body, "playbook_file": "nope.yml"}, format="json")

    assert started.status_code == 201, started.data
    assert Job.objects.get(pk=started.data["id"]).params["tags"] == ["web"]
    assert broken.status_code == 400 and "the project has no playbook 'nope.yml'" in json.dumps(broken.data)


def test_the_run_page_takes_a_project_archive(bob):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from clusters.models import Server
    from panel.jobs.models import Job
    from tests.fixtures.actors import logged_in

    server = Server.objects.create(name="web0", address="10.0.0.1")
    upload = SimpleUploadedFile("webrole.zip", archive_of(PROJECT), content_type="application/zip")

    response = logged_in(bob).post("/inventory/run/", {"servers": [server.pk], "project": upload, "forks": 5, "skip_tags": "web"})

    job = Job.objects.get()
    assert response.status_code == 302, response.content.decode()[:2000]
    assert job.params["skip_tags"] == ["web"] and job.params["project"]
