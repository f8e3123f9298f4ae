"""Hour chunks: the ended hours of raw points packed per series, read by charts at the raw step.
They are a cache: every answer must be the one the points give (gaps, two samples in one slot,
a late point, pruning), on PostgreSQL and on SQLite (make run's default)."""

import json
import math
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path
from unittest import mock

import orjson
import pytest
from django.db import connection
from django.utils import timezone

import metrics
from metrics import store
from metrics.models import RAW, HourChunk, Point, Series

pytestmark = pytest.mark.django_db

HOUR = 3600
ORIGIN = datetime(2026, 1, 1, tzinfo=dt_timezone.utc)
NOW = ORIGIN + timedelta(seconds=4 * HOUR + 1000)  # 16 min into hour 4: hours 0-3 have ended


def at(seconds):
    return ORIGIN + timedelta(seconds=seconds)


def as_json(values):
    """What the API sends: orjson writes None and NaN as null."""
    return orjson.loads(orjson.dumps(values, option=orjson.OPT_NON_STR_KEYS))


def same_answers_scenario():
    """Runs on the database Django is set up with (PostgreSQL in the test run, SQLite in a child
    process); raises AssertionError on the first difference."""
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        steady = Series.objects.create(name="filrouge_server_load1", labels={"server": "a"}, key=store.series_key("filrouge_server_load1", {"server": "a"}), last_at=NOW)
        sparse = Series.objects.create(name="filrouge_server_load1", labels={"server": "b"}, key=store.series_key("filrouge_server_load1", {"server": "b"}), last_at=NOW)
        silent = Series.objects.create(name="filrouge_server_load1", labels={"server": "c"}, key=store.series_key("filrouge_server_load1", {"server": "c"}))
        rows = []
        for t in range(7, 4 * HOUR + 1000, 15):
            if not HOUR + 600 <= t < HOUR + 1200:  # a 10-minute gap in hour 1
                rows.append(Point(series=steady, tier=RAW, time=at(t), value=round(t / 100, 6)))
        for t in range(15, 4 * HOUR + 990, 30):  # every other slot
            if not 2 * HOUR < t <= 3 * HOUR:  # hour 2 has no sample at all (an empty chunk)
                rows.append(Point(series=sparse, tier=RAW, time=at(t), value=float(t % 97)))
        Point.objects.bulk_create(rows)
        # Two samples in one slot (a probe ran early), and one on the hour exactly: (H - 15, H]
        # is the last slot of the hour before.
        metrics.record_many([metrics.Sample("filrouge_server_load1", 0.25, {"server": "a"})], at=at(2 * HOUR + 99))
        metrics.record_many([metrics.Sample("filrouge_server_load1", 7.5, {"server": "b"})], at=at(HOUR))
        series = [steady, sparse, silent]
        start, end = at(0).timestamp(), NOW.timestamp()

        times, points = store.read(series, start, end, 15, chunks=False)
        assert HourChunk.objects.count() == 0
        _, chunked = store.read(series, start, end, 15, chunks=True)
        # The four ended hours of each series were written by the read.
        assert HourChunk.objects.count() == 12
        assert len(HourChunk.objects.get(series=sparse, hour=at(2 * HOUR)).slots) == 0
        assert as_json(chunked) == as_json(points)
        slot = {int(t - ORIGIN.timestamp()): index for index, t in enumerate(times)}  # seconds after ORIGIN -> index
        assert points[steady.pk][slot[2 * HOUR + 105]] == (round((2 * HOUR + 97) / 100, 6) + 0.25) / 2
        assert chunked[sparse.pk][slot[HOUR]] == 7.5 and chunked[sparse.pk][slot[HOUR - 15]] is not None
        assert math.isnan(chunked[sparse.pk][slot[HOUR + 30]]) and points[sparse.pk][slot[HOUR + 30]] is None
        assert chunked[silent.pk] == [None] * len(times)  # "no points" stays None for the API's empty_reason
        assert as_json(chunked[steady.pk][slot[HOUR + 615]:slot[HOUR + 1200]]) == [None] * 39

        # A second read serves the ended hours from the chunks: a point changed behind the
        # store's back (no record_many) shows only in the points' answer.
        Point.objects.filter(series=steady, time=at(HOUR + 7)).update(value=-1.0)
        _, cached = store.read(series, start, end, 15)
        assert cached[steady.pk][slot[HOUR + 15]] == round((HOUR + 7) / 100, 6)
        assert store.read(series, start, end, 15, chunks=False)[1][steady.pk][slot[HOUR + 15]] == -1.0
        Point.objects.filter(series=steady, time=at(HOUR + 7)).update(value=round((HOUR + 7) / 100, 6))

        # A late sample for an ended hour drops that hour's chunk only; the next read rewrites it.
        metrics.record_many([metrics.Sample("filrouge_server_load1", 99.0, {"server": "a"})], at=at(HOUR + 900))
        assert not HourChunk.objects.filter(series=steady, hour=at(HOUR)).exists() and HourChunk.objects.count() == 11
        _, chunked = store.read(series, start, end, 15)
        assert chunked[steady.pk][slot[HOUR + 900]] == 99.0 and HourChunk.objects.count() == 12
        assert as_json(chunked) == as_json(store.read(series, start, end, 15, chunks=False)[1])

        # A range that starts and ends inside hours (the first and last chunks are cut).
        inner = store.read(series, at(HOUR + 1234).timestamp(), at(3 * HOUR + 77).timestamp(), 15)
        assert as_json(inner) == as_json(store.read(series, at(HOUR + 1234).timestamp(), at(3 * HOUR + 77).timestamp(), 15, chunks=False))

        # The periodic job writes what is missing, for the series that report, once.
        HourChunk.objects.all().delete()
        assert store.seal_hours() == 8 and store.seal_hours() == 0
        assert as_json(store.read(series, start, end, 15)) == as_json(store.read(series, start, end, 15, chunks=False))

    # Pruning a day later drops the chunks whose hour lost points with the raw points.
    store.roll_up(now=NOW)
    store.prune(now=at(86400 + 2 * HOUR + 10))
    assert sorted(HourChunk.objects.values_list("hour", flat=True).distinct()) == [at(3 * HOUR)]
    assert not Point.objects.filter(tier=RAW, time__lt=at(2 * HOUR + 10)).exists()


def test_the_tests_run_on_postgresql():
    assert connection.vendor == "postgresql"


def test_hour_chunks_give_the_points_answer_with_gaps_late_points_and_pruning():
    same_answers_scenario()


def test_hour_chunks_give_the_same_answers_on_sqlite(tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=f"sqlite:///{tmp_path / 'panel.sqlite3'}",
               REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"), PYTHONPATH=str(root))
    code = (
        "import django; django.setup()\n"
        "from django.core.management import call_command; from django.db import connection\n"
        "call_command('migrate', verbosity=0); assert connection.vendor == 'sqlite'\n"
        "from tests.metrics.test_hour_chunks import same_answers_scenario; same_answers_scenario(); print('same answers')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "same answers" in result.stdout, result.stdout[-2000:] + result.stderr[-4000:]


def test_the_api_answer_is_the_same_with_and_without_hour_chunks(bob, monkeypatch):
    from clusters.models import Server
    from metrics import jobs
    from tests.fixtures.actors import api_client

    server = Server.objects.create(name="web01", address="127.0.0.1")
    now = time.time()
    begin = now - 3 * HOUR
    samples = []
    for n, t in enumerate(range(int(begin), int(now), 15)):
        if n % 50 == 7:
            continue  # a missed round now and then
        moment = datetime.fromtimestamp(t, tz=dt_timezone.utc)
        samples.append(Point(tier=RAW, time=moment, value=round(n / 7, 6)))
    load = Series.objects.create(name="filrouge_server_load1", labels={"server": "web01"}, key="api-load", object_type="server", object_id=server.pk, last_at=timezone.now())
    memory = Series.objects.create(name="filrouge_server_memory_available_bytes", labels={"server": "web01"}, key="api-memory", object_type="server", object_id=server.pk, last_at=timezone.now())
    Point.objects.bulk_create([Point(series=s, tier=RAW, time=p.time, value=p.value * (index + 1)) for index, s in enumerate([load, memory]) for p in samples])
    metrics.record("filrouge_server_load1", 0.5, {"server": "web01"}, obj=server, at=datetime.fromtimestamp(begin + 3001, tz=dt_timezone.utc))
    query = {"object_type": "server", "object_id": server.pk, "start": begin - 60, "end": now, "step": 15}

    monkeypatch.setattr(store, "READ_HOUR_CHUNKS", False)
    from_points = api_client(bob).get("/api/metrics/", query)
    assert HourChunk.objects.count() == 0
    monkeypatch.setattr(store, "READ_HOUR_CHUNKS", True)
    assert jobs.maintain_metrics()["sealed"] >= 4  # two series, two or three ended hours each
    from_chunks = api_client(bob).get("/api/metrics/", query, HTTP_ACCEPT_ENCODING="gzip")

    assert from_points.status_code == 200 and from_chunks.status_code == 200
    assert from_chunks["Content-Encoding"] == "gzip" and from_chunks["Content-Type"] == "application/json"
    import gzip

    assert gzip.decompress(from_chunks.content) == from_points.content
    body = json.loads(from_points.content)
    assert body["empty_reason"] == "" and {s["name"] for s in body["series"]} == {load.name, memory.name}
    values = body["series"][0]["values"]
    assert None in values and sum(v is not None for v in values) > 600
