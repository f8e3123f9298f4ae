"""SSH fan-out: the same 8-task recipe on 1, 10 and 30 plain-sshd hosts, against the floor.

    .venv/bin/python benchmarks/bench_ssh_fanout.py [--rounds 3] [--no-ansible]

For each fleet size, all measured in this one run on the same hosts:
- floor: one exec per task (8 execs per host) over already-open paramiko connections,
  one thread per host (the cheapest way to do the recipe's round trips at all);
- floor+connect: the same, connections included;
- job, first run: a real `recipe-run` job (job row, batched lines, recap, per-host
  records), run in this process like `manage.py run_recipe`: its own duration
  (finished_at - started_at), everything changed;
- job, second run: the same job again, nothing to change;
- ansible-playbook (if installed): the same recipe, pipelining and ControlPersist on,
  forks = hosts, second run (nothing to change).

The hosts are `sshd -D` processes on 127.0.0.1 logging in a test user with an empty
.bashrc (root's rc runs `pyenv init`, which would add 0.35 s per command). Needs root.
A throw-away test database is created and dropped (tests.settings).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

import paramiko  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from common import make_fleet_servers  # noqa: E402
from tests.support.keys import generate_keypair, paramiko_key  # noqa: E402
from tests.support.sshd import SshdFleet, ensure_test_user  # noqa: E402

RECIPE = ROOT / "tests" / "clusters" / "data" / "eight_tasks.yml"
SIZES = (1, 10, 30)


def floor(fleet, private_key, include_connect):
    """8 execs per host over persistent connections, hosts in parallel; returns seconds."""
    key = paramiko_key(private_key)
    clients = {}

    def connect(index):
        member = fleet.hosts[index]
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # benchmark baseline only, never in the panel
        client.connect(member.host, port=member.port, username=fleet.user, pkey=key, look_for_keys=False, allow_agent=False)
        clients[index] = client

    def tasks(index):
        for _ in range(8):
            _in, out, _err = clients[index].exec_command("true")
            out.channel.recv_exit_status()

    def run_all(function):
        threads = [threading.Thread(target=function, args=(i,)) for i in range(len(fleet.hosts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    started = time.perf_counter()
    run_all(connect)
    connected = time.perf_counter()
    run_all(tasks)
    finished = time.perf_counter()
    for client in clients.values():
        client.close()
    return (finished - started) if include_connect else (finished - connected)


def run_job(forks):
    from panel.jobs.kinds import get_kind
    from panel.jobs.models import Job
    from panel.jobs.runner import execute

    kind = get_kind("recipe-run")
    params = kind.validate({"path": str(RECIPE), "limit": "bench", "forks": forks}, context={"user": None, "cli": True})
    job = Job.objects.create(kind=kind.name, queue=kind.queue, params=params, timeout=kind.timeout)
    started = time.perf_counter()
    execute(job.pk)
    wall = time.perf_counter() - started
    job.refresh_from_db()
    if job.status != "succeeded":
        raise SystemExit(f"benchmark job failed: {job.error}")
    return (job.finished_at - job.started_at).total_seconds(), wall, job.result["totals"]


def ansible_run(fleet, key_file, root, workdir):
    playbook = workdir / "site.yml"
    tasks = RECIPE.read_text()
    body = "\n".join("    " + line if line.strip() else line for line in tasks.splitlines())
    playbook.write_text(f"- hosts: bench\n  gather_facts: no\n  tasks:\n{body}\n")
    for name in ("app.conf.j2", "app.service.j2"):
        shutil.copy(RECIPE.parent / name, workdir / name)
    inventory = workdir / "hosts.ini"
    inventory.write_text("[bench]\n" + "\n".join(
        f"host{i:02d} ansible_host=127.0.0.1 ansible_port={m.port} ansible_user={fleet.user} ansible_ssh_private_key_file={key_file}"
        for i, m in enumerate(fleet.hosts)) + f"\n[bench:vars]\nroot={root}\nansible_python_interpreter=/usr/bin/python3\n")
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_PIPELINING": "True", "ANSIBLE_FORKS": str(len(fleet.hosts)),
           "ANSIBLE_SSH_ARGS": f"-o ControlMaster=auto -o ControlPersist=60s -o ControlPath={workdir}/cp-%%C",
           "ANSIBLE_LOCAL_TEMP": str(workdir / "tmp"), "ANSIBLE_HOME": str(workdir / "home"), "ANSIBLE_STDOUT_CALLBACK": "default"}
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    subprocess.run(command, env=env, capture_output=True, check=True, timeout=900)  # first run: makes the changes
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"ansible-playbook failed:\n{result.stdout[-2000:]}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="repeat each measurement and keep the median")
    parser.add_argument("--no-ansible", action="store_true", help="skip the ansible-playbook comparison")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    options = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (sshd fleets log a test user in)")
    user = ensure_test_user().pw_name
    private_key, public_key = generate_keypair()
    with_ansible = not options.no_ansible and (Path(sys.executable).parent / "ansible-playbook").exists()
    import logging

    logging.getLogger("filrouge").setLevel(logging.ERROR)
    old_config = setup_databases(verbosity=0, interactive=False)
    rows = []
    try:
        for size in [int(value) for value in options.sizes.split(",")]:
            with SshdFleet(size, user, public_key) as fleet:
                floors = [floor(fleet, private_key, False) for _ in range(options.rounds)]
                floors_connect = [floor(fleet, private_key, True) for _ in range(options.rounds)]
                firsts, seconds = [], []
                for _ in range(options.rounds):
                    root = tempfile.mkdtemp(prefix="filrouge-bench-")
                    os.chmod(root, 0o777)
                    make_fleet_servers(fleet, private_key, root)
                    first = run_job(forks=max(size, 1))
                    second = run_job(forks=max(size, 1))
                    assert second[2]["changed"] == 0 and first[2]["changed"] == 6 * size, (first, second)
                    firsts.append(first[0])
                    seconds.append(second[0])
                    shutil.rmtree(root, ignore_errors=True)
                ansible = None
                if with_ansible and size > 1:
                    workdir = Path(tempfile.mkdtemp(prefix="filrouge-bench-ansible-"))
                    key_file = workdir / "key"
                    key_file.write_text(private_key)
                    key_file.chmod(0o600)
                    root = workdir / "root"
                    root.mkdir()
                    root.chmod(0o777)
                    workdir.chmod(0o755)
                    try:
                        ansible = ansible_run(fleet, key_file, root, workdir)
                    finally:
                        shutil.rmtree(workdir, ignore_errors=True)
                rows.append((size, statistics.median(floors), statistics.median(floors_connect), statistics.median(firsts),
                             statistics.median(seconds), ansible))
    finally:
        teardown_databases(old_config, verbosity=0)

    print(f"\nSSH fan-out, 8-task recipe, median of {options.rounds} (seconds; ratios from this run)\n")
    header = f"{'hosts':>5}  {'floor':>7}  {'floor+conn':>10}  {'job 1st':>8}  {'job 2nd':>8}  {'2nd/floor':>9}  {'2nd/floor+conn':>14}  {'1st/floor+conn':>14}  {'ansible 2nd':>11}  {'ansible/job 2nd':>15}"
    print(header)
    print("-" * len(header))
    for size, base, base_connect, first, second, ansible in rows:
        ansible_text = f"{ansible:11.2f}" if ansible else f"{'-':>11}"
        ansible_ratio = f"{ansible / second:14.1f}x" if ansible else f"{'-':>15}"
        print(f"{size:>5}  {base:7.3f}  {base_connect:10.3f}  {first:8.3f}  {second:8.3f}  {second / base:8.2f}x  {second / base_connect:13.2f}x"
              f"  {first / base_connect:13.2f}x  {ansible_text}  {ansible_ratio}")
    print("\nfloor: 8 execs per host over open paramiko connections (threads); floor+conn: with the logins.")
    print("job: a real recipe-run job's own duration (started_at → finished_at), connections included.")


if __name__ == "__main__":
    main()
