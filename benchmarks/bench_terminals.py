"""Terminals in the browser: keystroke echo, 50 busy terminals, recording sizes.

    .venv/bin/python benchmarks/bench_terminals.py [--keys 500] [--terminals 50] [--seconds 20]

The panel runs as `make run` serves it: gunicorn with one uvicorn worker (panel.asgi), on
the benchmark database and a Redis index of its own, in front of a real sshd on 127.0.0.1.
- Echo: one keystroke at a time through a websocket client (the `websockets` library, as
  a browser's socket) to an SSH shell and back, against a direct paramiko channel with a
  PTY to the same sshd in the same run (goal: p95 within 1.5x direct + 5 ms).
- Load: N terminals open at once, each printing ~200 lines/s (a burst of 200 lines every
  second); the web process's CPU and memory, and the job list page's p95 meanwhile
  (goal: <= 300 ms), against the same page with no terminal open.
- Recordings: compressed size per minute of an interactive session (a person typing
  commands) and of a `yes` flood, which the cap (TERMINAL_RECORDING_MAX_BYTES) stops.
Numbers only, never asserts; the machine is shared, compare ratios from one run.
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.common import machine_line, print_table, setup_django, summary_ms  # noqa: E402

CAP = 2 * 1024 * 1024


def start_web(port, env):
    command = [sys.executable, "-m", "gunicorn", "panel.asgi:application", "--worker-class", "uvicorn_worker.UvicornWorker",
               "--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=HERE.parent, env=env, start_new_session=True)
    from tests.support.ports import wait_for_port

    wait_for_port("127.0.0.1", port, timeout=60)
    return process


def worker_pid(master):
    import psutil

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = psutil.Process(master.pid).children()
        if children:
            return children[0].pid
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def echo_both(base, path, cookie, host, user, private_key, host_key, keys):
    """Keystroke round trips, one key on the direct channel then one through the panel, in
    turn, so that the load of a shared machine weighs on both alike. ([direct], [panel])"""
    from websockets.sync.client import connect

    from tests.support.sshclient import ssh_connect

    client = ssh_connect(host.host, host.port, user, private_key=private_key, known_host_key=host_key)
    channel = client.get_transport().open_session()
    channel.get_pty(term="xterm-256color", width=120, height=40)
    channel.invoke_shell()
    channel.settimeout(10)
    direct, through = [], []
    with connect(base + path, additional_headers={"Origin": "http://127.0.0.1", "Cookie": cookie}, max_size=None) as socket:
        assert json.loads(socket.recv(timeout=30))["type"] == "session"
        drain(socket, 1.0)
        while channel.recv_ready():
            channel.recv(65536)
        for index in range(keys):
            key = "x" if index % 2 == 0 else "\x7f"
            started = time.perf_counter()
            channel.sendall(key.encode())
            channel.recv(65536)
            direct.append(time.perf_counter() - started)
            deadline = time.perf_counter() + 0.002
            while time.perf_counter() < deadline:
                if channel.recv_ready():
                    channel.recv(65536)
            started = time.perf_counter()
            socket.send(json.dumps({"type": "input", "data": key}))
            while json.loads(socket.recv(timeout=10))["type"] != "output":
                pass
            through.append(time.perf_counter() - started)
            drain(socket, 0.002)
        socket.send(json.dumps({"type": "input", "data": "exit\r"}))
    client.close()
    return direct, through


def drain(socket, quiet):
    """Read until nothing arrives for `quiet` seconds (the rest of an echo, a prompt)."""
    from websockets.exceptions import ConnectionClosed

    while True:
        try:
            socket.recv(timeout=quiet)
        except TimeoutError:
            return
        except ConnectionClosed:
            return


async def busy_terminals(base, path, cookie, count, seconds, ready, stop):
    import websockets

    received = [0] * count
    flood = "while :; do seq -f 'line %g of the flood, with a few words of text' 200; sleep 1; done\r"

    async def one(index, socket):
        await socket.send(json.dumps({"type": "input", "data": flood}))
        async for message in socket:
            received[index] += len(message)
            if stop.is_set():
                return

    sockets = []
    for index in range(count):  # one after the other: sshd's MaxStartups drops bursts of new logins
        socket = await websockets.connect(base + path, additional_headers={"Origin": "http://127.0.0.1", "Cookie": cookie}, max_size=None)
        json.loads(await socket.recv())
        sockets.append(socket)
    ready.set()
    tasks = [asyncio.ensure_future(one(index, socket)) for index, socket in enumerate(sockets)]
    await asyncio.sleep(seconds)
    stop.set()
    for socket in sockets:
        await socket.send(json.dumps({"type": "input", "data": "\x03exit\r"}))
        await socket.close()
    for task in tasks:
        task.cancel()
    return received


def page_times(url, cookie, seconds):
    import requests

    session = requests.Session()
    session.headers["Cookie"] = cookie
    times = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        response = session.get(url, timeout=30)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    return times


def sample_process(pid, stop, samples):
    import psutil

    process = psutil.Process(pid)
    process.cpu_percent(None)
    while not stop.wait(1.0):
        samples.append((process.cpu_percent(None), process.memory_info().rss))


def recording_of(base, path, cookie, script, seconds):
    """Run `script(send)` for `seconds`, end the session; (recording bytes, output bytes, truncated)."""
    from websockets.sync.client import connect

    from terminals.models import TerminalSession

    with connect(base + path, additional_headers={"Origin": "http://127.0.0.1", "Cookie": cookie}, max_size=None) as socket:
        session_id = json.loads(socket.recv(timeout=30))["id"]
        stop = threading.Event()
        reader = threading.Thread(target=lambda: drain_until(socket, stop), daemon=True)
        reader.start()
        script(lambda data: socket.send(json.dumps({"type": "input", "data": data})), seconds)
        socket.send(json.dumps({"type": "input", "data": "\x03exit\r"}))
        stop.set()
        reader.join(10)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = TerminalSession.objects.get(pk=session_id)
        if row.ended_at:
            return row
        time.sleep(0.2)
    raise RuntimeError("the session did not end")


def drain_until(socket, stop):
    from websockets.exceptions import ConnectionClosed

    while not stop.is_set():
        try:
            socket.recv(timeout=0.5)
        except TimeoutError:
            continue
        except ConnectionClosed:
            return


def typing(send, seconds):
    commands = ["ls -la /etc | head -20", "echo $HOME", "uname -a", "cat /etc/os-release", "df -h | head -5", "ps aux | head -15"]
    deadline = time.monotonic() + seconds
    index = 0
    while time.monotonic() < deadline:
        for char in commands[index % len(commands)]:
            send(char)
            time.sleep(0.08)  # ~12 characters per second, a fast typist
        send("\r")
        time.sleep(1.0)
        index += 1


def flood(send, seconds):
    send("yes 'a line of a flood'\r")
    time.sleep(seconds)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--terminals", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    os.environ["FILROUGE_TERMINAL_RECORDING_MAX_BYTES"] = str(CAP)
    setup_django(database="filrouge_bench_terminals", redis_db=14)
    from django.test import Client

    from clusters.models import Credential, Server
    from panel.accounts.models import Role, User
    from tests.support.ports import free_port
    from tests.support.sshd import SshdFleet, ensure_test_user
    from tests.support.keys import generate_keypair

    private_key, public_key = generate_keypair()
    user = ensure_test_user().pw_name
    fleet = SshdFleet(1, user, public_key)
    try:
        host = fleet.hosts[0]
        credential = Credential(name="bench-key", kind="ssh-key")
        credential.set_secret({"private_key": private_key})
        credential.save()
        server = Server.objects.create(name="bench-term", address=host.host, port=host.port, user=user, credential=credential,
                                       pinned_host_key=host.host_public_key)
        admin = User.objects.create(username="bench-admin", role=Role.ADMIN)
        client = Client()
        client.force_login(admin)
        cookie = f"sessionid={client.cookies['sessionid'].value}"

        port = free_port()
        env = dict(os.environ, ALLOWED_HOSTS="127.0.0.1,localhost", FILROUGE_TERMINAL_RECONNECT_GRACE="1", PYTHONUNBUFFERED="1")
        web = start_web(port, env)
        pid = worker_pid(web)
        base, path = f"ws://127.0.0.1:{port}", f"/ws/terminals/server/?server={server.pk}&cols=120&rows=40"
        try:
            print(machine_line())
            direct, through = echo_both(base, path, cookie, host, user, private_key, host.host_public_key, args.keys)
            d, w = summary_ms(direct), summary_ms(through)
            goal = 1.5 * d["p95"] + 5
            print_table(f"Keystroke echo round trip, {args.keys} keystrokes (ms)", ["path", "p50", "p95", "max"], [
                ["direct paramiko channel (PTY)", f"{d['p50']:.2f}", f"{d['p95']:.2f}", f"{d['max']:.1f}"],
                ["websocket → panel → SSH shell", f"{w['p50']:.2f}", f"{w['p95']:.2f}", f"{w['max']:.1f}"],
                ["goal: p95 ≤ 1.5 × direct + 5 ms", "", f"{goal:.2f}", "met" if w["p95"] <= goal else "NOT met"],
            ])

            jobs_url = f"http://127.0.0.1:{port}/jobs/"
            idle_pages = page_times(jobs_url, cookie, 10)
            stop, ready, samples = threading.Event(), threading.Event(), []
            idle_samples = []
            idle_stop = threading.Event()
            sampler = threading.Thread(target=sample_process, args=(pid, idle_stop, idle_samples), daemon=True)
            sampler.start()
            time.sleep(5)
            idle_stop.set()
            sampler.join()
            result = {}

            def run_terminals():
                result["received"] = asyncio.run(busy_terminals(base, path, cookie, args.terminals, args.seconds, ready, stop))

            runner = threading.Thread(target=run_terminals, daemon=True)
            runner.start()
            opening = time.monotonic()
            ready.wait(600)
            opened_in = time.monotonic() - opening
            sampler = threading.Thread(target=sample_process, args=(pid, stop, samples), daemon=True)
            sampler.start()
            time.sleep(2)
            busy_pages = page_times(jobs_url, cookie, max(5, args.seconds - 4))
            runner.join(120)
            sampler.join(5)
            received = sum(result.get("received", []))
            cpu = [sample[0] for sample in samples] or [0]
            rss = [sample[1] for sample in samples] or [0]
            i, b = summary_ms(idle_pages), summary_ms(busy_pages)
            print_table(f"{args.terminals} terminals printing ~200 lines/s each (web worker process)", ["measure", "no terminal", f"{args.terminals} terminals"], [
                ["CPU % (mean of 1 s samples)", f"{sum(s[0] for s in idle_samples) / max(1, len(idle_samples)):.0f}", f"{sum(cpu) / len(cpu):.0f}"],
                ["memory RSS (MiB, max)", f"{max((s[1] for s in idle_samples), default=0) / 2**20:.0f}", f"{max(rss) / 2**20:.0f}"],
                ["job list page p50 (ms)", f"{i['p50']:.0f}", f"{b['p50']:.0f}"],
                ["job list page p95 (ms), goal ≤ 300", f"{i['p95']:.0f}", f"{b['p95']:.0f}"],
                ["pages fetched", i["n"], b["n"]],
                ["terminal output delivered (MiB)", "", f"{received / 2**20:.1f} in {args.seconds} s"],
                ["time to open them all (s)", "", f"{opened_in:.1f}"],
            ])

            interactive = recording_of(base, path, cookie, typing, 30)
            flooded = recording_of(base, path, cookie, flood, 15)
            per_minute = lambda row: row.recording_bytes * 60 / max(1e-6, row.duration.total_seconds())  # noqa: E731
            print_table("Recording size (gzip asciicast)", ["session", "length (s)", "output (KiB)", "recording (KiB)", "per minute (KiB)", "capped"], [
                ["interactive (typing commands)", f"{interactive.duration.total_seconds():.0f}", f"{interactive.output_bytes / 1024:.0f}",
                 f"{interactive.recording_bytes / 1024:.1f}", f"{per_minute(interactive) / 1024:.1f}", interactive.recording_truncated],
                [f"`yes` flood (cap {CAP // 2**20} MiB of output)", f"{flooded.duration.total_seconds():.0f}", f"{flooded.output_bytes / 1024:.0f}",
                 f"{flooded.recording_bytes / 1024:.1f}", f"≤ {flooded.recording_bytes / 1024:.1f} (bounded by the cap)", flooded.recording_truncated],
            ])
        finally:
            os.killpg(web.pid, signal.SIGTERM)
            try:
                web.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(web.pid, signal.SIGKILL)
    finally:
        fleet.stop()


if __name__ == "__main__":
    main()
