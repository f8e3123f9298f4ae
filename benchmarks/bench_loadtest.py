"""Load tests: what the `load-test` job measures beside `ab`, and what the lab's SSH tunnel costs.

    .venv/bin/python benchmarks/bench_loadtest.py [target] [tunnel] [delays in ms, default 50]

1. A target that sets the pace (busybox httpd answering /cgi-bin/slow after 50 ms, 8 clients):
   alternated 2 s runs of `ab`, of the job with its unpaced engine (wrk) and with its paced
   engine (aiohttp, rate above what the target serves). Requests/s and p50 of each, and the
   job/ab ratios (the issue's goal: within 20%; tests/deployments/loadtest asserts the median).
   How fast the generator itself goes (a static page, where it sets the pace) is part 4 of
   benchmarks/bench_metrics.py (goal >= 0.8x ab).
2. The lab's SSH tunnel (labs/loadtest.py loads an SSH environment's port through the panel's
   sshd on the host): the same loads direct and through `SshConnection.forward_local` to a real
   sshd on loopback, on the slow target and on a static page (where the tunnel sets the pace).
"""

import os
import re
import statistics
import subprocess
import sys
import time
import uuid

from docker_bench_setup import docker_client, images, setup_django

from common import print_table

ROUNDS = 9
SLOW_MS = 50
CONCURRENCY = 8
SECONDS = 2


def ab(url, seconds=SECONDS, concurrency=CONCURRENCY):
    out = subprocess.run(["ab", "-q", "-c", str(concurrency), "-t", str(seconds), "-n", "10000000", url], capture_output=True, text=True)
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", out.stdout).group(1))
    p50 = int(re.search(r"^\s*50%\s+(\d+)", out.stdout, re.MULTILINE).group(1)) / 1000
    return rps, p50


def start(client, image, label):
    container = client.containers.run(image, detach=True, name=f"bench-loadtest-{uuid.uuid4().hex[:6]}", labels={"filrouge.bench": label},
                                      ports={"8080/tcp": ("127.0.0.1", None)})
    container.reload()
    port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
    import requests

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/index.html", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.1)
    return container, int(port)


def load_test_job(user, params):
    """The `load-test` kind, validated and run here through the worker's runner."""
    from panel.jobs.kinds import get_kind
    from panel.jobs.models import Job
    from panel.jobs.runner import execute

    kind = get_kind("load-test")
    job = Job.objects.create(kind=kind.name, params=kind.validate(params, context={"user": user}), user=user, timeout=kind.timeout)
    execute(job.pk)
    job.refresh_from_db()
    if job.status != "succeeded":
        raise RuntimeError(f"load-test ended {job.status}: {job.error}")
    return job.result


def target_bound(client, delay_ms=SLOW_MS):
    from tests.support.images import build_slow_app_image

    from clusters.models import Cluster
    from panel.accounts.models import Role, User

    user, _ = User.objects.get_or_create(username="bench", defaults={"role": Role.OPERATOR})
    Cluster.objects.get_or_create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")
    container, port = start(client, build_slow_app_image(client, delay_ms), "loadtest")
    url = f"http://127.0.0.1:{port}/cgi-bin/slow"
    try:
        rows, ratios = [], {"wrk": ([], []), "aiohttp": ([], [])}
        for round_number in range(ROUNDS):
            # Each round in the other order, so that a machine getting busier favours neither side.
            figures = {}
            steps = [("ab", None), ("wrk", {}), ("aiohttp", {"rate": 5000})]
            for name, extra in (steps if round_number % 2 == 0 else steps[::-1]):
                if name == "ab":
                    figures[name] = ab(url)
                else:
                    result = load_test_job(user, {"url": url, "duration": SECONDS, "concurrency": CONCURRENCY, **extra})
                    figures[name] = (result["rps"], result["p50"])
            ab_rps, ab_p50 = figures["ab"]
            row = [round_number + 1, f"{ab_rps:.0f}", f"{ab_p50 * 1000:.0f}"]
            for engine in ("wrk", "aiohttp"):
                rps, p50 = figures[engine]
                ratios[engine][0].append(rps / ab_rps)
                ratios[engine][1].append(p50 / ab_p50)
                row += [f"{rps:.0f}", f"{p50 * 1000:.1f}", f"{rps / ab_rps:.2f}", f"{p50 / ab_p50:.2f}"]
            rows.append(row)
            print(" | ".join(map(str, row)), flush=True)
        rows.append(["median", "", "", "", "", f"{statistics.median(ratios['wrk'][0]):.2f}", f"{statistics.median(ratios['wrk'][1]):.2f}",
                     "", "", f"{statistics.median(ratios['aiohttp'][0]):.2f}", f"{statistics.median(ratios['aiohttp'][1]):.2f}"])
        print_table(f"load-test job vs ab on a target that answers after {delay_ms} ms ({CONCURRENCY} clients, {SECONDS} s runs, alternated; goal: ratios 0.8-1.2)",
                    ["round", "ab req/s", "ab p50 ms", "job (wrk) req/s", "p50 ms", "x ab req/s", "x ab p50",
                     "job (aiohttp) req/s", "p50 ms", "x ab req/s", "x ab p50"], rows)
    finally:
        container.remove(force=True)


def tunnel(client):
    from tests.support.keys import generate_keypair
    from tests.support.sshd import SshdFleet, ensure_test_user

    from clusters.drivers.ssh import SshConnection, SshTarget
    from deployments.loadtest.engine import run_load, run_wrk
    from tests.support.images import build_slow_app_image

    private, public = generate_keypair()
    fleet = SshdFleet(1, ensure_test_user().pw_name, public)
    slow, slow_port = start(client, build_slow_app_image(client), "loadtest")
    static, static_port = start(client, images(client)["1"], "loadtest")
    try:
        member = fleet.hosts[0]
        connection = SshConnection(SshTarget(name="bench", address=member.host, port=member.port, user=fleet.user,
                                             private_key=private, pinned_host_key=member.host_public_key)).connect()
        rows = []
        try:
            for label, port, path in ((f"slow ({SLOW_MS} ms)", slow_port, "/cgi-bin/slow"), ("static page", static_port, "/index.html")):
                with connection.forward_local("127.0.0.1", port) as forward:
                    forward.check()
                    tunnelled = forward.address[1]
                    for engine, run in (("wrk", lambda url: run_wrk(url, concurrency=CONCURRENCY, duration=3)),
                                        ("aiohttp", lambda url: run_load(url, concurrency=CONCURRENCY, duration=3, rate=5000))):
                        direct_runs, tunnel_runs = [], []
                        for _ in range(3):
                            direct_runs.append(run(f"http://127.0.0.1:{port}{path}"))
                            tunnel_runs.append(run(f"http://127.0.0.1:{tunnelled}{path}"))
                        direct_rps = statistics.median(r["rps"] for r in direct_runs)
                        tunnel_rps = statistics.median(r["rps"] for r in tunnel_runs)
                        direct_p50 = statistics.median(r["p50"] for r in direct_runs)
                        tunnel_p50 = statistics.median(r["p50"] for r in tunnel_runs)
                        errors = sum(r["errors"] for r in tunnel_runs)
                        rows.append([label, engine, f"{direct_rps:.0f}", f"{tunnel_rps:.0f}", f"{tunnel_rps / direct_rps:.2f}",
                                     f"{direct_p50 * 1000:.1f}", f"{tunnel_p50 * 1000:.1f}", errors, forward.refused])
                        print(" | ".join(map(str, rows[-1])), flush=True)
        finally:
            connection.close()
        print_table(f"Lab SSH tunnel (forward_local through a real sshd on loopback) vs direct ({CONCURRENCY} clients, 3 s, median of 3)",
                    ["target", "engine", "direct req/s", "tunnel req/s", "x direct", "direct p50 ms", "tunnel p50 ms", "tunnel errors", "refused"], rows)
    finally:
        slow.remove(force=True)
        static.remove(force=True)
        fleet.stop()


def main(args):
    parts = [arg for arg in args if not arg.isdigit()] or ["target", "tunnel"]
    client = docker_client()
    if "target" in parts:
        teardown = setup_django()
        try:
            for delay in [int(arg) for arg in args if arg.isdigit()] or [SLOW_MS]:
                target_bound(client, delay)
        finally:
            from django.db import connections

            connections.close_all()
            teardown()
    if "tunnel" in parts:
        if "target" not in parts:
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
            import django

            django.setup()
        tunnel(client)


if __name__ == "__main__":
    main(sys.argv[1:])
