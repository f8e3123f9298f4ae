"""Metrics: chart data, sampling cost, database growth, and the load generator beside `ab`.

    .venv/bin/python benchmarks/bench_metrics.py [chart] [load] [sampling] [containers...]
    (default: all three parts, 100 and 500 containers; the stats round obeys
    FILROUGE_METRICS_DOCKER_STATS_BUDGET, set it high to time a full round)

1. Chart data for 24 h at 15 s, 50 series in one request (GET /api/metrics/): server time
   and bytes (goal <= 50 ms).
2. One sampling round of the engine probe's container stats for N running containers: wall
   time, Docker API calls, CPU of the panel's process.
3. Database growth per series per day (bytes per point row, rows kept per series).
4. Load generator throughput on one worker against a static container on loopback, beside
   `ab` in the same run (goal >= 0.8x ab).
"""

import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from datetime import timedelta

from common import print_table, setup_django

SERIES = 50
INTERVAL = 15


def chart_data():
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from clusters.models import Server
    from metrics.models import RAW, Point, Series
    from panel.accounts.models import User

    user = User.objects.create_user("bench-operator", password="x", role="operator")
    server = Server.objects.create(name="bench", address="127.0.0.1")
    now = timezone.now()
    series = Series.objects.bulk_create([
        Series(name="filrouge_container_cpu_cores", labels={"container": f"c{n}"}, key=f"bench-{n}", object_type="server", object_id=server.pk)
        for n in range(SERIES)
    ])
    started = time.perf_counter()
    points = int(86400 / INTERVAL)
    for s in series:
        Point.objects.bulk_create([Point(series=s, tier=RAW, time=now - timedelta(seconds=INTERVAL * i), value=round((i % 97) / 97, 6)) for i in range(points)], batch_size=5000)
    print(f"{SERIES * points} points written in {time.perf_counter() - started:.1f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE metrics_point") if not connection.in_atomic_block else None
        cursor.execute("SELECT pg_total_relation_size('metrics_point'), pg_relation_size('metrics_point'), (SELECT count(*) FROM metrics_point)")
        total, heap, rows = cursor.fetchone()

    client = Client()
    client.force_login(user)
    query = {"object_type": "server", "object_id": server.pk, "range": "24h", "step": 15}
    times, sizes, gz_sizes = [], [], []
    for _ in range(5):
        began = time.perf_counter()
        plain = client.get("/api/metrics/", query)
        middle = time.perf_counter()
        zipped = client.get("/api/metrics/", query, HTTP_ACCEPT_ENCODING="gzip")
        times.append((middle - began, time.perf_counter() - middle))
        assert plain.status_code == 200 and zipped.status_code == 200, plain.content[:300]
        assert zipped.headers.get("Content-Encoding") == "gzip"
        sizes.append(len(plain.content))
        gz_sizes.append(len(zipped.content))
    body = json.loads(plain.content)
    filled = sum(v is not None for s in body["series"] for v in s["values"])
    from metrics import store

    store_times, before_times = [], []
    for _ in range(3):
        began = time.perf_counter()
        store.read(series, now.timestamp() - 86400, now.timestamp(), 15)
        store_times.append(time.perf_counter() - began)
        began = time.perf_counter()
        before_body = previous_method(series, now.timestamp() - 86400, now.timestamp(), 15)
        before_times.append(time.perf_counter() - began)
    plain_ms = [a for a, _ in times]
    gzip_ms = [b for _, b in times]
    print_table("Chart data: 24 h at 15 s, 50 series, one request (Django test client, median of 5, same data)",
                ["method", "series", "points returned", "server ms (median)", "server ms (min)", "of which store read ms", "bytes", "bytes gzip"],
                [["before (rows + Python bucketing + DRF JSON renderer)", len(body["series"]), filled, f"{statistics.median(before_times) * 1000:.0f}",
                  f"{min(before_times) * 1000:.0f}", "", len(before_body), len(gzip.compress(before_body, 6))],
                 ["now, uncompressed", len(body["series"]), filled, f"{statistics.median(plain_ms) * 1000:.0f}", f"{min(plain_ms) * 1000:.0f}",
                  f"{statistics.median(store_times) * 1000:.0f}", sizes[-1], ""],
                 ["now, Accept-Encoding: gzip", len(body["series"]), filled, f"{statistics.median(gzip_ms) * 1000:.0f}", f"{min(gzip_ms) * 1000:.0f}",
                  "", "", gz_sizes[-1]]])
    per_row = total / rows
    raw_day, rollup_day = 86400 // INTERVAL, 86400 // 300
    print_table("Database growth per series (PostgreSQL, point rows with their indexes)",
                ["bytes per point row", "raw rows/day (15 s)", "5-min rows/day", "rows kept (1 d raw + 30 d 5-min)", "bytes kept per series", "1,000 series"],
                [[f"{per_row:.0f} ({heap / rows:.0f} heap)", raw_day, rollup_day, raw_day + 30 * rollup_day,
                  f"{(raw_day + 30 * rollup_day) * per_row / 2**20:.2f} MiB", f"{(raw_day + 30 * rollup_day) * per_row * 1000 / 2**30:.2f} GiB"]])


def previous_method(series_list, start, end, step):
    """The read as it was before (kept here to compare on the same data): every point as a row
    (series, epoch, value), bucketed in Python, written by DRF's JSON renderer. Returns the body."""
    import math
    from datetime import datetime, timezone as dt_timezone

    from django.db import connection
    from rest_framework.renderers import JSONRenderer

    from metrics import api, store

    times = store.grid(start, end, step)
    low = datetime.fromtimestamp(times[0] - step, tz=dt_timezone.utc)
    high = datetime.fromtimestamp(times[-1], tz=dt_timezone.utc)
    ids = [series.pk for series in series_list]
    first, size = times[0] - step, len(times)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT series_id, date_part('epoch', time), value FROM metrics_point WHERE series_id = ANY(%s) AND tier = 0 AND time > %s AND time <= %s",
            [ids, low, high],
        )
        rows = cursor.fetchall()
    sums = {pk: [0.0] * size for pk in ids}
    counts = {pk: [0] * size for pk in ids}
    for series_id, epoch, value in rows:
        index = math.ceil((epoch - first) / step) - 1
        if 0 <= index < size:
            sums[series_id][index] += value
            counts[series_id][index] += 1
    values = {pk: [round(total / count, 6) if count else None for total, count in zip(sums[pk], counts[pk])] for pk in ids}
    payload = {"source": "database", "from": start, "to": end, "step": step, "times": times,
               "series": api.series_payload(series_list, times, values), "empty_reason": ""}
    return JSONRenderer().render(payload)


def sampling(counts):
    sys.path.insert(0, os.path.dirname(__file__))
    from bench_docker_probe import remove_all, start_many
    from docker_bench_setup import docker_client, images

    from clusters.docker.jobs import add_container_stats, container_samples
    from clusters.drivers import docker as driver
    from clusters.models import Cluster
    import metrics

    client = docker_client()
    image = images(client)["1"]
    label = f"metrics-{uuid.uuid4().hex[:6]}"
    cluster = Cluster.objects.create(name="bench-engine", kind="docker", endpoint="unix:///var/run/docker.sock")
    rows = []
    try:
        for count in counts:
            began = time.perf_counter()
            start_many(client, image, count, label)
            print(f"{count} containers up after {time.perf_counter() - began:.1f} s", flush=True)
            with driver.engine(cluster) as connection:
                for round_number in range(2):
                    observed, calls = driver.observe_engine(connection, previous={"disk": {"at": time.time()}})
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    stats_calls = add_container_stats(connection, observed)
                    wall_stats, cpu_stats = time.perf_counter() - wall0, time.process_time() - cpu0
                    cpu1, wall1 = time.process_time(), time.perf_counter()
                    written = metrics.record_many(container_samples(cluster, observed))
                    wall_record, cpu_record = time.perf_counter() - wall1, time.process_time() - cpu1
                    running = sum(1 for row in observed["containers"] if row["state"] == "running")
                    rows.append([count, running, round_number + 1, len(calls), stats_calls, f"{wall_stats:.2f}", f"{cpu_stats:.2f}", written, f"{wall_record:.2f}", f"{cpu_record:.2f}"])
                    print(" | ".join(map(str, rows[-1])), flush=True)
    finally:
        remove_all(client, label)
    print_table("One sampling round (8 stats calls at a time; round 2 turns counters into rates)",
                ["bench containers", "running on engine", "round", "list calls", "stats calls", "stats wall s", "stats CPU s", "points written", "record wall s", "record CPU s"], rows)


def ab_rps(url, seconds):
    out = subprocess.run(["ab", "-q", "-c", "8", "-t", str(seconds), "-n", "10000000", url], capture_output=True, text=True)
    return float(re.search(r"Requests per second:\s+([\d.]+)", out.stdout).group(1))


def load_generator():
    from docker_bench_setup import docker_client, images

    from deployments.loadtest.engine import run_load, run_wrk

    client = docker_client()
    image = images(client)["1"]
    container = client.containers.run(image, detach=True, name=f"metrics-bench-{uuid.uuid4().hex[:6]}", labels={"filrouge.bench": "metrics"}, ports={"8080/tcp": ("127.0.0.1", None)})
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        url = f"http://127.0.0.1:{port}/index.html"
        time.sleep(1)
        rows = []
        for round_number in range(3):
            ab = ab_rps(url, 3)
            wrk = run_wrk(url, concurrency=8, duration=3)["rps"]
            aio = run_load(url, concurrency=8, duration=3)["rps"]
            rows.append([round_number + 1, f"{ab:.0f}", f"{wrk:.0f}", f"{wrk / ab:.2f}", f"{aio:.0f}", f"{aio / ab:.2f}"])
        print_table("Load generator vs ab (8 clients, 3 s each, busybox httpd on loopback, same run)",
                    ["round", "ab req/s", "load-test (wrk engine) req/s", "x ab", "load-test (aiohttp, paced mode) req/s", "x ab"], rows)
    finally:
        container.remove(force=True)


def main(args):
    """Arguments: parts to run (chart, load, sampling; all by default) and container counts."""
    parts = [arg for arg in args if not arg.isdigit()] or ["chart", "load", "sampling"]
    counts = [int(arg) for arg in args if arg.isdigit()] or [100, 500]
    setup_django(database=os.environ.get("FILROUGE_BENCH_DATABASE", "filrouge_bench_metrics"))
    if "chart" in parts:
        chart_data()
    if "load" in parts:
        load_generator()
    if "sampling" in parts:
        sampling(counts)


if __name__ == "__main__":
    main(sys.argv[1:])
