"""The recipe engine on real sshd processes: idempotence, check mode, failures per host, Ansible features."""

import shlex
from pathlib import Path

import pytest

from clusters.drivers.ssh import SshTarget
from clusters.recipes import load_file, load_text
from clusters.recipes.engine import HostSpec, RecipeRun

pytestmark = pytest.mark.ssh

DATA = Path(__file__).resolve().parents[1] / "data"


class Lines:
    """Collects what a run reports, as a JobContext would store it."""

    def __init__(self):
        self.lines = []

    def line(self, text, host="", task="", outcome=""):
        self.lines.append((host, task, outcome, text))

    def progress(self, done, total):
        self.last_progress = (done, total)

    def of(self, host, outcome=None):
        return [line for line in self.lines if line[0] == host and (outcome is None or line[2] == outcome)]


def specs_for(fleet, **variables):
    return [HostSpec(name=f"host{index:02d}", groups=["web"] if index % 2 == 0 else ["db"], variables=dict(variables),
                     target=SshTarget(name=f"host{index:02d}", address=member.host, port=member.port, user=fleet.user,
                                      private_key=fleet.client_private_key))
            for index, member in enumerate(fleet.hosts)]


def run(recipe, specs, check=False, **kwargs):
    lines = Lines()
    summary = RecipeRun(recipe, specs, lines, check=check, **kwargs).run()
    return summary, lines


def test_the_eight_task_recipe_changes_things_once_and_nothing_the_second_time(sshd_fleet_factory, shared_dir):
    fleet = sshd_fleet_factory(3)
    recipe = load_file(DATA / "eight_tasks.yml")
    specs = specs_for(fleet, root=str(shared_dir))

    first, first_lines = run(recipe, specs)
    second, second_lines = run(recipe, specs_for(fleet, root=str(shared_dir)))

    for name in ("host00", "host01", "host02"):
        assert first.recap()[name] == {"ok": 2, "changed": 6, "failed": 0, "skipped": 0, "unreachable": 0}, first_lines.of(name)
        assert second.recap()[name] == {"ok": 8, "changed": 0, "failed": 0, "skipped": 0, "unreachable": 0}, second_lines.of(name)
    config = (shared_dir / "host01" / "etc" / "app.conf").read_text()
    assert config == "# Managed by Filrouge for host01\nlisten=127.0.0.1:8080\nworkers=2\n"
    assert oct((shared_dir / "host01" / "app.service").stat().st_mode & 0o777) == "0o444"
    assert first_lines.last_progress == (24, 24)
    diff = "\n".join(text for host, task, outcome, text in first_lines.of("host00") if task == "Render the app config")
    assert "+listen=127.0.0.1:8080" in diff
    assert first.hosts["host00"].facts["os"]["id"] == "debian"


def test_check_mode_reports_what_would_change_and_changes_nothing(sshd_fleet_factory, shared_dir):
    fleet = sshd_fleet_factory(2)
    recipe = load_file(DATA / "eight_tasks.yml")

    summary, lines = run(recipe, specs_for(fleet, root=str(shared_dir)), check=True)

    assert list(shared_dir.iterdir()) == []
    recap = summary.recap()["host00"]
    assert recap["changed"] >= 2 and recap["failed"] == 0
    assert any(text.startswith("would change: directory") for _h, _t, _o, text in lines.of("host00", "changed"))


def test_a_failed_host_does_not_stop_the_others(sshd_fleet_factory, shared_dir):
    fleet = sshd_fleet_factory(3)
    recipe = load_text("""
- name: Refuse on host01
  command: "test {{ inventory_hostname }} != host01"
- name: Leave a mark
  file: {path: "{{ root }}/{{ inventory_hostname }}", state: touch}
""")

    summary, lines = run(recipe, specs_for(fleet, root=str(shared_dir)))

    assert summary.failed_hosts == ["host01"]
    assert summary.recap()["host01"]["failed"] == 1 and summary.recap()["host00"]["changed"] == 2
    assert sorted(path.name for path in shared_dir.iterdir()) == ["host00", "host02"]
    assert "exit 1" in lines.of("host01", "failed")[0][3]


def test_shell_metacharacters_in_values_stay_data(sshd_fleet_factory, shared_dir):
    fleet = sshd_fleet_factory(1)
    evil = "x; touch {root}/pwned1 && echo $(touch {root}/pwned2) `touch {root}/pwned3` | tee {root}/pwned4".format(root=shared_dir)
    recipe = load_text(f"""
- name: A line with metacharacters
  lineinfile: {{path: "{{{{ root }}}}/odd; name", line: {evil!r}, create: yes}}
- name: A command whose words look like shell
  command: echo {shlex.quote(evil)}
  register: echoed
- name: A file named like an injection
  file: {{path: "{{{{ root }}}}/$(touch pwned5)", state: directory}}
""".replace("{evil!r}", repr(evil)))

    summary, lines = run(recipe, specs_for(fleet, root=str(shared_dir)))

    assert summary.failed_hosts == [], lines.lines
    assert sorted(path.name for path in shared_dir.iterdir()) == ["$(touch pwned5)", "odd; name"]
    assert (shared_dir / "odd; name").read_text() == evil + "\n"


def test_register_when_loop_and_handlers_work_like_ansible(sshd_fleet_factory, shared_dir):
    fleet = sshd_fleet_factory(2)
    recipe = load_text("""
- hosts: web
  vars:
    files: [a, b]
  tasks:
    - name: Files in a loop
      loop: "{{ files }}"
      copy: {dest: "{{ root }}/{{ inventory_hostname }}-{{ item }}", content: "{{ item }}\\n"}
      notify: announce
    - name: Look
      shell: ls {{ root }} | grep '^host00-' 
      register: listing
      changed_when: false
    - name: Only when something is there
      when: "'host00-a' in listing.stdout"
      copy: {dest: "{{ root }}/seen-by-{{ inventory_hostname }}", content: "{{ listing.stdout_lines | length }}\\n"}
    - name: Never
      when: listing is changed
      file: {path: "{{ root }}/never", state: touch}
  handlers:
    - name: announce
      copy: {dest: "{{ root }}/handler-ran-on-{{ inventory_hostname }}", content: "yes\\n"}
""")

    summary, lines = run(recipe, specs_for(fleet, root=str(shared_dir)))
    again, _ = run(recipe, specs_for(fleet, root=str(shared_dir)))

    assert list(summary.recap()) == ["host00", "host01"]
    assert summary.recap()["host01"] == {"ok": 0, "changed": 0, "failed": 0, "skipped": 0, "unreachable": 0}
    assert summary.recap()["host00"] == {"ok": 1, "changed": 3, "failed": 0, "skipped": 1, "unreachable": 0}
    assert (shared_dir / "seen-by-host00").read_text() == "2\n"
    assert (shared_dir / "handler-ran-on-host00").exists() and not (shared_dir / "never").exists()
    assert again.recap()["host00"]["changed"] == 0


def test_an_undefined_variable_fails_the_task_with_its_name_and_line(sshd_fleet_factory):
    fleet = sshd_fleet_factory(1)
    recipe = load_text("- name: Uses a typo\n  file: {path: \"{{ roots }}/x\", state: directory}\n")

    summary, lines = run(recipe, specs_for(fleet))

    assert summary.failed_hosts == ["host00"]
    assert lines.of("host00", "failed")[0][3] == "line 2: 'roots' is undefined"


def test_an_unreachable_host_is_counted_as_such_and_the_others_run(sshd_fleet_factory, shared_dir):
    fleet = sshd_fleet_factory(3)
    fleet.stop_one(1)
    recipe = load_text("- name: Mark\n  file: {path: \"{{ root }}/{{ inventory_hostname }}\", state: touch}\n")

    summary, lines = run(recipe, specs_for(fleet, root=str(shared_dir)))

    assert summary.recap()["host01"]["unreachable"] == 1
    assert summary.recap()["host00"]["changed"] == summary.recap()["host02"]["changed"] == 1
    assert "unreachable:" in lines.of("host01", "failed")[0][3]


def test_setup_takes_ansibles_gather_subset_and_gather_timeout_in_a_task_or_a_play(sshd_fleet_factory):
    fleet = sshd_fleet_factory(1)
    recipe = load_text(
        "- hosts: all\n  gather_facts: yes\n  gather_subset: [min]\n  gather_timeout: 30\n  tasks:\n"
        "    - name: Facts again\n      setup: {gather_subset: ['!all', network], gather_timeout: 20}\n"
        "    - name: Say the kernel\n      debug: {msg: \"{{ ansible_facts.kernel }}\"}\n"
    )

    summary, lines = run(recipe, specs_for(fleet))

    assert summary.recap()["host00"]["failed"] == 0, lines.lines
    gathered = [text for _host, task, _outcome, text in lines.of("host00") if task in ("gather facts", "Facts again")]
    assert len(gathered) == 2 and all("CPU, kernel" in text and "warning: gather_subset ignored" in text for text in gathered), gathered


def test_a_module_without_parameters_says_so_instead_of_an_empty_supported_list():
    from clusters.recipes.modules import MODULES, Module, ModuleSpecError

    with pytest.raises(ModuleSpecError) as error:
        MODULES["setup"].check_args({"gather_subset": "all", "colour": "red"})
    assert str(error.value) == "unsupported parameter 'colour'. Supported: filter, gather_subset, gather_timeout."

    class Bare(Module):
        name = "bare"

        def run(self, host, args):
            raise AssertionError("not run")

    with pytest.raises(ModuleSpecError) as refused:
        Bare().check_args({"colour": "red"})
    assert str(refused.value) == "unsupported parameter 'colour': bare takes no parameters."
