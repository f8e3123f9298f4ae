"""Two engines, one playbook: the SSH benchmark's 8 tasks as a role with handlers, on 10 and 30 sshd hosts.

    .venv/bin/python benchmarks/bench_playbook_engines.py [--rounds 1] [--sizes 10,30]

For each fleet size, all measured in this one run on the same hosts:
- native: a real `recipe-run` job of the project folder (role, defaults, templates, a
  handler notified by two tasks), run in this process like `manage.py run_recipe`;
  its own duration (finished_at - started_at), first run (everything changes, the
  handler runs) and second run (nothing changes);
- ansible-runner: the same job with FILROUGE_RECIPE_ENGINE=ansible-runner: the panel
  writes the inventory, keys and known_hosts, runs ansible-runner and streams its
  events into the job (same lines, recap and per-host records);
- ansible-playbook: the same project run by hand with the same SSH settings
  (pipelining, ControlPersist, forks = hosts), wall time of the command.

The hosts are `sshd -D` processes on 127.0.0.1 logging in a test user with a minimal
HOME rc (ENVIRONMENT.md). Needs root. A throw-away test database is created and dropped.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from common import make_fleet_servers  # noqa: E402
from tests.support.keys import generate_keypair  # noqa: E402
from tests.support.sshd import SshdFleet, ensure_test_user  # noqa: E402

PROJECT = ROOT / "tests" / "clusters" / "data" / "projects" / "eight_role"
SIZES = (10, 30)


def run_job(forks, engine):
    from clusters import conf
    from panel.jobs.kinds import get_kind
    from panel.jobs.models import Job, JobEvent
    from panel.jobs.runner import execute

    conf.RECIPE_ENGINE = engine
    kind = get_kind("recipe-run")
    params = kind.validate({"path": str(PROJECT / "site.yml"), "limit": "bench", "forks": forks}, context={"user": None, "cli": True})
    job = Job.objects.create(kind=kind.name, queue=kind.queue, params=params, timeout=kind.timeout)
    execute(job.pk)
    job.refresh_from_db()
    if job.status != "succeeded":
        tail = "\n".join(JobEvent.objects.filter(job=job).order_by("-seq").values_list("text", flat=True)[:20])
        raise SystemExit(f"benchmark job ({engine}) failed: {job.error}\n{tail}")
    first_line = JobEvent.objects.filter(job=job).order_by("seq").first().text
    return (job.finished_at - job.started_at).total_seconds(), job.result["totals"], first_line


def one_round(fleet, private_key, size, engine):
    root = tempfile.mkdtemp(prefix="filrouge-bench-")
    os.chmod(root, 0o777)
    try:
        make_fleet_servers(fleet, private_key, root)
        first = run_job(size, engine)
        second = run_job(size, engine)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    # 6 tasks change, then the handler once; the second run changes nothing.
    assert first[1]["changed"] == 7 * size and second[1]["changed"] == 0, (engine, first, second)
    assert first[2].startswith(f"engine: {engine if engine != 'auto' else 'native'} ("), first[2]
    return first[0], second[0]


def ansible_playbook(fleet, private_key, size):
    workdir = Path(tempfile.mkdtemp(prefix="filrouge-bench-ansible-"))
    try:
        workdir.chmod(0o755)
        shutil.copytree(PROJECT, workdir / "project")
        key_file = workdir / "key"
        key_file.write_text(private_key)
        key_file.chmod(0o600)
        root = workdir / "root"
        root.mkdir()
        root.chmod(0o777)
        inventory = workdir / "hosts.ini"
        inventory.write_text("[bench]\n" + "\n".join(
            f"host{i:02d} ansible_host=127.0.0.1 ansible_port={m.port} ansible_user={fleet.user} ansible_ssh_private_key_file={key_file}"
            for i, m in enumerate(fleet.hosts)) + f"\n[bench:vars]\nroot={root}\n")
        env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_PIPELINING": "True", "ANSIBLE_FORKS": str(size),
               "ANSIBLE_SSH_ARGS": f"-o ControlMaster=auto -o ControlPersist=60s -o ControlPath={workdir}/cp-%%C",
               "ANSIBLE_PYTHON_INTERPRETER": "auto_silent", "ANSIBLE_LOCAL_TEMP": str(workdir / "tmp"),
               "ANSIBLE_HOME": str(workdir / "home"), "ANSIBLE_STDOUT_CALLBACK": "default", "ANSIBLE_NOCOLOR": "1"}
        command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(workdir / "project" / "site.yml")]
        times = []
        for _ in range(2):
            started = time.perf_counter()
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
            times.append(time.perf_counter() - started)
            if result.returncode != 0:
                raise SystemExit(f"ansible-playbook failed:\n{result.stdout[-2000:]}")
        return times[0], times[1]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="repeat each measurement and keep the median")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    options = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (sshd fleets log a test user in)")
    import logging

    logging.getLogger("filrouge").setLevel(logging.ERROR)
    user = ensure_test_user().pw_name
    private_key, public_key = generate_keypair()
    old_config = setup_databases(verbosity=0, interactive=False)
    rows = []
    try:
        for size in [int(value) for value in options.sizes.split(",")]:
            with SshdFleet(size, user, public_key) as fleet:
                measured = {"native": [], "runner": [], "playbook": []}
                for _ in range(options.rounds):
                    measured["native"].append(one_round(fleet, private_key, size, "auto"))
                    measured["runner"].append(one_round(fleet, private_key, size, "ansible-runner"))
                    measured["playbook"].append(ansible_playbook(fleet, private_key, size))
                rows.append((size, {name: (statistics.median(v[0] for v in values), statistics.median(v[1] for v in values))
                                    for name, values in measured.items()}))
    finally:
        from django.db import connections

        connections.close_all()
        try:
            teardown_databases(old_config, verbosity=0)
        except Exception as exc:  # the figures matter more than the clean-up
            print(f"(could not drop the benchmark database: {exc})")

    print(f"\nPlaybook engines, 8 tasks as a role with a handler, median of {options.rounds} (seconds; ratios from this run)\n")
    header = (f"{'hosts':>5}  {'native 1st':>10}  {'native 2nd':>10}  {'runner 1st':>10}  {'runner 2nd':>10}  {'a-p 1st':>8}  {'a-p 2nd':>8}"
              f"  {'runner/native 2nd':>17}  {'a-p/native 2nd':>14}  {'runner/a-p 2nd':>14}")
    print(header)
    print("-" * len(header))
    for size, values in rows:
        native, runner, playbook = values["native"], values["runner"], values["playbook"]
        print(f"{size:>5}  {native[0]:10.2f}  {native[1]:10.2f}  {runner[0]:10.2f}  {runner[1]:10.2f}  {playbook[0]:8.2f}  {playbook[1]:8.2f}"
              f"  {runner[1] / native[1]:16.1f}x  {playbook[1] / native[1]:13.1f}x  {runner[1] / playbook[1]:13.2f}x")
    print("\nnative / runner: a real recipe-run job's own duration (started_at → finished_at), job rows, lines and records included.")
    print("a-p: ansible-playbook by hand (wall time of the command, same SSH settings, no panel).")


if __name__ == "__main__":
    main()
