"""The SSH hardening exercise on a real per-student Debian host (a container with sshd on the real engine).

The student works only through SSH with the key of their enrolment, as a student would;
the checks observe from the panel. The host has no systemd, so the "app under systemd"
part is checked as a unit file plus the app started by hand answering on its port.
"""

import paramiko
import pytest

from clusters.drivers.ssh import fingerprint
from clusters.models import Credential
from labs.models import AllocatedPort, Attempt, Environment
from labs.providers import provider_for
from tests.labs.jobhelpers import job_text as lab_job_text
from tests.labs.jobhelpers import run_now
from tests.support.sshclient import run, ssh_connect

from tests.labs.providers.conftest import job_context, job_text, make_exercise

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("lab_host_base", "lab_sweep"), pytest.mark.ssh, pytest.mark.docker]

HARDENING = r"""
set -e
sudo useradd --create-home --shell /bin/bash deploy
sudo install -d -m 700 -o deploy -g deploy /home/deploy/.ssh
sudo install -m 600 -o deploy -g deploy ~/.ssh/authorized_keys /home/deploy/.ssh/authorized_keys
sudo usermod -p '*' deploy
printf 'PermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n' | sudo tee /etc/ssh/sshd_config.d/10-hardening.conf >/dev/null
sudo sshd -t
sudo kill -HUP "$(cat /run/sshd.pid)"
sudo install -d -o deploy /srv/notes
echo 'my notes' | sudo -u deploy tee /srv/notes/index.html >/dev/null
printf '[Unit]\nDescription=Notes\n\n[Service]\nUser=deploy\nExecStart=/usr/bin/python3 -m http.server 8000 --directory /srv/notes\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n' | sudo tee /etc/systemd/system/notes.service >/dev/null
sudo -u deploy sh -c 'nohup python3 -m http.server 8000 --directory /srv/notes >/tmp/notes.log 2>&1 &'
for i in $(seq 50); do python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/', timeout=1)" 2>/dev/null && break; sleep 0.1; done
"""


def env_containers(docker_client, environment):
    """The environment's containers (other checkouts' tests have environments with the same ids)."""
    labels = environment.labels()
    return docker_client.containers.list(all=True, filters={"label": [f"filrouge.lab={labels['filrouge.lab']}", f"filrouge.env={labels['filrouge.env']}"]})


def login(access, keypair, user=None):
    ssh = access["ssh"]
    return ssh_connect(ssh["host"], ssh["port"], user or ssh["user"], private_key=keypair[0], known_host_key=ssh["host_key"])


def wait_for_sshd_reload(access, keypair):
    """After the HUP, the student's sshd re-executes itself: wait until it answers again."""
    from tests.support.ports import wait_until

    def answers():
        try:
            login(access, keypair).close()
            return True
        except (paramiko.SSHException, OSError):
            return False

    wait_until(answers, timeout=20, message="the student's sshd did not come back after its reload")


def check(environment, student):
    job = run_now("lab-check", environment, user=student)
    assert job.status == "succeeded", lab_job_text(job)
    attempt = Attempt.objects.get(job=job)
    return attempt, {result["name"]: result for result in attempt.results}


def test_it_runs_the_hardening_exercise_on_a_real_debian_host(ssh_course, sam, student_keys, docker_client):
    environment = Environment.objects.create(exercise=make_exercise(ssh_course, "ssh-harden-systemd"), owner=sam)
    launch = run_now("lab-launch", environment, user=sam)
    assert launch.status == "succeeded", lab_job_text(launch)
    access = environment.access

    ssh = access["ssh"]
    assert ssh["host"] == "127.0.0.1" and ssh["user"] == "student"
    assert ssh["port"] in environment.ports
    assert ssh["host_key_fingerprint"] == fingerprint(ssh["host_key"])
    containers = env_containers(docker_client, environment)
    assert len(containers) == 1
    assert containers[0].labels["filrouge.owner"] == str(sam.pk)
    assert containers[0].attrs["HostConfig"]["NanoCpus"] == 500_000_000
    assert containers[0].attrs["HostConfig"]["Memory"] == 256 * 1024 * 1024
    # The panel's private key: in an encrypted credential, never in the access dict or the job's lines.
    credential = Credential.objects.get(name__endswith=f"env-{environment.pk}-panel-key")
    panel_private_key = credential.get_secret()["private_key"]
    assert "PRIVATE KEY" in panel_private_key
    assert "PRIVATE" not in str(access)
    assert panel_private_key.splitlines()[1] not in lab_job_text(launch)

    # The student logs in with their key, the host key they were given matches, and sudo works.
    client = login(access, student_keys["sam"])
    status, out, _err = run(client, "id -un && sudo -n id -u")
    assert (status, out.split()) == (0, ["student", "0"])

    attempt, before = check(environment, sam)
    assert attempt.score == 0 and attempt.max_score == 12
    assert [name for name, result in before.items() if result["passed"]] == []
    root = before["Root cannot log in, passwords are refused"]["detail"]
    assert "root logged in with a key" in root and "password authentication" in root and "PermitRootLogin is yes" in root
    assert "none of its" in before["Password authentication is off"]["detail"]
    assert "id: 'deploy': no such user" in before["The deploy user exists"]["detail"]
    assert "does not exist" in before["The notes unit restarts the app"]["detail"]

    status, out, err = run(client, HARDENING)
    assert status == 0, out + err
    client.close()
    wait_for_sshd_reload(access, student_keys["sam"])

    attempt, after = check(environment, sam)
    assert {name: result["detail"] for name, result in after.items() if not result["passed"]} == {}
    assert attempt.score == 12

    # The hardened host: the student and deploy still get in with sam's key; dave's key is refused.
    login(access, student_keys["sam"], user="deploy").close()
    for user in ("student", "deploy", "root"):
        with pytest.raises(paramiko.AuthenticationException):
            login(access, student_keys["dave"], user=user)

    destroy = run_now("lab-destroy", environment, user=sam)
    assert destroy.status == "succeeded", lab_job_text(destroy)
    assert env_containers(docker_client, environment) == []
    assert not Credential.objects.filter(name__endswith=f"env-{environment.pk}-panel-key").exists()


def test_it_refuses_another_students_key_and_a_changed_host_key(ssh_environment, sam, student_keys, docker_client):
    from clusters.drivers.base import HostKeyMismatch, HostUnreachable
    from tests.support.ports import wait_until

    environment = ssh_environment
    access = provider_for(environment, job_context(sam)).create()
    with pytest.raises(paramiko.AuthenticationException):
        login(access, student_keys["dave"])
    with pytest.raises(paramiko.AuthenticationException):
        login(access, student_keys["dave"], user="root")
    wrong = dict(access["ssh"], host_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + "A" * 43)
    with pytest.raises(paramiko.BadHostKeyException):
        login({"ssh": wrong}, student_keys["sam"])

    # The checks' argv is quoted word by word: a teacher's (or anyone's) words never become shell code.
    from labs.checks import CHECKS, load_all

    load_all()
    with provider_for(environment, job_context(sam)).check_target() as target:
        words = ["echo", "$(id -u); touch /tmp/pwned"]
        echoed = CHECKS["ssh.command_output"]({"command": words, "matches": r"^\$\(id -u\); touch /tmp/pwned$"}, target)
        assert echoed.passed, echoed.detail
        pwned = CHECKS["ssh.file_contains"]({"path": "/tmp/pwned"}, target)
        assert (pwned.passed, pwned.detail) == (False, "/tmp/pwned does not exist.")
        spaced = CHECKS["ssh.file_contains"]({"path": "/etc/ssh/sshd_config", "line": "  PermitRootLogin yes "}, target)
        assert spaced.passed, spaced.detail

    # A student who breaks their sshd gets a failed check that says so, not an error; the panel still gets in.
    container = env_containers(docker_client, environment)[0]
    broken = container.exec_run(["sh", "-c", "echo 'NoSuchOption yes' > /etc/ssh/sshd_config.d/00-typo.conf && kill $(cat /run/sshd.pid)"])
    assert broken.exit_code == 0, broken.output
    seen = []
    with provider_for(environment, job_context(sam)).check_target() as target:
        def says_it_is_down():
            seen.append(CHECKS["ssh.root_login_refused"]({}, target))
            return "does not answer" in seen[-1].detail

        wait_until(says_it_is_down, timeout=20, message="the check never saw the broken sshd")
    assert (seen[-1].passed, seen[-1].detail) == (False, f"The student's sshd does not answer on port {access['ssh']['port']}: "
                                                         "is it running, with a valid configuration (`sudo sshd -t`)?")

    # The host's panel sshd gets a new key (a student with sudo could do this): the checks refuse it.
    result = container.exec_run(["sh", "-c", "rm -f /etc/filrouge-panel/ssh_host_ed25519_key* && "
                                 "ssh-keygen -q -t ed25519 -N '' -f /etc/filrouge-panel/ssh_host_ed25519_key && "
                                 "kill $(cat /run/filrouge-panel-sshd.pid)"])
    assert result.exit_code == 0, result.output
    refused = []

    def refuses():
        try:
            provider_for(environment, job_context(sam)).check_target().__exit__()
        except HostKeyMismatch as exc:
            refused.append(str(exc))
            return True
        except HostUnreachable:
            return False  # the supervisor has not restarted it yet
        return False

    wait_until(refuses, timeout=20, message="the panel kept talking to a host with a changed key")
    assert "the host key changed" in refused[0]


def three_ports_with_the_first_taken():
    """(a bound socket, low, high): a range of three free ports whose first one is taken."""
    import socket

    from labs.providers.ssh import port_is_free
    from tests.support.ports import free_port

    for _ in range(200):
        low = free_port()
        if all(port_is_free("127.0.0.1", port) for port in (low + 1, low + 2)):
            taken = socket.socket()
            taken.bind(("127.0.0.1", low))
            taken.listen()
            return taken, low, low + 2
    pytest.fail("no three consecutive free ports")


def test_it_skips_a_taken_port_keeps_its_ports_on_reset_and_destroys_everything(ssh_environment, sam, student_keys, docker_client, settings):
    environment = ssh_environment
    environment.exercise.start = {"user": "learner", "sudo": False}
    environment.exercise.save()
    taken, low, high = three_ports_with_the_first_taken()
    settings.LABS_PORT_RANGE = (low, high)
    try:
        ctx = job_context(sam)
        access = provider_for(environment, ctx).create()
    finally:
        taken.close()
    ports = environment.port_map()
    assert sorted([ports["ssh"], ports["panel-ssh"]]) == [low + 1, low + 2]
    if AllocatedPort.objects.filter(environment=environment, name=f"busy-{low}").exists():  # drawn first (2 chances in 3)
        assert f"Port {low} is already in use on the host; taking another." in job_text(ctx)
    first_key = access["ssh"]["host_key"]

    again = provider_for(environment, job_context(sam, "lab-reset")).reset()
    assert again["ssh"]["port"] == access["ssh"]["port"]
    assert again["ssh"]["host_key"] != first_key  # a new host: its own host keys, pinned again
    assert again["ssh"]["user"] == "learner"
    client = login(again, student_keys["sam"])
    status, out, err = run(client, "id -un; sudo -n true")
    client.close()
    assert status != 0 and out.strip() == "learner" and "password is required" in err  # no sudo without start.sudo
    assert len(env_containers(docker_client, environment)) == 1

    provider = provider_for(environment, job_context(sam, "lab-destroy"))
    provider.destroy()
    provider.destroy()  # idempotent

    assert env_containers(docker_client, environment) == []
    assert not AllocatedPort.objects.filter(environment=environment).exists()
    assert not Credential.objects.filter(name__endswith=f"env-{environment.pk}-panel-key").exists()


def test_it_refuses_to_launch_without_the_students_key(ssh_course, sam, docker_client):
    from labs.models import Enrolment

    Enrolment.objects.filter(student=sam).update(ssh_public_key="")
    environment = Environment.objects.create(exercise=make_exercise(ssh_course, "ssh-harden-systemd"), owner=sam)
    job = run_now("lab-launch", environment, user=sam)
    assert job.status == "failed"
    assert job.error.startswith("The lab has no SSH public key of yours yet: send your public key")  # what the student can do
    assert "No SSH public key for this student" in environment.error_detail  # what the teacher reads
    assert environment.state == "failed"
    assert env_containers(docker_client, environment) == []
    assert not AllocatedPort.objects.filter(environment=environment).exists()
