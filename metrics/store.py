"""Writing samples, rolling them up, pruning them, and reading them back on a step grid."""

import hashlib
import json
import math
from collections import defaultdict
from datetime import datetime, timedelta, timezone as dt_timezone

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from . import names
from .models import RAW, ROLLUP, ROLLUP_SECONDS, Point, Rollup, Series


class Sample:
    """One reading: `value` for a gauge; for a rate metric (names.RATE), a counter reading
    (CPU seconds, bytes) that the store turns into a per-second rate against the last one."""

    __slots__ = ("name", "value", "labels", "object_type", "object_id")

    def __init__(self, name, value, labels=None, obj=None, object_type="", object_id=None):
        self.name = name
        self.value = float(value)
        self.labels = {str(k): str(v) for k, v in (labels or {}).items()}
        if obj is not None:
            object_type, object_id = object_type_of(obj), obj.pk
        self.object_type, self.object_id = object_type, object_id

    @property
    def key(self):
        return series_key(self.name, self.labels)


def series_key(name, labels):
    return hashlib.sha1(json.dumps([name, sorted(labels.items())]).encode()).hexdigest()


# object type name -> model, filled by the apps (metrics.register_object); the API uses it
# to find the object and check access with its visible_to().
OBJECT_TYPES = {}


def object_type_of(obj):
    for name, model in OBJECT_TYPES.items():
        if isinstance(obj, model):
            return name
    return obj._meta.model_name


def record_many(samples, at=None):
    """Store a round of samples taken at `at` (now by default): one query to find the series,
    one to create the missing ones, one insert for the points, one update per changed series'
    last value. Returns the number of points written."""
    samples = [sample for sample in samples if sample is not None and math.isfinite(sample.value)]
    if not samples:
        return 0
    at = at or timezone.now()
    by_key = {sample.key: sample for sample in samples}
    with transaction.atomic():
        existing = {series.key: series for series in Series.objects.filter(key__in=list(by_key)).select_for_update()}
        missing = [
            Series(name=s.name, labels=s.labels, key=key, object_type=s.object_type, object_id=s.object_id)
            for key, s in by_key.items() if key not in existing
        ]
        if missing:
            Series.objects.bulk_create(missing, ignore_conflicts=True)
            existing.update({series.key: series for series in Series.objects.filter(key__in=[m.key for m in missing])})
        points, changed = [], []
        for key, sample in by_key.items():
            series = existing[key]
            value = sample.value
            if names.kind(sample.name) == names.RATE:
                previous, previous_at = series.last_counter, series.last_at
                series.last_counter = value
                if previous is None or previous_at is None or value < previous or at <= previous_at:
                    # First reading, or the counter restarted (a container restarted): no rate yet.
                    series.last_at = at
                    changed.append(series)
                    continue
                value = (value - previous) / (at - previous_at).total_seconds()
            # Six decimals are more than any chart shows, and keep the answers short.
            value = round(value, 6)
            series.last_value, series.last_at = value, at
            changed.append(series)
            points.append(Point(series=series, tier=RAW, time=at, value=value))
        Point.objects.bulk_create(points, ignore_conflicts=True)
        Series.objects.bulk_update(changed, ["last_value", "last_at", "last_counter"])
    return len(points)


def record(name, value, labels=None, obj=None, at=None):
    """Record one sample (see record_many for a round of them)."""
    return record_many([Sample(name, value, labels, obj=obj)], at=at)


# ---- rolling up and pruning ----------------------------------------------------------------


def _floor(moment, seconds):
    epoch = moment.timestamp()
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=dt_timezone.utc)


def roll_up(now=None, grace=60):
    """Average (and maximum) raw points into 5-minute buckets, from where the last run stopped
    to the last bucket that has ended at least `grace` seconds ago. Re-running is harmless."""
    now = now or timezone.now()
    end = _floor(now - timedelta(seconds=grace), ROLLUP_SECONDS)
    state = Rollup.objects.filter(tier=ROLLUP).first()
    if state is not None:
        start = state.until
    else:
        first = Point.objects.filter(tier=RAW).order_by("time").values_list("time", flat=True).first()
        if first is None:
            return 0
        start = _floor(first, ROLLUP_SECONDS)
    if start >= end:
        return 0
    buckets = defaultdict(lambda: [0.0, 0, -math.inf])
    raw = Point.objects.filter(tier=RAW, time__gte=start, time__lt=end).values_list("series_id", "time", "value")
    for series_id, moment, value in raw.iterator(chunk_size=20000):
        bucket = buckets[(series_id, _floor(moment, ROLLUP_SECONDS))]
        bucket[0] += value
        bucket[1] += 1
        bucket[2] = max(bucket[2], value)
    rows = [
        Point(series_id=series_id, tier=ROLLUP, time=moment, value=total / count, max_value=highest)
        for (series_id, moment), (total, count, highest) in buckets.items()
    ]
    with transaction.atomic():
        Point.objects.bulk_create(rows, batch_size=5000, update_conflicts=True, unique_fields=["series", "tier", "time"], update_fields=["value", "max_value"])
        Rollup.objects.update_or_create(tier=ROLLUP, defaults={"until": end})
    return len(rows)


def prune(now=None):
    """Delete raw points older than METRICS_RAW_RETENTION (only once rolled up), rolled-up points
    older than METRICS_ROLLUP_RETENTION, and series with no point left that stopped reporting."""
    now = now or timezone.now()
    state = Rollup.objects.filter(tier=ROLLUP).first()
    raw_limit = now - timedelta(seconds=settings.METRICS_RAW_RETENTION)
    if state is not None:
        raw_limit = min(raw_limit, state.until)
    else:
        raw_limit = None  # nothing rolled up yet: keep raw points
    deleted = 0
    if raw_limit is not None:
        deleted += Point.objects.filter(tier=RAW, time__lt=raw_limit).delete()[0]
    rollup_limit = now - timedelta(seconds=settings.METRICS_ROLLUP_RETENTION)
    deleted += Point.objects.filter(tier=ROLLUP, time__lt=rollup_limit).delete()[0]
    Series.objects.filter(last_at__lt=rollup_limit).delete()
    return deleted


# ---- reading -------------------------------------------------------------------------------

MIN_SAMPLE_INTERVAL = 15  # seconds: the probes' fastest; a step at most this long averages little


def grid(start, end, step):
    """Step-aligned times after `start` up to the first one at or after `end`: each time T
    stands for the bucket (T - step, T], as PromQL's range functions do. The last bucket is
    the one still filling (a live chart re-asks for it)."""
    if step < 1:
        return []
    first = math.floor(start / step) * step + step
    last = math.ceil(end / step) * step
    return list(range(int(first), int(last) + 1, int(step)))


def read(series_list, start, end, step):
    """{series id: [value or None per grid time]} averaged over each (T - step, T] bucket.

    Raw points serve a range that raw retention still covers and a step under 5 minutes;
    otherwise the 5-minute averages do."""
    times = grid(start, end, step)
    if not times or not series_list:
        return times, {}
    raw_from = timezone.now() - timedelta(seconds=settings.METRICS_RAW_RETENTION)
    tier = RAW if step < ROLLUP_SECONDS and datetime.fromtimestamp(start, tz=dt_timezone.utc) >= raw_from - timedelta(seconds=ROLLUP_SECONDS) else ROLLUP
    low = datetime.fromtimestamp(times[0] - step, tz=dt_timezone.utc)
    high = datetime.fromtimestamp(times[-1], tz=dt_timezone.utc)
    if tier == ROLLUP:
        # A 5-minute bucket labelled B covers [B, B+300): it belongs to the step ending after it.
        low -= timedelta(seconds=ROLLUP_SECONDS)
    ids = [series.pk for series in series_list]
    first = times[0] - step
    values = {pk: [None] * len(times) for pk in ids}
    offset = ROLLUP_SECONDS / 2 if tier == ROLLUP else 0  # a 5-minute bucket counts at its middle
    if connection.vendor == "postgresql":
        # Epochs as float8 (date_part; EXTRACT gives numeric, several times slower) and, for
        # steps longer than the samples', the averaging in SQL: one row per series and step.
        size = len(times)
        with connection.cursor() as cursor:
            if step > MIN_SAMPLE_INTERVAL or tier == ROLLUP:
                cursor.execute(
                    """
                    SELECT series_id, CEIL((date_part('epoch', time) + %s - %s) / %s)::int - 1, AVG(value)
                    FROM metrics_point
                    WHERE series_id = ANY(%s) AND tier = %s AND time > %s AND time <= %s
                    GROUP BY 1, 2
                    """,
                    [offset, first, step, ids, tier, low, high],
                )
                for series_id, index, average in cursor.fetchall():
                    if 0 <= index < size:
                        values[series_id][index] = round(average, 6)
                return times, values
        # A step as short as the samples': each series' points come back as two arrays (grid
        # index, value) in one row, in PostgreSQL's binary format (no text to parse), read
        # from the unique index alone (it carries the value). Python only places them.
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as raw_cursor:
            raw_cursor.execute(
                """
                SELECT series_id, array_agg(CEIL((date_part('epoch', time) - %s) / %s)::int4 - 1), array_agg(value)
                FROM metrics_point
                WHERE series_id = ANY(%s) AND tier = %s AND time > %s AND time <= %s
                GROUP BY series_id
                """,
                [float(first), float(step), ids, tier, low, high],
                binary=True,
            )
            rows = raw_cursor.fetchall()
        for series_id, indexes, points in rows:
            line = values[series_id]
            counts = None
            for index, value in zip(indexes, points):
                if not 0 <= index < size:
                    continue
                if line[index] is None:
                    line[index] = value
                    continue
                # Two samples in one step (a probe ran early): average them.
                counts = counts or {}
                seen = counts.get(index, 1)
                line[index] = (line[index] * seen + value) / (seen + 1)
                counts[index] = seen + 1
        return times, values
    sums = {pk: [0.0] * len(times) for pk in ids}
    counts = {pk: [0] * len(times) for pk in ids}
    rows = Point.objects.filter(series_id__in=ids, tier=tier, time__gt=low, time__lte=high).values_list("series_id", "time", "value")
    for series_id, moment, value in rows.iterator(chunk_size=20000):
        index = math.ceil((moment.timestamp() + offset - first) / step) - 1
        if 0 <= index < len(times):
            sums[series_id][index] += value
            counts[series_id][index] += 1
    for pk in ids:
        values[pk] = [round(s / c, 6) if c else None for s, c in zip(sums[pk], counts[pk])]
    return times, values
