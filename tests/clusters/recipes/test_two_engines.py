"""One job, two engines: the native engine for what it runs, ansible-runner for the rest (real sshd hosts)."""

from pathlib import Path

import pytest

from clusters.models import Group, ServerJob
from panel.jobs.models import JobEvent, Status

from tests.clusters.conftest import fleet_servers, job_text, key_credential, run_now

pytestmark = [pytest.mark.ssh, pytest.mark.django_db(transaction=True)]

PROJECT = Path(__file__).resolve().parents[1] / "data" / "projects" / "webrole"


def run_path(path, **params):
    """As `manage.py run_recipe PATH` does: a file or folder on the panel's machine, validated as the command line."""
    from panel.jobs.kinds import get_kind
    from panel.jobs.models import Job
    from panel.jobs.runner import execute

    kind = get_kind("recipe-run")
    cleaned = kind.validate({"path": str(path), **params}, context={"user": None, "cli": True})
    job = Job.objects.create(kind=kind.name, queue=kind.queue, params=cleaned, timeout=kind.timeout)
    execute(job.pk)
    job.refresh_from_db()
    return job


def first_line(job):
    return JobEvent.objects.filter(job=job).order_by("seq").first().text


def recaps(job):
    return {link.server.name: {key: link.recap[key] for key in ("ok", "changed", "failed", "skipped", "unreachable")}
            for link in ServerJob.objects.filter(job=job).select_related("server")}


@pytest.fixture
def web_fleet(sshd_fleet_factory, shared_dir):
    def make(count=2):
        fleet = sshd_fleet_factory(count)
        group = Group.objects.create(name="web", variables={"web_root": str(shared_dir)})
        return fleet, fleet_servers(fleet, key_credential(fleet.client_private_key), group=group)

    return make


def test_a_role_with_handlers_runs_natively_and_changes_nothing_the_second_time(bob, web_fleet, shared_dir):
    fleet, servers = web_fleet(2)

    first = run_path(PROJECT / "site.yml", limit="web")
    second = run_path(PROJECT / "site.yml", limit="web")

    assert first.status == Status.SUCCEEDED, job_text(first)
    assert first_line(first) == "engine: native (every task is native)"
    assert recaps(first)["host00"] == {"ok": 3, "changed": 4, "failed": 0, "skipped": 0, "unreachable": 0}, job_text(first)
    assert recaps(second)["host00"] == {"ok": 6, "changed": 0, "failed": 0, "skipped": 0, "unreachable": 0}, job_text(second)
    config = (shared_dir / "host01" / "site.conf").read_text()
    assert config == ("# managed by the panel for host01\nlisten 8080\nworkers 2\nlocation /blog -> blog\nlocation /shop -> shop\n")
    # Two tasks notified the handler; it ran once, at the end of the play, and not at all on the second run.
    assert len((shared_dir / "host01" / "reloads").read_text().splitlines()) == 1
    assert "[host00] web : Always note the run: ok config has 5 lines" in job_text(second)


def test_a_module_outside_the_native_set_runs_through_ansible_runner_in_the_same_job(bob, web_fleet, shared_dir):
    fleet, servers = web_fleet(2)
    assert run_path(PROJECT / "site.yml", limit="web").status == Status.SUCCEEDED

    job = run_path(PROJECT / "wait.yml", limit="web")

    text = job_text(job)
    assert job.status == Status.SUCCEEDED, text
    assert first_line(job) == "engine: ansible-runner (module wait_for is not native, line 7)"
    assert job.result["engine"] == "ansible-runner"
    assert "[host00] Wait for the site config: ok" in text and "[host01] Record the check: changed" in text
    assert recaps(job) == {name: {"ok": 1, "changed": 1, "failed": 0, "skipped": 0, "unreachable": 0} for name in ("host00", "host01")}
    assert job.result["recap"]["host01"] == recaps(job)["host01"]
    assert (shared_dir / "host01" / "checked").read_text() == "checked\n"
    again = run_path(PROJECT / "wait.yml", limit="web")
    assert recaps(again)["host00"] == {"ok": 2, "changed": 0, "failed": 0, "skipped": 0, "unreachable": 0}, job_text(again)
    assert fleet.client_private_key.splitlines()[1] not in job_text(again)


@pytest.mark.parametrize("engine, playbook", [
    ("native", "- hosts: web\n  gather_facts: false\n  tasks:\n    - name: Mark\n      file: {path: \"{{ web_root }}/{{ inventory_hostname }}.mark\", state: touch}\n"),
    ("ansible-runner", "- hosts: web\n  gather_facts: false\n  tasks:\n    - name: Mark\n      raw: touch {{ web_root }}/{{ inventory_hostname }}.mark\n"),
])
def test_a_mixed_inventory_reports_the_unreachable_host_and_still_does_the_others(bob, web_fleet, shared_dir, engine, playbook):
    fleet, servers = web_fleet(3)
    fleet.stop_one(1)

    job = run_now(bob, playbook=playbook, limit="web")

    assert first_line(job).startswith(f"engine: {engine} (")
    assert job.status == Status.FAILED
    assert job.error.startswith("1 of 3 host(s) failed or were unreachable: host01."), job.error
    assert recaps(job)["host01"]["unreachable"] == 1
    assert recaps(job)["host00"]["changed"] == recaps(job)["host02"]["changed"] == 1
    assert (shared_dir / "host00.mark").exists() and (shared_dir / "host02.mark").exists()
    assert not (shared_dir / "host01.mark").exists()
    assert "unreachable" in job_text(job).split("[host01]", 1)[1]


FEATURES = """
- hosts: web
  gather_facts: false
  serial: 1
  vars:
    people: {ann: 1001, ben: 1002}
  tasks:
    - name: One line per person and colour
      lineinfile:
        path: "{{ web_root }}/{{ inventory_hostname }}.people"
        line: "{{ item.0.key }}={{ item.0.value }} {{ item.1 }}"
        create: yes
      with_nested:
        - "{{ people | dict2items }}"
        - [red, blue]
      tags: people
    - name: A block that fails, is rescued, and always reports
      block:
        - name: Fail on purpose
          command: /bin/false
        - name: Never reached
          file: {path: "{{ web_root }}/never", state: touch}
      rescue:
        - name: Rescue
          set_fact:
            rescued_on: "{{ inventory_hostname }}"
      always:
        - name: Always
          copy:
            dest: "{{ web_root }}/{{ inventory_hostname }}.always"
            content: "rescued on {{ rescued_on }}\\n"
    - name: Only with the debug tag
      file: {path: "{{ web_root }}/{{ inventory_hostname }}.debug", state: touch}
      tags: [never, debug]
    - name: Wait until a counter reaches 2
      shell: echo x >> {{ web_root }}/{{ inventory_hostname }}.count; wc -l < {{ web_root }}/{{ inventory_hostname }}.count
      register: counter
      until: counter.stdout | int >= 2
      retries: 5
      delay: 0
    - name: Check what we know
      assert:
        that: [counter.attempts == 2, "rescued_on == inventory_hostname"]

- hosts: web
  connection: local
  gather_facts: false
  tasks:
    - name: On the panel's own machine
      copy: {dest: "{{ web_root }}/{{ inventory_hostname }}.local", content: "local\\n"}
    - name: And an old local_action
      local_action: command touch {{ web_root }}/{{ inventory_hostname }}.local_action
"""


def test_blocks_serial_tags_loops_until_and_local_plays_run_natively(bob, web_fleet, shared_dir):
    fleet, servers = web_fleet(2)

    job = run_now(bob, playbook=FEATURES, limit="web")

    text = job_text(job)
    assert job.status == Status.SUCCEEDED, text
    assert first_line(job) == "engine: native (every task is native)"
    assert (shared_dir / "host00.people").read_text() == "ann=1001 red\nann=1001 blue\nben=1002 red\nben=1002 blue\n"
    assert (shared_dir / "host01.always").read_text() == "rescued on host01\n" and not (shared_dir / "never").exists()
    assert "[host00] Fail on purpose: failed" in text and job.result["recap"]["host00"]["failed"] == 0
    assert not (shared_dir / "host00.debug").exists() and (shared_dir / "host00.local").read_text() == "local\n"
    assert (shared_dir / "host01.local_action").exists()
    assert (shared_dir / "host00.local").stat().st_uid == 0  # written by the worker (root here), not the fleet's user
    # serial: 1 — host00 finished the first play before host01 began it
    order = [line.split("]")[0][1:] for line in text.splitlines() if "One line per person and colour: changed" in line]
    assert order == ["host00", "host01"]

    tagged = run_now(bob, playbook=FEATURES, limit="web", tags=["debug"])
    assert tagged.status == Status.SUCCEEDED and (shared_dir / "host00.debug").exists()
    assert "One line per person" not in job_text(tagged)


def test_cancelling_an_ansible_runner_run_ends_ansible_playbook_too(worker, bob, web_fleet):
    import psutil

    from panel.jobs.services import cancel_job, start_job
    from tests.clusters.inventory.test_fanout_job import wait_for_end
    from tests.support.ports import wait_until

    fleet, servers = web_fleet(2)
    playbook = "- hosts: web\n  gather_facts: false\n  tasks:\n    - name: Sleep\n      raw: sleep 120\n    - name: Never reached\n      raw: 'true'\n"
    job = start_job("recipe-run", {"playbook": playbook, "limit": "web"}, bob)

    def playbook_processes():
        found = []
        for process in psutil.process_iter(["cmdline"]):
            try:
                if any("filrouge-playbook.yml" in part for part in process.info["cmdline"] or ()):
                    found.append(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return found

    wait_until(lambda: playbook_processes(), timeout=60, message="ansible-playbook to start")
    cancel_job(job, bob)
    wait_for_end(job, timeout=60)

    assert job.status == Status.CANCELLED
    wait_until(lambda: not playbook_processes(), timeout=30, message="ansible-playbook to end after the cancel")
    assert not JobEvent.objects.filter(job=job, task="Never reached").exists()
