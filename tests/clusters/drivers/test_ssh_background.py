"""Commands that leave something running behind them, on real sshd: every task's exit
status and output stay exact, and nothing a background process prints reaches the next task."""

import os
import signal

import pytest

from clusters.drivers.ssh import SshConnection, SshTarget

pytestmark = pytest.mark.ssh

# Each leaves a process that keeps the command's stdout or stderr open, most of them printing.
BACKGROUND = [
    "sleep 100 &",
    "nohup sh -c 'for n in $(seq 600); do echo bg-nohup; sleep 0.05; done' &",
    "(for n in $(seq 600); do echo bg-loop; sleep 0.1; done) &",
    "(for n in $(seq 600); do echo bg-stderr >&2; sleep 0.05; done) &",
    "sh -c 'echo bg-daemon; exec sleep 100' &",
    "(sleep 0.01; echo bg-late; echo bg-late-err >&2; sleep 100) &",
]


def target_for(fleet):
    member = fleet.hosts[0]
    return SshTarget(name="host0", address=member.host, port=member.port, user=fleet.user, private_key=fleet.client_private_key)


def _kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_hundred_tasks_that_leave_programs_running_keep_every_status_and_output_exact(sshd_fleet_factory):
    fleet = sshd_fleet_factory(1)
    started = []
    try:
        with SshConnection(target_for(fleet)).connect() as connection:
            for number in range(100):
                background = BACKGROUND[number % len(BACKGROUND)]
                result = connection.run(f"{background} echo bgpid $! >&2; echo task{number}; exit {number % 7}", timeout=30)
                pids = [int(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("bgpid ")]
                started += pids
                assert result.exit_status == number % 7, (number, background, result)
                assert [line for line in result.stdout.splitlines() if not line.startswith("bg-")] == [f"task{number}"], (number, result)
                assert len(pids) == 1, (number, result)

                following = connection.run(f"echo next{number}; echo warn{number} >&2; exit {(number + 3) % 5}", timeout=30)
                assert (following.exit_status, following.stdout, following.stderr) == ((number + 3) % 5, f"next{number}\n", f"warn{number}\n"), (number, background)
                _kill(pids)
    finally:
        _kill(started)


def test_a_command_whose_output_has_no_final_newline_or_looks_like_a_marker_is_kept_as_is(sshd_fleet_factory):
    fleet = sshd_fleet_factory(1)
    with SshConnection(target_for(fleet)).connect() as connection:
        result = connection.run("printf 'no newline'; printf '\\n@@filrouge-0123 7\\n' >&2; exit 3")
        assert (result.exit_status, result.stdout, result.stderr) == (3, "no newline", "\n@@filrouge-0123 7\n")
        binary = connection.run("printf '\\000\\001\\377'")
        assert binary.ok and binary.stdout == "\x00\x01\ufffd"
        assert connection.run("true").stdout == ""
