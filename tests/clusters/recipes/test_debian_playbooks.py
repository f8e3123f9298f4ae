"""Playbooks on real Debian hosts (containers with sshd, apt, python3): a role natively, the rest through ansible-runner."""

from pathlib import Path

import pytest

from clusters.models import Group, Server, ServerJob
from panel.jobs.models import JobEvent, Status

from tests.clusters.conftest import debian_server, job_text, run_now
from tests.clusters.recipes.test_two_engines import run_path

pytestmark = [pytest.mark.ssh, pytest.mark.docker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROJECT = Path(__file__).resolve().parents[1] / "data" / "projects" / "debian"
FIELDS = ("ok", "changed", "failed", "skipped", "unreachable")


def recap(job, server):
    data = ServerJob.objects.get(job=job, server=server).recap
    return {key: data[key] for key in FIELDS}


def first_line(job):
    return JobEvent.objects.filter(job=job).order_by("seq").first().text


@pytest.fixture
def debian_pair(debian_host_factory):
    hosts = [debian_host_factory(), debian_host_factory()]
    group = Group.objects.create(name="debian")
    servers = [debian_server(host, name=f"debian{index + 1:02d}") for index, host in enumerate(hosts)]
    group.servers.add(*servers)
    return hosts, servers


def test_a_role_runs_natively_idempotently_then_wait_for_and_script_run_through_ansible_runner(debian_pair):
    hosts, servers = debian_pair

    first = run_path(PROJECT / "site.yml", limit="debian")
    second = run_path(PROJECT / "site.yml", limit="debian")

    assert first.status == Status.SUCCEEDED, job_text(first)
    assert first_line(first) == "engine: native (every task is native)"
    # gather facts (the template uses ansible_distribution), group, template, lineinfile, then the handler once
    assert recap(first, servers[0]) == {"ok": 1, "changed": 4, "failed": 0, "skipped": 0, "unreachable": 0}, job_text(first)
    assert "[debian01] banner : reload ssh: changed ssh: reloaded (init script)" in job_text(first)
    assert second.status == Status.SUCCEEDED
    assert recap(second, servers[1]) == {"ok": 4, "changed": 0, "failed": 0, "skipped": 0, "unreachable": 0}, job_text(second)
    assert "reload ssh" not in job_text(second)
    banner = hosts[1].exec("cat /etc/issue.net")[1]
    assert banner.startswith("debian02 (Debian 12), run by the platform team\nAuthorised use only.\n")
    assert "banner /etc/issue.net" in hosts[0].exec("sshd -T -C user=root,host=x,addr=127.0.0.1")[1]
    assert hosts[0].exec("getent group operators")[0] == 0

    checked = run_path(PROJECT / "check.yml", limit="debian")
    again = run_path(PROJECT / "check.yml", limit="debian")

    text = job_text(checked)
    assert checked.status == Status.SUCCEEDED, text
    assert first_line(checked) == "engine: ansible-runner (module wait_for is not native, line 8; and 1 more)"
    assert "[debian01] sshd listens: ok" in text and "[debian02] Leave a mark: changed" in text
    assert recap(checked, servers[0]) == {"ok": 1, "changed": 1, "failed": 0, "skipped": 0, "unreachable": 0}, text
    assert set(checked.result["recap"]["debian01"]) == set(first.result["recap"]["debian01"]) == set(FIELDS)
    assert hosts[0].exec("cat /root/checked-by-script")[1].strip() == hosts[0].container.attrs["Config"]["Hostname"]
    # the script has `creates`: Ansible skips it once the file is there
    assert recap(again, servers[1]) == {"ok": 1, "changed": 0, "failed": 0, "skipped": 1, "unreachable": 0}, job_text(again)
    assert "[debian02] Leave a mark: skipped" in job_text(again)
    assert servers[0].credential.get_secret()["private_key"].splitlines()[1] not in text


@pytest.mark.parametrize("engine, playbook", [
    ("native", "- hosts: debian\n  gather_facts: false\n  tasks:\n    - name: Mark\n      copy: {dest: /root/mark, content: \"{{ inventory_hostname }}\\n\"}\n"),
    ("ansible-runner", "- hosts: debian\n  gather_facts: false\n  tasks:\n    - name: Mark\n      raw: echo {{ inventory_hostname }} > /root/mark\n"),
])
def test_a_down_host_is_reported_unreachable_by_both_engines_and_the_others_are_done(bob, debian_pair, engine, playbook):
    hosts, servers = debian_pair
    assert run_now(bob, playbook="- name: Pin the host keys\n  ping:\n", limit="debian").status == Status.SUCCEEDED
    assert all(Server.objects.get(pk=server.pk).pinned_host_key for server in servers)
    hosts[1].container.stop(timeout=1)

    job = run_now(bob, playbook=playbook, limit="debian")

    assert first_line(job).startswith(f"engine: {engine} (")
    assert job.status == Status.FAILED
    assert job.error.startswith("1 of 2 host(s) failed or were unreachable: debian02. First: "), job.error
    assert recap(job, servers[1])["unreachable"] == 1 and recap(job, servers[0])["changed"] == 1, job_text(job)
    assert hosts[0].exec("cat /root/mark")[1] == "debian01\n"
    assert Server.objects.get(pk=servers[1].pk).reachable is False


def test_become_user_runs_the_task_as_that_user(bob, debian_host_factory):
    host = debian_host_factory()
    server = debian_server(host)
    playbook = ("- hosts: all\n  gather_facts: false\n  become: yes\n  become_user: nobody\n  tasks:\n"
                "    - name: Who am I\n      command: id -un\n"
                "    - name: A file of nobody's\n      copy: {dest: /tmp/by-nobody, content: \"x\\n\"}\n"
                "    - name: Back to root for this one\n      command: id -un\n      become_user: root\n")

    job = run_now(bob, playbook=playbook, servers=[server.pk])

    text = job_text(job)
    assert job.status == Status.SUCCEEDED, text
    assert "[debian01] Who am I: changed nobody" in text and "[debian01] Back to root for this one: changed root" in text
    assert host.exec("stat -c %U /tmp/by-nobody")[1].strip() == "nobody"
