"""Metrics: chart data, sampling cost, database growth, and the load generator beside `ab`.

    .venv/bin/python benchmarks/bench_metrics.py [chart] [load] [sampling] [prometheus] [containers...]
    (default: all three parts, 100 and 500 containers; the stats round obeys
    FILROUGE_METRICS_DOCKER_STATS_BUDGET, set it high to time a full round)

1. Chart data for 24 h at 15 s, 50 series in one request (GET /api/metrics/): server time
   and bytes (goal <= 50 ms), from the points alone and with hour chunks (same answer).
2. One sampling round of the engine probe's container stats for N running containers: wall
   time, Docker API calls, CPU of the panel's process.
3. Database growth per series per day (bytes per point row, rows kept per series).
4. Load generator throughput on one worker against a static container on loopback, beside
   `ab` in the same run (goal >= 0.8x ab).
5. With PROMETHEUS_URL: Prometheus requests and time for a page of 3 charts (2 names each)
   read by 10 viewers within one step, per name as before, per chart, and per chart with
   the short cache (a real Prometheus, Debian's package; its own request counter).
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
    # In the order the probes write them: one round of every series, then the next round.
    Point.objects.bulk_create([
        Point(series=s, tier=RAW, time=now - timedelta(seconds=INTERVAL * i), value=round((i % 97) / 97, 6))
        for i in reversed(range(points)) for s in series
    ], batch_size=5000)
    print(f"{SERIES * points} points written in {time.perf_counter() - started:.1f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE metrics_point") if not connection.in_atomic_block else None
        cursor.execute("SELECT pg_total_relation_size('metrics_point'), pg_relation_size('metrics_point'), (SELECT count(*) FROM metrics_point)")
        total, heap, rows = cursor.fetchone()

    client = Client()
    client.force_login(user)
    query = {"object_type": "server", "object_id": server.pk, "range": "24h", "step": 15}
    from metrics import store
    from metrics.models import HourChunk

    def measure(rounds=5):
        """Median and minimum of `rounds` plain and gzip requests, the bodies, and the store's read alone."""
        times, sizes, gz_sizes = [], [], []
        for _ in range(rounds):
            began = time.perf_counter()
            plain = client.get("/api/metrics/", query)
            middle = time.perf_counter()
            zipped = client.get("/api/metrics/", query, HTTP_ACCEPT_ENCODING="gzip")
            times.append((middle - began, time.perf_counter() - middle))
            assert plain.status_code == 200 and zipped.status_code == 200, plain.content[:300]
            assert zipped.headers.get("Content-Encoding") == "gzip"
            sizes.append(len(plain.content))
            gz_sizes.append(len(zipped.content))
        store_times = []
        for _ in range(3):
            began = time.perf_counter()
            store.read(series, now.timestamp() - 86400, now.timestamp(), 15)
            store_times.append(time.perf_counter() - began)
        return {"plain": [a for a, _ in times], "gzip": [b for _, b in times], "store": store_times,
                "body": json.loads(plain.content), "bytes": sizes[-1], "gzip bytes": gz_sizes[-1]}

    def ms(values, how=statistics.median):
        return f"{how(values) * 1000:.0f}"

    # The points only (every hour read from the covering index), then with hour chunks: the
    # first request writes the 24 sealed hours' chunks of every series, the next ones read them.
    store.READ_HOUR_CHUNKS = False
    points_only = measure()
    store.READ_HOUR_CHUNKS = True
    began = time.perf_counter()
    first = client.get("/api/metrics/", query)
    first_ms = (time.perf_counter() - began) * 1000
    chunk_rows = HourChunk.objects.count()
    chunked = measure()
    assert chunked["body"]["series"] == points_only["body"]["series"], "the chunks changed the answer"
    assert json.loads(first.content)["series"] == points_only["body"]["series"]
    before_times = []
    for _ in range(3):
        began = time.perf_counter()
        before_body = previous_method(series, now.timestamp() - 86400, now.timestamp(), 15)
        before_times.append(time.perf_counter() - began)
    body = chunked["body"]
    filled = sum(v is not None for s in body["series"] for v in s["values"])
    count = len(body["series"])
    rows_out = [["before (rows + Python bucketing + DRF JSON renderer)", count, filled, ms(before_times), ms(before_times, min), "", len(before_body), len(gzip.compress(before_body, 6))]]
    for label, figures in (("points (covering index, binary arrays, orjson)", points_only), ("hour chunks (sealed hours) + points (the hour filling)", chunked)):
        rows_out.append([f"{label}, uncompressed", count, filled, ms(figures["plain"]), ms(figures["plain"], min), ms(figures["store"]), figures["bytes"], ""])
        rows_out.append([f"{label}, Accept-Encoding: gzip", count, filled, ms(figures["gzip"]), ms(figures["gzip"], min), "", "", figures["gzip bytes"]])
    rows_out.append([f"hour chunks, first request (writes {chunk_rows} chunks)", count, filled, f"{first_ms:.0f}", "", "", len(first.content), ""])
    print_table("Chart data: 24 h at 15 s, 50 series, one request (Django test client, median of 5, same data, same answer)",
                ["method", "series", "points returned", "server ms (median)", "server ms (min)", "of which store read ms", "bytes", "bytes gzip"], rows_out)
    # The bench's values repeat every 97 samples, which gzip shrinks almost for free; a real
    # series' six-decimal values do not. Gzip of the same answer with random values, at the
    # API's level 1 and at Django's gzip_page level 6, for scale:
    import random

    noisy = json.dumps({"series": [{"values": [round(random.random(), 6) for _ in s["values"]]} for s in body["series"]]}, separators=(",", ":")).encode()
    for level in (1, 6):
        began = time.perf_counter()
        noisy_gz = gzip.compress(noisy, level)
        print(f"gzip level {level} of the answer with random six-decimal values: {(time.perf_counter() - began) * 1000:.0f} ms, {len(noisy)} -> {len(noisy_gz)} bytes")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size('metrics_hourchunk')")
        chunk_bytes = cursor.fetchone()[0]
    print(f"hour chunks: {chunk_rows} rows, {chunk_bytes / 2**10:.0f} KiB with indexes ({chunk_bytes / SERIES / 2**10:.0f} KiB per series and day)")
    # Growth after downsampling: roll the day up into 5-minute averages, let retention drop the
    # raw points (as a day later), and measure what is left, compacted (VACUUM FULL).
    from datetime import timedelta as delta

    from django.conf import settings

    store.roll_up(now=now + delta(minutes=10))
    store.prune(now=now + delta(seconds=settings.METRICS_RAW_RETENTION, minutes=10))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM FULL ANALYZE metrics_point")
        cursor.execute("SELECT pg_total_relation_size('metrics_point'), (SELECT count(*) FROM metrics_point WHERE tier = 1), (SELECT count(*) FROM metrics_point)")
        rollup_total, rollup_rows, all_rows = cursor.fetchone()
    assert rollup_rows == all_rows, "raw points left after pruning"
    raw_rows_day, raw_bytes_day = rows / SERIES, total / SERIES
    rollup_rows_day, rollup_bytes_day = rollup_rows / SERIES, rollup_total / SERIES
    kept_days = settings.METRICS_ROLLUP_RETENTION / 86400
    steady = raw_bytes_day * settings.METRICS_RAW_RETENTION / 86400 + rollup_bytes_day * kept_days
    print_table("Database growth per series (PostgreSQL pg_total_relation_size of metrics_point: rows and indexes, 15 s samples)",
                ["raw rows/series/day", "raw bytes/series/day", "bytes per raw row", "5-min rows/series/day (after downsampling)",
                 "bytes/series/day after downsampling", f"kept per series (1 d raw + {kept_days:.0f} d 5-min)", "1,000 series"],
                [[f"{raw_rows_day:.0f}", f"{raw_bytes_day / 2**10:.0f} KiB", f"{total / rows:.0f} ({heap / rows:.0f} heap)", f"{rollup_rows_day:.0f}",
                  f"{rollup_bytes_day / 2**10:.1f} KiB", f"{steady / 2**20:.2f} MiB", f"{steady * 1000 / 2**30:.2f} GiB"]])


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
    """One probe round of an engine with N busybox `sleep` containers (created here with a
    unique label, removed at the end): the list calls, the events call (restarts), the stats
    calls, and writing the samples. Two stats scopes: "panel" (the default: only the panel's
    own containers, here none of the N, so the calls do not grow with N) and "all" (one stats
    call per running container, 8 at a time, with no time budget so the whole round is timed)."""
    sys.path.insert(0, os.path.dirname(__file__))
    from bench_docker_probe import remove_all, start_many
    from docker_bench_setup import docker_client, images
    from django.test import override_settings

    from clusters.docker.jobs import add_container_restarts, add_container_stats, container_samples
    from clusters.drivers import docker as driver
    from clusters.models import Cluster
    import metrics

    client = docker_client()
    image = images(client)["1"]
    label = f"metrics-{uuid.uuid4().hex[:6]}"
    rows = []
    try:
        for count in counts:
            began = time.perf_counter()
            start_many(client, image, count, label)
            print(f"{count} containers up after {time.perf_counter() - began:.1f} s", flush=True)
            for scope in ("panel", "all"):
                cluster = Cluster.objects.create(name=f"bench-engine-{count}-{scope}", kind="docker", endpoint="unix:///var/run/docker.sock")
                previous = {"disk": {"at": time.time()}}
                with override_settings(METRICS_DOCKER_STATS_SCOPE=scope, METRICS_DOCKER_STATS_BUDGET=0), driver.engine(cluster) as connection:
                    for round_number in range(2):
                        cpu0, wall0 = time.process_time(), time.perf_counter()
                        until = time.time()
                        observed, calls = driver.observe_engine(connection, previous=previous)
                        if add_container_restarts(connection, observed, previous, until):
                            calls.append("events")
                        stats_calls = add_container_stats(connection, observed, previous=previous)
                        wall_observe, cpu_observe = time.perf_counter() - wall0, time.process_time() - cpu0
                        cpu1, wall1 = time.process_time(), time.perf_counter()
                        written = metrics.record_many(container_samples(cluster, observed))
                        wall_record, cpu_record = time.perf_counter() - wall1, time.process_time() - cpu1
                        observed["probe"] = {"events_until": observed.pop("events_until")}
                        previous = observed
                        running = sum(1 for row in observed["containers"] if row["state"] == "running")
                        rows.append([count, running, scope, round_number + 1, len(calls), stats_calls, len(calls) + stats_calls,
                                     f"{wall_observe:.2f}", f"{cpu_observe:.2f}", written, f"{wall_record:.2f}", f"{cpu_record:.2f}"])
                        print(" | ".join(map(str, rows[-1])), flush=True)
    finally:
        remove_all(client, label)
        left = client.api.containers(all=True, filters={"label": f"filrouge.bench={label}"})
        print(f"bench containers left behind: {len(left)}")
    print_table("One sampling round (round 1 has no events call yet; round 2 reads events and turns counters into rates)",
                ["bench containers", "running on engine", "stats scope", "round", "list+events calls", "stats calls", "API calls", "observe wall s",
                 "observe CPU s", "points written", "record wall s", "record CPU s"], rows)


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


def prometheus_reads(viewers=10):
    from django.core.cache import cache
    from django.test import override_settings

    from clusters.models import Server
    from metrics import prometheus
    from metrics.models import Series
    from tests.support.prometheus import Prometheus

    names = ["filrouge_server_load1", "filrouge_server_reachable", "filrouge_server_memory_available_bytes",
             "filrouge_server_disk_free_bytes", "filrouge_server_disk_used_ratio", "filrouge_container_memory_bytes"]
    server = Server.objects.create(name=f"bench-prom-{uuid.uuid4().hex[:6]}", address="127.0.0.1")
    series = [Series.objects.create(name=name, labels={"server": server.name}, key=f"{server.name}-{name}", object_type="server", object_id=server.pk)
              for name in names]
    charts = [series[0:2], series[2:4], series[4:6]]
    prom = Prometheus("127.0.0.1:9")  # scrapes nothing: the answers are empty, the requests real

    def answered():
        import requests

        text = requests.get(f"{prom.url}/metrics", timeout=10).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query_range"' in line)

    rows = []
    try:
        end = time.time()
        for label, cache_seconds, per_name in (("before: one request per name", 0, True), ("one request per chart, no cache", 0, False),
                                               ("one request per chart, 5 s cache", 5, False)):
            cache.clear()
            before = answered()
            began = time.perf_counter()
            with override_settings(PROMETHEUS_URL=prom.url, PROMETHEUS_CACHE_SECONDS=cache_seconds):
                for _ in range(viewers):
                    for chart in charts:
                        for group in ([[item] for item in chart] if per_name else [chart]):
                            prometheus.read(group, end - 3600, end, 15)
            elapsed = time.perf_counter() - began
            rows.append([label, viewers * len(charts), int(answered() - before), f"{elapsed * 1000 / (viewers * len(charts)):.1f}"])
    finally:
        prom.stop()
        cache.clear()
    print_table(f"Charts from Prometheus: 3 charts of 2 names, {viewers} viewers within one step (1 h at 15 s)",
                ["method", "chart reads", "Prometheus requests", "ms per chart read"], rows)


def main(args):
    """Arguments: parts to run (chart, load, sampling; all by default) and container counts."""
    parts = [arg for arg in args if not arg.isdigit()] or ["chart", "load", "sampling", "prometheus"]
    counts = [int(arg) for arg in args if arg.isdigit()] or [100, 500]
    setup_django(database=os.environ.get("FILROUGE_BENCH_DATABASE", "filrouge_bench_metrics"))
    if "chart" in parts:
        chart_data()
    if "load" in parts:
        load_generator()
    if "sampling" in parts:
        sampling(counts)
    if "prometheus" in parts:
        prometheus_reads()


if __name__ == "__main__":
    main(sys.argv[1:])
