"""Reading recipes and playbooks: what runs, and what is refused (with its line) before anything runs."""

from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

from clusters.recipes import RecipeError, builtin_names, load_builtin, load_file, load_text
from clusters.recipes.engine import HostSpec, evaluate, host_matches, render_value
from clusters.recipes.modules import LineInFileModule

EXAMPLES = Path(__file__).resolve().parents[4] / "shared" / "examples" / "ansible"


def test_the_example_playbook_reads_as_one_play_with_its_six_tasks():
    recipe = load_file(EXAMPLES / "webapp.yml")

    play = recipe.plays[0]
    assert (play.hosts, play.become, play.vars) == ("web", True, {"app_dir": "/opt/notes"})
    assert [task.module for task in play.tasks] == ["apt", "file", "copy", "lineinfile", "template", "systemd"]
    assert play.tasks[2].args == {"src": "build/notes.py", "dest": "{{ app_dir }}/notes.py"}
    assert recipe.base_dir == EXAMPLES


def test_every_built_in_recipe_reads():
    assert builtin_names() == ["base-packages", "deploy-user", "docker-engine", "gunicorn-app", "ssh-hardening"]
    for name in builtin_names():
        recipe = load_builtin(name)
        assert recipe.task_count >= 1 and recipe.description


@pytest.mark.parametrize("text, expected", [
    ("- name: Install\n  aptitude: {name: vim}\n", "line 2, column 3: unknown module 'aptitude' in task 'Install': it is not native, and Ansible knows no such module"),
    ("- name: Dir\n  file:\n    path: /a\n    state: folder\n", "line 4, column 5: file in task 'Dir': state must be one of"),
    ("- name: Mode\n  file: {path: /a, mode: rwxr}\n", "line 2, column 20: file in task 'Mode': mode must be an octal mode"),
    ("- name: Two\n  copy: {dest: /a, content: b}\n  shell: echo\n", "line 3, column 3: task 'Two' has several modules or an unknown keyword"),
    ("- name: Nothing\n  become: yes\n", "line 1, column 3: task 'Nothing' names no module"),
    ("- name: x\n  copy: {dest: /a, content: b}\n  notify: restart web\n", "line 3: task 'x' notifies 'restart web', which is not a handler"),
    ("- hosts: all\n  tasks:\n    - include_tasks: other.yml\n", "line 3, column 7: include_tasks other.yml needs the project folder"),
    ("- name: x\n  copy: {dest: /a, content: b\n", "line 3, column 1: expected ',' or '}'"),
    ("- name: x\n\tcopy: {}\n", "line 2, column 1: found character '\\t' that cannot start any token"),
    ("- name: x\n  lineinfile: {path: /a, line: b, regexp: '(['}\n", "regexp is not a valid regular expression"),
    ("- name: x\n  copy: {dest: /a}\n", "give exactly one of src"),
    ("", "the file is empty"),
    ("just a string", "expected a list of tasks or plays"),
])
def test_bad_recipes_are_refused_naming_the_line(text, expected):
    with pytest.raises(RecipeError) as error:
        load_text(text, source="site.yml")

    assert str(error.value).startswith("site.yml")
    assert expected in str(error.value)


def test_free_form_arguments_aliases_and_qualified_names_are_accepted():
    recipe = load_text("""
- ansible.builtin.command: echo hello
- package: name=curl state=present
- shell: ls | wc -l
  args: {chdir: /tmp}
- ansible.posix.authorized_key: {user: deploy, key: "{{ key }}"}
""")
    tasks = recipe.plays[0].tasks

    assert [task.module for task in tasks] == ["command", "apt", "shell", "authorized_key"]
    assert tasks[0].args == {"_raw_params": "echo hello"}
    assert tasks[1].args == {"name": "curl", "state": "present"}
    assert tasks[2].args == {"_raw_params": "ls | wc -l", "chdir": "/tmp"}


@pytest.mark.parametrize("lines, args, expected", [
    (["a", "#PermitRootLogin yes", "b"], {"regexp": "^#?PermitRootLogin", "line": "PermitRootLogin no"}, ["a", "PermitRootLogin no", "b"]),
    (["a"], {"regexp": "^#?PermitRootLogin", "line": "PermitRootLogin no"}, ["a", "PermitRootLogin no"]),
    (["PermitRootLogin no"], {"regexp": "^#?PermitRootLogin", "line": "PermitRootLogin no"}, ["PermitRootLogin no"]),
    (["x", "y"], {"line": "first", "insertbefore": "BOF"}, ["first", "x", "y"]),
    (["x", "[s]", "y"], {"line": "k=v", "insertafter": r"^\[s\]"}, ["x", "[s]", "k=v", "y"]),
    (["x", "drop me", "y"], {"line": "drop me", "state": "absent"}, ["x", "y"]),
    (["x", "port=1", "port=2"], {"regexp": "^port=", "state": "absent"}, ["x"]),
])
def test_lineinfile_edits_like_ansible(lines, args, expected):
    full = {"state": "present", "regexp": None, "search_string": None, "insertafter": None, "insertbefore": None, "line": None, **args}

    assert LineInFileModule.edit(lines, full) == expected


def test_host_patterns_select_groups_hosts_and_exclusions():
    spec = HostSpec(name="web01", target=None, groups=["web", "lab"])

    assert host_matches("all", spec) and host_matches("web", spec) and host_matches("db,web01", spec)
    assert host_matches("web*", spec) and not host_matches("db", spec)
    assert not host_matches("lab,!web01", spec) and not host_matches("lab:&db", spec) and host_matches("lab:&web", spec)


def test_templates_keep_types_and_conditions_read_like_ansible():
    variables = {"packages": ["curl", "less"], "app_dir": "/opt/app", "result": {"changed": True, "rc": 0}, "flag": "yes"}

    assert render_value("{{ packages }}", variables) == ["curl", "less"]
    assert render_value({"dest": "{{ app_dir }}/x.py"}, variables) == {"dest": "/opt/app/x.py"}
    assert evaluate("result is changed and result.rc == 0", variables) is True
    assert evaluate(["flag | bool", "'curl' in packages"], variables) is True
    assert evaluate("{{ result is failed }}", variables) is False


def test_templates_run_in_a_sandbox():
    with pytest.raises(SecurityError):
        render_value("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})
