"""The embedded store on real PostgreSQL: rates, rolling up, retention, reading on a grid."""

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.db import connection
from django.test import override_settings

import metrics
from metrics import store
from metrics.models import RAW, ROLLUP, Point, Series

pytestmark = pytest.mark.django_db

INTERVAL = 15
DAY = 86400
RAW_RETENTION = DAY
ROLLUP_RETENTION = 2 * DAY
# The bound the operator guide documents: a day of raw samples (plus the 5-minute bucket not
# rolled up yet and the minute of grace), and one 5-minute average per bucket kept.
RAW_BOUND = RAW_RETENTION // INTERVAL + (300 + 60) // INTERVAL + 1
ROLLUP_BOUND = ROLLUP_RETENTION // 300 + 1


def at(seconds):
    return datetime(2026, 1, 1, tzinfo=dt_timezone.utc) + timedelta(seconds=seconds)


def test_the_tests_run_on_postgresql():
    assert connection.vendor == "postgresql"


def test_a_counter_becomes_a_rate_and_a_restart_gives_no_negative_rate():
    labels = {"container": "web-1"}
    metrics.record("filrouge_container_cpu_cores", 100.0, labels, at=at(0))
    metrics.record("filrouge_container_cpu_cores", 115.0, labels, at=at(30))
    metrics.record("filrouge_container_cpu_cores", 2.0, labels, at=at(60))  # the container restarted
    metrics.record("filrouge_container_cpu_cores", 5.0, labels, at=at(90))

    series = Series.objects.get(name="filrouge_container_cpu_cores")
    assert list(series.points.order_by("time").values_list("value", flat=True)) == [0.5, 0.1]
    assert series.last_value == 0.1 and series.last_counter == 5.0


def test_a_round_of_samples_finds_and_creates_its_series_in_a_few_queries(django_assert_max_num_queries):
    samples = [metrics.Sample("filrouge_container_memory_bytes", 1000 + n, {"container": f"c{n}"}) for n in range(200)]
    with django_assert_max_num_queries(12):
        assert metrics.record_many(samples, at=at(0)) == 200
    with django_assert_max_num_queries(12):
        assert metrics.record_many(samples, at=at(15)) == 200
    assert Series.objects.count() == 200 and Point.objects.count() == 400


@override_settings(METRICS_RAW_RETENTION=RAW_RETENTION, METRICS_ROLLUP_RETENTION=ROLLUP_RETENTION)
def test_after_four_simulated_days_rows_per_series_stay_bounded_and_charts_cover_the_range():
    names = ["filrouge_server_load1", "filrouge_server_memory_available_bytes", "filrouge_server_disk_free_bytes"]
    metrics.record_many([metrics.Sample(name, 0, {"server": "web01"}) for name in names], at=at(-INTERVAL))
    # In the order of `names` (the load first: its values are the plain sawtooth).
    series = sorted(Series.objects.filter(name__in=names), key=lambda s: names.index(s.name))
    days = 4
    hour = 3600
    highest = {"raw": 0, "rollup": 0}
    for start in range(0, days * DAY, hour):
        # An hour of samples every 15 s (written in bulk: the probes' record_many writes the same rows).
        Point.objects.bulk_create([
            Point(series=s, tier=RAW, time=at(t), value=float(t % DAY) / 3600 + index)
            for index, s in enumerate(series) for t in range(start, start + hour, INTERVAL)
        ])
        now = at(start + hour)
        Series.objects.filter(pk__in=[s.pk for s in series]).update(last_at=now)
        store.roll_up(now=now)
        store.prune(now=now)
        for s in series:
            highest["raw"] = max(highest["raw"], s.points.filter(tier=RAW).count())
            highest["rollup"] = max(highest["rollup"], s.points.filter(tier=ROLLUP).count())

    assert highest["raw"] <= RAW_BOUND and highest["rollup"] <= ROLLUP_BOUND, highest
    # Still a full day of raw points and the rolled-up days behind it.
    assert highest["raw"] >= RAW_RETENTION // INTERVAL and highest["rollup"] >= ROLLUP_RETENTION // 300 - 1

    end = at(days * DAY)
    load = next(s for s in series if s.name == "filrouge_server_load1")
    # The last 24 h at a 15 s step comes from the raw points, every step filled.
    from unittest import mock

    with mock.patch("django.utils.timezone.now", return_value=end):
        times, values = store.read([load], (end - timedelta(days=1)).timestamp() + 60, end.timestamp(), 15)
        assert len(times) == 5756 and all(v is not None and v == v for v in values[load.pk][:-4])  # NaN: no sample
        # The whole kept range at an hour's step comes from the 5-minute averages: no hole.
        times, values = store.read([load], (end - timedelta(seconds=ROLLUP_RETENTION)).timestamp() + 600, end.timestamp() - 600, 3600)
    assert len(times) == 48 and all(v is not None for v in values[load.pk])
    # An hour's average of the sawtooth t/3600 within a day is close to the hour's middle.
    some = times[10]
    hour_of_day = ((some - at(0).timestamp()) % DAY) / 3600
    assert abs(values[load.pk][10] - (hour_of_day - 0.5)) < 0.1


def test_rolling_up_twice_changes_nothing():
    for t in range(0, 1200, INTERVAL):
        metrics.record("filrouge_server_load1", t, {"server": "a"}, at=at(t))
    first = store.roll_up(now=at(1200 + 60))
    second = store.roll_up(now=at(1200 + 60))
    assert first == 4 and second == 0
    buckets = list(Point.objects.filter(tier=ROLLUP).order_by("time").values_list("value", "max_value"))
    assert buckets[0] == (sum(range(0, 300, 15)) / 20, 285)
