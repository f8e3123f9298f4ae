"""Issue 3 figures: enqueue→running, line→visible, log page time, API launch throughput."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, machine_line, percentile, print_table, setup_django, summary_ms

setup_django()

import django_rq  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402
from rq import Queue  # noqa: E402

from panel.accounts.models import ApiToken, Role, TokenScope, User  # noqa: E402
from panel.jobs.models import Job, JobEvent, Status  # noqa: E402
from panel.jobs.services import start_job  # noqa: E402
from tests.fixtures.workers import child_env, start_worker  # noqa: E402
from tests.support.ports import free_port, wait_for_port  # noqa: E402

SCRATCH = Path(tempfile.mkdtemp(prefix="filrouge-bench-"))
USER = User.objects.create(username="bench", role=Role.OPERATOR)


def wait_for(predicate, timeout=60, interval=0.001):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(interval)


def enqueue_to_running(count=200):
    latencies = []
    for _ in range(count):
        started = time.time()
        job = start_job("diagnostics", {"checks": ["disk"]}, USER)
        row = Job.objects.filter(pk=job.pk)
        wait_for(lambda: row.filter(started_at__isnull=False).exists())
        latencies.append(row.values_list("started_at", flat=True)[0].timestamp() - started)
        wait_for(lambda: row.filter(finished_at__isnull=False).exists())
    return latencies


def rq_alone(count=200):
    """The same measure for a bare RQ job on a bare forking `rq worker`."""
    redis = django_rq.get_connection("default")
    worker = subprocess.Popen(
        [sys.executable, "-m", "rq.cli", "worker", "bench-baseline", "--url", os.environ["REDIS_URL"], "--logging_level", "WARNING"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    queue = Queue("bench-baseline", connection=redis)
    latencies = []
    try:
        for number in range(count):
            key = f"bench:start:{number}"
            started = time.time()
            queue.enqueue("benchmarks.rq_probe.record_start", key, result_ttl=0)
            wait_for(lambda: redis.exists(key), timeout=60)
            latencies.append(float(redis.get(key)) - started)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    return latencies


def line_to_visible():
    job = start_job("test-lines", {"count": 600, "pause_every": 1, "pause": 0.02}, USER)
    pattern = re.compile(r"written at (\d+\.\d+)")
    delays, last = [], 0
    row = Job.objects.filter(pk=job.pk)
    while True:
        events = list(JobEvent.objects.filter(job_id=job.pk, seq__gt=last).order_by("seq").values_list("seq", "text"))
        seen = time.time()
        for seq, text in events:
            last = seq
            match = pattern.search(text)
            if match:
                delays.append(seen - float(match.group(1)))
        if not events and row.filter(status=Status.SUCCEEDED).exists():
            break
        time.sleep(0.02)
    return delays


def log_page_times(lines, repeat=40):
    job = Job.objects.create(kind="test-lines", user=USER, status=Status.SUCCEEDED, timeout=60, line_count=lines + 1, started_at=timezone.now(), finished_at=timezone.now())
    now = timezone.now()
    batch = []
    for seq in range(1, lines + 2):
        batch.append(JobEvent(job=job, seq=seq, time=now, host=f"host{seq % 30}", task="task", outcome="ok", text=f"line {seq} " + "x" * 60, is_end=seq == lines + 1))
        if len(batch) == 10000:
            JobEvent.objects.bulk_create(batch)
            batch = []
    JobEvent.objects.bulk_create(batch)
    client = Client()
    client.force_login(USER)
    page, poll = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        assert client.get(f"/jobs/{job.pk}/").status_code == 200
        page.append(time.perf_counter() - started)
        started = time.perf_counter()
        assert client.get(f"/jobs/{job.pk}/log/", {"after": lines - 199}).status_code == 200
        poll.append(time.perf_counter() - started)
    return page, poll


def api_launch_throughput(seconds=30, connections=16):
    token, plaintext = ApiToken.issue(USER, "bench", TokenScope.WRITE)
    port = free_port()
    env = child_env(DJANGO_SETTINGS_MODULE="panel.settings", FILROUGE_VAR_DIR=str(SCRATCH / "var"))
    env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    workers = os.cpu_count() * 2
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "panel.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        before = Job.objects.count()
        if shutil.which("wrk"):
            script = SCRATCH / "post.lua"
            script.write_text(
                'wrk.method = "POST"\n'
                'wrk.body = \'{"kind": "diagnostics", "params": {"checks": ["disk"]}}\'\n'
                f'wrk.headers["Authorization"] = "Bearer {plaintext}"\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
            )
            output = subprocess.run(
                ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), f"http://127.0.0.1:{port}/api/jobs/"],
                capture_output=True, text=True, check=True,
            ).stdout
            non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
            latency = re.search(r"50%\s+(\S+).*?99%\s+(\S+)", output, re.S)
            tool = f"wrk, {connections} connections, {workers} gunicorn workers"
            p50, p99 = latency.groups() if latency else ("?", "?")
            errors = int(non_2xx.group(1)) if non_2xx else 0
        else:
            tool, p50, p99, errors = "python threads (wrk missing)", "?", "?", python_load(port, plaintext, seconds, connections)
        created = Job.objects.count() - before
        return {"tool": tool, "created": created, "per_second": created / seconds, "errors": errors, "p50": p50, "p99": p99, "workers": workers}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def python_load(port, token, seconds, connections):
    import requests

    errors = []
    deadline = time.monotonic() + seconds

    def run():
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        while time.monotonic() < deadline:
            if session.post(f"http://127.0.0.1:{port}/api/jobs/", json={"kind": "diagnostics"}).status_code != 201:
                errors.append(1)

    threads = [threading.Thread(target=run) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(errors)


def main():
    print(f"Machine: {machine_line()}")
    worker = start_worker(SCRATCH, name="bench")
    try:
        enqueue_to_running(10)  # warm up
        panel = summary_ms(enqueue_to_running(200))
        delays = summary_ms(line_to_visible())
    finally:
        worker.stop()
    baseline = summary_ms(rq_alone(200))
    print_table(
        "Enqueue → running, warm forking worker, 200 jobs one after another",
        ["", "p50 ms", "p95 ms", "max ms", "goal"],
        [
            ["Filrouge: start_job → row says running", f"{panel['p50']:.1f}", f"{panel['p95']:.1f}", f"{panel['max']:.1f}", "p50 ≤ 25, p95 ≤ 50"],
            ["RQ alone: enqueue → function starts", f"{baseline['p50']:.1f}", f"{baseline['p95']:.1f}", f"{baseline['max']:.1f}", ""],
            ["ratio Filrouge / RQ alone (p50)", f"{panel['p50'] / baseline['p50']:.2f}", "", "", ""],
        ],
    )
    print_table(
        "A line written by a job → visible to the live page's next request (600 lines at 50/s)",
        ["lines", "p50 ms", "p95 ms", "max ms", "goal"],
        [[delays["n"], f"{delays['p50']:.0f}", f"{delays['p95']:.0f}", f"{delays['max']:.0f}", "p95 ≤ 1500 (the page polls every 1 s on top)"]],
    )
    rows = []
    for lines in (1_000, 100_000):
        page, poll = log_page_times(lines)
        page_ms, poll_ms = summary_ms(page), summary_ms(poll)
        rows.append([f"{lines:,}", f"{page_ms['p50']:.1f}", f"{page_ms['p95']:.1f}", f"{poll_ms['p50']:.1f}", f"{poll_ms['p95']:.1f}"])
    print_table(
        "Log page server time, last 200 lines (in-process Django client, 40 requests)",
        ["job lines", "page p50 ms", "page p95 ms", "poll p50 ms", "poll p95 ms"],
        rows,
    )
    result = api_launch_throughput()
    print_table(
        "Job launches through the API with a token, sustained 30 s (POST /api/jobs/, no worker draining)",
        ["tool", "jobs created", "per second", "errors", "latency p50", "latency p99", "goal"],
        [[result["tool"], result["created"], f"{result['per_second']:.0f}", result["errors"], result["p50"], result["p99"], "≥ 50/s"]],
    )


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)
