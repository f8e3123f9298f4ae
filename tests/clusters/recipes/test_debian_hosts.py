"""Built-in recipes and the example playbook on real Debian hosts (containers with sshd, apt, no systemd)."""

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from clusters.drivers.base import AuthFailed
from clusters.drivers.ssh import SshConnection, SshTarget
from clusters.models import Credential, Group, Server, ServerJob
from panel.jobs.models import Status

from tests.clusters.conftest import debian_server, job_text, run_now

pytestmark = [pytest.mark.ssh, pytest.mark.docker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EXAMPLES = Path(__file__).resolve().parents[4] / "shared" / "examples"


def recap(job, server):
    return ServerJob.objects.get(job=job, server=server).recap


def counts(job, server):
    data = recap(job, server)
    return {key: data[key] for key in ("ok", "changed", "failed", "unreachable")}


def ssh_client_login(host, user, key_file, password_only=False):
    """Try a login with the real OpenSSH client; return (exit status, stderr)."""
    options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
               "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"]
    if password_only:
        options += ["-o", "PreferredAuthentications=password,keyboard-interactive", "-o", "PubkeyAuthentication=no"]
    else:
        options += ["-i", str(key_file)]
    for _attempt in range(20):
        result = subprocess.run(["ssh", *options, "-p", str(host.port), f"{user}@{host.host}", "true"], capture_output=True, text=True, timeout=30)
        # Right after a reload sshd re-executes itself and may drop a connection before its banner.
        if not any(sign in result.stderr for sign in ("kex_exchange_identification", "Connection refused", "Connection reset")):
            break
        time.sleep(0.5)
    return result.returncode, result.stderr


def test_hardening_refuses_to_lock_the_panel_out_then_really_hardens_sshd(bob, debian_host_factory, tmp_path):
    assert shutil.which("ssh"), "the OpenSSH client is needed (apt-get install openssh-client)"
    host = debian_host_factory()
    server = debian_server(host)
    key_file = tmp_path / "id_ed25519"
    key_file.write_text(host.client_private_key)
    key_file.chmod(0o600)
    assert ssh_client_login(host, "root", key_file)[0] == 0
    assert "password" in ssh_client_login(host, "root", key_file, password_only=True)[1]  # offered before hardening

    refused = run_now(bob, recipe="ssh-hardening", servers=[server.pk])
    assert refused.status == Status.FAILED
    assert "the panel logs in to debian01 as root" in refused.error and "deploy-user" in refused.error
    assert host.exec("ls /etc/ssh/sshd_config.d/")[1].strip() == ""

    deployed = run_now(bob, recipe="deploy-user", servers=[server.pk])
    assert deployed.status == Status.SUCCEEDED, job_text(deployed)
    assert counts(deployed, server) == {"ok": 0, "changed": 3, "failed": 0, "unreachable": 0}
    assert counts(run_now(bob, recipe="deploy-user", servers=[server.pk]), server)["changed"] == 0

    Server.objects.filter(pk=server.pk).update(user="deploy", become=True)
    hardened = run_now(bob, recipe="ssh-hardening", servers=[server.pk])
    assert hardened.status == Status.SUCCEEDED, job_text(hardened)
    assert counts(hardened, server) == {"ok": 2, "changed": 2, "failed": 0, "unreachable": 0}, job_text(hardened)
    text = job_text(hardened)
    assert "+PermitRootLogin no" in text and "ssh: reloaded (init script)" in text

    code, effective = host.exec("sshd -T -C user=root,host=x,addr=127.0.0.1")
    assert "permitrootlogin no" in effective and "passwordauthentication no" in effective
    status, error = ssh_client_login(host, "root", key_file)
    assert status == 255 and "Permission denied" in error
    status, error = ssh_client_login(host, "root", key_file, password_only=True)
    assert status == 255 and "Permission denied (publickey)" in error  # passwords are no longer even offered
    with pytest.raises(AuthFailed):
        SshConnection(SshTarget(name="root-by-password", address=host.host, port=host.port, user="root", password="filrouge",
                                pinned_host_key=Server.objects.get(pk=server.pk).pinned_host_key)).connect()
    assert ssh_client_login(host, "deploy", key_file)[0] == 0  # and the panel's own way in still works

    again = run_now(bob, recipe="ssh-hardening", servers=[server.pk])
    assert again.status == Status.SUCCEEDED and counts(again, server)["changed"] == 0, job_text(again)


def test_base_packages_are_really_installed_and_the_second_run_changes_nothing(bob, debian_host_factory):
    host = debian_host_factory()
    server = debian_server(host)
    assert host.exec("dpkg -s curl")[0] != 0

    first = run_now(bob, recipe="base-packages", servers=[server.pk])
    second = run_now(bob, recipe="base-packages", servers=[server.pk])

    assert first.status == Status.SUCCEEDED, job_text(first)
    assert counts(first, server)["changed"] == 1 and "installed" in job_text(first)
    assert host.exec("dpkg -s curl vim-tiny less ca-certificates")[0] == 0
    assert second.status == Status.SUCCEEDED and counts(second, server) == {"ok": 1, "changed": 0, "failed": 0, "unreachable": 0}


def test_the_gunicorn_app_files_are_idempotent_and_the_service_step_says_there_is_no_systemd(bob, debian_host_factory):
    host = debian_host_factory()
    server = debian_server(host)

    first = run_now(bob, recipe="gunicorn-app", servers=[server.pk])
    second = run_now(bob, recipe="gunicorn-app", servers=[server.pk])

    for job in (first, second):
        assert job.status == Status.FAILED
        assert "Enable and start the service: no running systemd on debian01: /run/systemd/system is missing (PID 1 is sshd)" in job.error
    assert counts(first, server) == {"ok": 0, "changed": 5, "failed": 1, "unreachable": 0}, job_text(first)
    assert counts(second, server) == {"ok": 5, "changed": 0, "failed": 1, "unreachable": 0}, job_text(second)
    assert "ExecStart=/usr/bin/gunicorn --workers 2 --bind 127.0.0.1:8000 app:application" in host.exec("cat /etc/systemd/system/webapp.service")[1]
    assert host.exec("stat -c '%U %a' /opt/webapp")[1].strip() == "webapp 755"
    assert host.exec("test -x /usr/bin/gunicorn")[0] == 0


def test_docker_engine_installs_from_debian_packages_and_says_there_is_no_systemd(bob, debian_host_factory):
    host = debian_host_factory()
    server = debian_server(host)

    first = run_now(bob, recipe="docker-engine", servers=[server.pk], variables={"docker_users": ["root"]})
    second = run_now(bob, recipe="docker-engine", servers=[server.pk], variables={"docker_users": ["root"]})

    assert "no running systemd on debian01" in first.error and "no running systemd on debian01" in second.error
    assert counts(first, server)["changed"] == 2, job_text(first)
    assert counts(second, server) == {"ok": 2, "changed": 0, "failed": 1, "unreachable": 0}, job_text(second)
    assert host.exec("dpkg -s docker.io")[0] == 0 and "docker" in host.exec("id -Gn root")[1]


def test_the_example_playbook_runs_as_it_is(bob, debian_host_factory, tmp_path, capsys):
    host = debian_host_factory()
    server = debian_server(host, name="web01.lab.test")
    server.groups.add(Group.objects.create(name="web"))
    playbook_dir = tmp_path / "playbooks"
    (playbook_dir / "build").mkdir(parents=True)
    shutil.copy(EXAMPLES / "ansible" / "webapp.yml", playbook_dir / "webapp.yml")
    (playbook_dir / "build" / "notes.py").write_text("def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'notes']\n")
    unit = (EXAMPLES / "systemd" / "notes.service").read_text().replace("WorkingDirectory=/opt/notes", "WorkingDirectory={{ app_dir }}")
    (playbook_dir / "notes.service.j2").write_text(unit)
    from django.core.management import call_command
    from django.core.management.base import CommandError

    for attempt in (1, 2):
        with pytest.raises(CommandError, match="no running systemd on web01.lab.test"):
            call_command("run_recipe", str(playbook_dir / "webapp.yml"), "--limit", "web")
        out = capsys.readouterr().out
        if attempt == 1:
            assert "[web01.lab.test] Install runtime packages: CHANGED installed python3-venv, python3-gunicorn" in out
            assert "[web01.lab.test] recap: FAILED web01.lab.test  ok=0 changed=5 unreachable=0 failed=1" in out
        else:
            assert "[web01.lab.test] recap: FAILED web01.lab.test  ok=5 changed=0 unreachable=0 failed=1" in out
    assert host.exec("cat /opt/notes/notes.py")[1].startswith("def app(")
    assert "WorkingDirectory=/opt/notes" in host.exec("cat /etc/systemd/system/notes.service")[1]
    assert "\nPermitRootLogin no" in host.exec("cat /etc/ssh/sshd_config")[1]


def test_password_logins_work_and_a_wrong_sudo_password_is_a_clear_failure(bob, debian_host_factory):
    host = debian_host_factory()
    host.exec("useradd -m -s /bin/bash ops && echo 'ops:ops-login-pw' | chpasswd && echo 'ops ALL=(ALL) ALL' > /etc/sudoers.d/ops")
    wrong = Credential(name="ops-wrong", kind="password", username="ops")
    wrong.set_secret({"password": "ops-login-pw", "become_password": "not-the-password"})
    wrong.save()
    right = Credential(name="ops-right", kind="password", username="ops")
    right.set_secret({"password": "ops-login-pw"})
    right.save()
    server = Server.objects.create(name="ops01", address=host.host, port=host.port, user="ops", credential=wrong, become=True)
    recipe = "- name: A root-only file\n  copy: {dest: /root/proof, content: \"made by sudo\\n\", mode: '0600'}\n"

    refused = run_now(bob, playbook=recipe, servers=[server.pk])
    Server.objects.filter(pk=server.pk).update(credential=right)
    accepted = run_now(bob, playbook=recipe, servers=[server.pk])

    assert refused.status == Status.FAILED and "sudo refused the become password for ops" in refused.error
    assert "not-the-password" not in job_text(refused) and "ops-login-pw" not in job_text(refused)
    assert accepted.status == Status.SUCCEEDED, job_text(accepted)
    assert host.exec("stat -c '%U %a' /root/proof; cat /root/proof")[1] == "root 600\nmade by sudo\n"


def test_a_host_behind_a_jump_host_is_reached_through_it(bob, debian_host_factory, docker_client):
    bastion = debian_host_factory(name_prefix="filrouge-test-bastion")
    inner = debian_host_factory(authorized_key=paramiko_public(bastion.client_private_key))
    inner.container.reload()
    inner_ip = inner.container.attrs["NetworkSettings"]["IPAddress"]
    jump = debian_server(bastion, name="bastion")
    server = Server.objects.create(name="inner", address=inner_ip, port=22, user="root", credential=jump.credential, jump_host=jump)

    job = run_now(bob, playbook="- name: Where am I\n  command: hostname\n", servers=[server.pk])

    assert job.status == Status.SUCCEEDED, job_text(job)
    assert inner.container.attrs["Config"]["Hostname"] in job_text(job)
    assert Server.objects.get(pk=server.pk).pinned_host_key.startswith("ssh-ed25519")


def paramiko_public(private_pem):
    from tests.support.keys import paramiko_key

    key = paramiko_key(private_pem)
    return f"{key.get_name()} {key.get_base64()}"
