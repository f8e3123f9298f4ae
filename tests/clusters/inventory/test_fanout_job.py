"""Recipe runs as real jobs on a real RQ worker, fanned out over many real sshd hosts."""

import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from clusters.drivers.ssh import fingerprint
from clusters.inventory.jobs import probe_servers
from clusters.models import Group, Server, ServerJob
from panel.audit.models import AuditEvent
from panel.jobs.models import JobEvent, Status
from panel.jobs.services import cancel_job, start_job
from tests.support.ports import wait_until

from tests.clusters.conftest import fleet_servers, key_credential

pytestmark = [pytest.mark.ssh, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

DATA = Path(__file__).resolve().parents[1] / "data"


def wait_for_end(job, timeout=120):
    def finished():
        job.refresh_from_db()
        return job.is_finished

    try:
        wait_until(finished, timeout=timeout, interval=0.2, message=f"job {job.pk} to finish")
    except TimeoutError:
        lines = "\n".join(JobEvent.objects.filter(job=job).order_by("seq").values_list("text", flat=True))
        raise AssertionError(f"job {job.pk} is still {job.status} after {timeout} s; its lines:\n{lines}") from None
    return job


def test_thirty_hosts_in_one_job_with_one_down_and_one_with_a_changed_key(worker, bob, sshd_fleet_factory, shared_dir):
    fleet = sshd_fleet_factory(30)
    group = Group.objects.create(name="fleet", variables={"root": str(shared_dir)})
    servers = fleet_servers(fleet, key_credential(fleet.client_private_key), group=group)
    fleet.stop_one(7)
    old_key = fleet.hosts[12].host_public_key
    new_key = fleet.replace_host_key(12).host_public_key
    Server.objects.filter(pk=servers[12].pk).update(pinned_host_key=" ".join(old_key.split()[:2]))
    recipe_text = (DATA / "eight_tasks.yml").read_text().replace("template:\n    src: app.conf.j2", "copy:\n    content: \"listen={{ ansible_host }}\\n\"").replace(
        "template:\n    src: app.service.j2", "copy:\n    content: \"[Service]\\nExecStart=/bin/true\\n\"")

    job = wait_for_end(start_job("recipe-run", {"playbook": recipe_text, "limit": "fleet"}, bob))

    assert job.status == Status.FAILED
    assert job.error.startswith("2 of 30 host(s) failed or were unreachable: host07, host12.")
    recaps = {link.server.name: link.recap for link in ServerJob.objects.filter(job=job).select_related("server")}
    assert len(recaps) == 30
    for name, recap in recaps.items():
        if name in ("host07", "host12"):
            assert (recap["unreachable"], recap["ok"], recap["changed"]) == (1, 0, 0), name
        else:
            assert (recap["ok"], recap["changed"], recap["failed"], recap["unreachable"]) == (2, 6, 0, 0), (name, recap)
    refused = Server.objects.get(name="host12")
    assert refused.offered_host_key == " ".join(new_key.split()[:2]) and refused.reachable is False
    assert fingerprint(old_key) in refused.probe_error and fingerprint(new_key) in refused.probe_error
    assert Server.objects.get(name="host07").reachable is False and Server.objects.get(name="host00").reachable is True
    lines = list(JobEvent.objects.filter(job=job).order_by("seq"))
    recap_lines = [event for event in lines if event.task == "recap"]
    assert len(recap_lines) == 30 and "ok=2 changed=6 unreachable=0 failed=0" in recap_lines[0].text
    assert {event.host for event in lines if event.outcome == "changed"} == {f"host{i:02d}" for i in range(30)} - {"host07", "host12"}
    pinned = AuditEvent.objects.filter(message__startswith="Pinned the host key").count()
    assert pinned == 28  # every reachable host with no pinned key, at first contact
    assert job.progress_done == job.progress_total == 240


def test_a_second_run_changes_nothing_and_check_mode_changes_nothing(worker, bob, sshd_fleet_factory, shared_dir):
    fleet = sshd_fleet_factory(3)
    group = Group.objects.create(name="fleet", variables={"root": str(shared_dir)})
    fleet_servers(fleet, key_credential(fleet.client_private_key), group=group)
    recipe = "- name: A file\n  copy: {dest: \"{{ root }}/{{ inventory_hostname }}\", content: \"hello\\n\"}\n"

    dry = wait_for_end(start_job("recipe-run", {"playbook": recipe, "limit": "fleet", "check": True}, bob))
    assert dry.status == Status.SUCCEEDED and list(shared_dir.iterdir()) == []
    assert dry.result["totals"]["changed"] == 3

    first = wait_for_end(start_job("recipe-run", {"playbook": recipe, "limit": "fleet"}, bob))
    second = wait_for_end(start_job("recipe-run", {"playbook": recipe, "limit": "fleet"}, bob))

    assert first.result["totals"]["changed"] == 3
    assert second.status == Status.SUCCEEDED and second.result["totals"] == {"ok": 3, "changed": 0, "failed": 0, "skipped": 0, "unreachable": 0}


def test_cancel_stops_every_host(worker, bob, sshd_fleet_factory):
    fleet = sshd_fleet_factory(5)
    fleet_servers(fleet, key_credential(fleet.client_private_key))
    recipe = "- name: Wait a long time\n  command: sleep 60\n- name: Never reached\n  ping:\n"
    job = start_job("recipe-run", {"playbook": recipe, "limit": "all"}, bob)
    wait_until(lambda: JobEvent.objects.filter(job=job, text__contains="5 host(s)").exists(), timeout=30, message="the run to start")

    started = time.monotonic()
    cancel_job(job, bob)
    wait_for_end(job, timeout=30)

    assert job.status == Status.CANCELLED and time.monotonic() - started < 10
    assert not JobEvent.objects.filter(job=job, task="Never reached").exists()


def test_secrets_never_reach_the_job_lines(worker, bob, sshd_fleet_factory):
    fleet = sshd_fleet_factory(1)
    credential = key_credential(fleet.client_private_key, become_password="sudo-secret-value")
    fleet_servers(fleet, credential)
    recipe = "- name: Print secrets if we had them\n  debug: {msg: \"{{ panel_public_key }}\"}\n- command: echo sudo-secret-value\n"

    job = wait_for_end(start_job("recipe-run", {"playbook": recipe, "limit": "all"}, bob))

    text = "\n".join(JobEvent.objects.filter(job=job).values_list("text", flat=True))
    assert "sudo-secret-value" not in text and "[redacted]" in text
    assert "PRIVATE KEY" not in text and fleet.client_private_key.splitlines()[1] not in text
    assert "ssh-ed25519" in text  # the public key is not a secret


def test_facts_are_gathered_and_stored(worker, bob, sshd_fleet_factory):
    fleet = sshd_fleet_factory(2)
    servers = fleet_servers(fleet, key_credential(fleet.client_private_key))

    job = wait_for_end(start_job("server-facts", {"servers": [server.pk for server in servers]}, bob))

    assert job.status == Status.SUCCEEDED, job.error
    server = Server.objects.get(pk=servers[0].pk)
    facts = server.facts
    assert facts["os"]["id"] == "debian" and facts["cpus"] >= 1 and facts["memory"]["total_bytes"] > 0
    assert facts["kernel"].startswith("Linux") and facts["uptime_seconds"] > 0 and facts["root_disk"]["free_bytes"] > 0
    assert "installed" in facts["docker"] and isinstance(facts["addresses"], list)
    assert server.facts_at is not None and server.reachable is True and server.load_1m is not None


def test_the_probe_keeps_state_current_and_a_slow_host_does_not_delay_the_others(db, sshd_fleet_factory, monkeypatch):
    import socket

    fleet = sshd_fleet_factory(4)
    servers = fleet_servers(fleet, key_credential(fleet.client_private_key))
    fleet.stop_one(3)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # a host that accepts TCP and then says nothing: the slowest kind
    Server.objects.filter(pk=servers[2].pk).update(port=silent.getsockname()[1])
    from clusters import conf

    monkeypatch.setattr(conf, "SSH_PROBE_TIMEOUT", 2.0)
    try:
        started = time.monotonic()
        result = probe_servers()
        elapsed = time.monotonic() - started
    finally:
        silent.close()

    assert result == {"probed": 4, "reachable": 2}
    assert elapsed < 6  # the slow host costs its own timeout, in parallel with the rest
    states = {server.name: server for server in Server.objects.all()}
    assert states["host00"].reachable is True and states["host00"].load_1m is not None
    assert states["host00"].memory_available_bytes > 0 and states["host00"].disk_free_bytes > 0 and states["host00"].last_seen_at
    assert states["host02"].reachable is False and "no answer within 2 s" in states["host02"].probe_error
    assert states["host03"].reachable is False and "cannot connect" in states["host03"].probe_error


def test_run_recipe_prints_the_live_log_and_recap_and_fails_when_a_host_fails(db, sshd_fleet_factory, shared_dir, capsys):
    fleet = sshd_fleet_factory(3)
    group = Group.objects.create(name="web", variables={"root": str(shared_dir)})
    fleet_servers(fleet, key_credential(fleet.client_private_key), group=group)
    recipe = shared_dir / "site.yml"
    recipe.write_text("- hosts: web\n  tasks:\n    - name: Mark\n      file: {path: \"{{ root }}/{{ inventory_hostname }}.mark\", state: touch}\n")

    call_command("run_recipe", str(recipe), "--limit", "web")
    out = capsys.readouterr().out
    assert "[host00] Mark: CHANGED" in out and "[host02] recap: OK host02  ok=0 changed=1 unreachable=0 failed=0 skipped=0" in out
    assert "Finished: succeeded." in out

    call_command("run_recipe", str(recipe), "--limit", "web", "--check")
    assert "[host01] Mark: OK" in capsys.readouterr().out

    fleet.stop_one(1)
    with pytest.raises(CommandError, match="1 of 2 host\\(s\\) failed or were unreachable: host01. First: host01 \\(filrouge-test@"):
        call_command("run_recipe", str(recipe), "--limit", "web,!host02")
    assert "[host01] connect: FAILED unreachable" in capsys.readouterr().out


def test_run_recipe_refuses_a_broken_playbook_naming_its_line(db, tmp_path):
    Server.objects.create(name="web01", address="127.0.0.1")
    broken = tmp_path / "broken.yml"
    broken.write_text("- hosts: all\n  tasks:\n    - name: Oops\n      service_x: {name: a}\n")

    with pytest.raises(CommandError, match=r"broken.yml, line 4, column 7: unknown module 'service_x'"):
        call_command("run_recipe", str(broken), "--limit", "all")
