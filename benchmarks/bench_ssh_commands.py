"""SSH commands over one persistent connection: what a command costs in the driver's
long-lived shell, next to the floor of one exec channel per command.

    .venv/bin/python benchmarks/bench_ssh_commands.py [--commands 200] [--rounds 3]

Rows (ms per command, median of the rounds, all in this run on one plain sshd logging in a
test user with an empty .bashrc):
- floor: paramiko exec_command per command on an open connection (a channel each);
- driver, silent: `true` through SshConnection.run (no output to send back);
- driver, output: `echo hello` (one line of stdout);
- driver, background: `sleep 30 &` then `echo started` (a program left running, which
  used to corrupt the end-of-command detection), each followed by `echo next`, checked
  exact; the background sleeps are killed at the end.
Needs root (the sshd fleet logs a test user in).
"""

import argparse
import os
import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import paramiko  # noqa: E402

from clusters.drivers.ssh import SshConnection, SshTarget  # noqa: E402
from tests.support.keys import generate_keypair, paramiko_key  # noqa: E402
from tests.support.sshd import SshdFleet, ensure_test_user  # noqa: E402


def per_command(function, count):
    started = time.perf_counter()
    for _ in range(count):
        function()
    return (time.perf_counter() - started) / count * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (sshd fleets log a test user in)")
    user = ensure_test_user().pw_name
    private_key, public_key = generate_keypair()
    rows = {"floor (exec channel per command)": [], "driver, silent (true)": [], "driver, output (echo)": [],
            "driver, background left running (+ exact next command)": []}
    leftovers = []
    with SshdFleet(1, user, public_key) as fleet:
        member = fleet.hosts[0]
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # benchmark baseline only, never in the panel
        client.connect(member.host, port=member.port, username=user, pkey=paramiko_key(private_key), look_for_keys=False, allow_agent=False)

        def floor():
            _in, out, _err = client.exec_command("true")
            out.channel.recv_exit_status()

        target = SshTarget(name="bench", address=member.host, port=member.port, user=user, private_key=private_key)
        try:
            with SshConnection(target).connect() as connection:
                connection.run("true")

                def background():
                    result = connection.run("sleep 30 & echo $! >&2; echo started")
                    leftovers.append(int(result.stderr.split()[0]))
                    following = connection.run("echo next")
                    if (result.stdout, following.stdout, following.stderr) != ("started\n", "next\n", ""):
                        raise SystemExit(f"output not exact: {result!r} {following!r}")

                for _ in range(options.rounds):
                    rows["floor (exec channel per command)"].append(per_command(floor, options.commands))
                    rows["driver, silent (true)"].append(per_command(lambda: connection.run("true"), options.commands))
                    rows["driver, output (echo)"].append(per_command(lambda: connection.run("echo hello"), options.commands))
                    rows["driver, background left running (+ exact next command)"].append(per_command(background, max(1, options.commands // 4)) / 2)
        finally:
            client.close()
            for pid in leftovers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    print(f"\nSSH commands on one connection, ms per command, median of {options.rounds} x {options.commands}\n")
    width = max(len(name) for name in rows)
    floor_ms = statistics.median(rows["floor (exec channel per command)"])
    print(f"{'':{width}}  {'ms':>7}  {'/ floor':>8}")
    for name, values in rows.items():
        value = statistics.median(values)
        print(f"{name:{width}}  {value:7.2f}  {value / floor_ms:7.2f}x")


if __name__ == "__main__":
    main()
