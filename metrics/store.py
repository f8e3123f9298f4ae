"""Writing samples, rolling them up, pruning them, and reading them back on a step grid."""

import hashlib
import json
import math
import sys
from array import array
from collections import defaultdict
from datetime import datetime, timedelta, timezone as dt_timezone

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from . import names
from .models import HOUR_SECONDS, RAW, ROLLUP, ROLLUP_SECONDS, HourChunk, Point, Rollup, Series


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
        # Locked in id order, as seal_hours' builder locks them: two writers, or a writer and a
        # builder, never wait on each other in a cycle.
        existing = {series.key: series for series in Series.objects.filter(key__in=list(by_key)).order_by("pk").select_for_update()}
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
        if points:
            _forget_sealed_hour([point.series_id for point in points], at)
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
        # A chunk holds (hour, hour + 1 h]: one that starts before the limit lost points.
        HourChunk.objects.filter(tier=RAW, hour__lt=raw_limit).delete()
    rollup_limit = now - timedelta(seconds=settings.METRICS_ROLLUP_RETENTION)
    deleted += Point.objects.filter(tier=ROLLUP, time__lt=rollup_limit).delete()[0]
    Series.objects.filter(last_at__lt=rollup_limit).delete()
    return deleted


# ---- reading -------------------------------------------------------------------------------

MIN_SAMPLE_INTERVAL = 15  # seconds: the probes' fastest; a step at most this long averages little
# Whether read serves the raw step's ended hours from hour chunks (benchmarks turn it off to
# compare; the answer is the same either way).
READ_HOUR_CHUNKS = True


def grid(start, end, step):
    """Step-aligned times after `start` up to the first one at or after `end`: each time T
    stands for the bucket (T - step, T], as PromQL's range functions do. The last bucket is
    the one still filling (a live chart re-asks for it)."""
    if step < 1:
        return []
    first = math.floor(start / step) * step + step
    last = math.ceil(end / step) * step
    return list(range(int(first), int(last) + 1, int(step)))


def read(series_list, start, end, step, chunks=None):
    """{series id: [value per grid time]} averaged over each (T - step, T] bucket; a time with no
    sample is None, or NaN in the hours read from hour chunks (JSON null either way).

    Raw points serve a range that raw retention still covers and a step under 5 minutes;
    otherwise the 5-minute averages do. At the raw step (15 s), the hours that have ended come
    from their hour chunks (written here when missing) and only the last hour from the points;
    `chunks=False` reads every point (the same answer, slower)."""
    chunks = READ_HOUR_CHUNKS if chunks is None else chunks
    times = grid(start, end, step)
    if not times or not series_list:
        return times, {}
    now = timezone.now()
    raw_from = now - timedelta(seconds=settings.METRICS_RAW_RETENTION)
    tier = RAW if step < ROLLUP_SECONDS and datetime.fromtimestamp(start, tz=dt_timezone.utc) >= raw_from - timedelta(seconds=ROLLUP_SECONDS) else ROLLUP
    ids = [series.pk for series in series_list]
    first = times[0] - step
    if tier == RAW and step <= MIN_SAMPLE_INTERVAL:
        values = _read_chunked(ids, times, now) if chunks and step == CHUNK_STEP else None
        if values is None:
            slots = _raw_slots(ids, first, len(times), step)
            values = {pk: slots.get(pk) or [None] * len(times) for pk in ids}
        return times, values
    low = datetime.fromtimestamp(first, tz=dt_timezone.utc)
    high = datetime.fromtimestamp(times[-1], tz=dt_timezone.utc)
    if tier == ROLLUP:
        # A 5-minute bucket labelled B covers [B, B+300): it belongs to the step ending after it.
        low -= timedelta(seconds=ROLLUP_SECONDS)
    values = {pk: [None] * len(times) for pk in ids}
    offset = ROLLUP_SECONDS / 2 if tier == ROLLUP else 0  # a 5-minute bucket counts at its middle
    if connection.vendor == "postgresql":
        # Epochs as float8 (date_part; EXTRACT gives numeric, several times slower) and the
        # averaging in SQL: one row per series and step.
        size = len(times)
        with connection.cursor() as cursor:
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
    return times, _averaged_in_python(ids, tier, first, len(times), step, low, high, offset)


def _averaged_in_python(ids, tier, first, size, step, low, high, offset=0):
    """{series id: [average or None per slot]}: the points of (low, high] bucketed in Python
    (SQLite)."""
    sums = {pk: [0.0] * size for pk in ids}
    counts = {pk: [0] * size for pk in ids}
    rows = Point.objects.filter(series_id__in=ids, tier=tier, time__gt=low, time__lte=high).values_list("series_id", "time", "value")
    for series_id, moment, value in rows.iterator(chunk_size=20000):
        index = math.ceil((moment.timestamp() + offset - first) / step) - 1
        if 0 <= index < size:
            sums[series_id][index] += value
            counts[series_id][index] += 1
    return {pk: [round(s / c, 6) if c else None for s, c in zip(sums[pk], counts[pk])] for pk in ids}


def _raw_slots(ids, first, size, step):
    """{series id: [value or None per slot]} for the raw points of (first, first + size * step],
    one slot per step; two samples in one slot (a probe ran early) are averaged. Series with no
    point in the range are left out."""
    low = datetime.fromtimestamp(first, tz=dt_timezone.utc)
    high = datetime.fromtimestamp(first + size * step, tz=dt_timezone.utc)
    if connection.vendor != "postgresql":
        values = _averaged_in_python(ids, RAW, first, size, step, low, high)
        return {pk: line for pk, line in values.items() if any(value is not None for value in line)}
    # Each series' points come back as two arrays (grid index, value) in one row, in
    # PostgreSQL's binary format (no text to parse), read from the unique index alone (it
    # carries the value). Python only places them.
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as raw_cursor:
        raw_cursor.execute(
            """
            SELECT series_id, array_agg(CEIL((date_part('epoch', time) - %s) / %s)::int4 - 1), array_agg(value)
            FROM metrics_point
            WHERE series_id = ANY(%s) AND tier = %s AND time > %s AND time <= %s
            GROUP BY series_id
            """,
            [float(first), float(step), ids, RAW, low, high],
            binary=True,
        )
        rows = raw_cursor.fetchall()
    values = {}
    for series_id, indexes, points in rows:
        line = values[series_id] = [None] * size
        counts = None
        for index, value in zip(indexes, points):
            if not 0 <= index < size:
                continue
            if line[index] is None:
                line[index] = value
                continue
            # Two samples in one step: average them.
            counts = counts or {}
            seen = counts.get(index, 1)
            line[index] = (line[index] * seen + value) / (seen + 1)
            counts[index] = seen + 1
    return values


# ---- hour chunks: the hours that ended, ready to read ---------------------------------------
# A day at 15 s is 5,760 points per series: read as rows and placed in Python, 50 series cost
# over 100 ms. An hour that has ended no longer changes (but for a late point, which drops its
# chunk), so its slots are kept packed in one HourChunk row and read back with C speed
# (array.frombytes); only the hour still filling is read from the points.

CHUNK_STEP = MIN_SAMPLE_INTERVAL
CHUNK_SLOTS = HOUR_SECONDS // CHUNK_STEP
CHUNK_BYTES = CHUNK_SLOTS * 8
# An hour is sealed this long after its end: a probe's round may write its samples a little
# after it took them. A point that comes later still drops the chunk (record_many).
SEAL_GRACE = 120
_NAN = float("nan")
_EMPTY_HOUR = array("d", [_NAN]) * CHUNK_SLOTS
_LITTLE_ENDIAN = sys.byteorder == "little"


def _chunk_hour(epoch):
    """The start H of the chunk that holds a point at `epoch`: chunks hold (H, H + 1 h], as the
    grid labels a bucket by its end."""
    return math.ceil(epoch / HOUR_SECONDS) * HOUR_SECONDS - HOUR_SECONDS


def sealed_until(now):
    """Epoch: the hours that end at or before it are sealed (they get chunks)."""
    return math.floor((now.timestamp() - SEAL_GRACE) / HOUR_SECONDS) * HOUR_SECONDS


def _utc(epoch):
    return datetime.fromtimestamp(epoch, tz=dt_timezone.utc)


def _forget_sealed_hour(series_ids, at):
    """A point written for an hour that has ended (a late sample): its chunk, if any, is stale."""
    hour = _chunk_hour(at.timestamp())
    if hour + HOUR_SECONDS <= timezone.now().timestamp():
        HourChunk.objects.filter(series_id__in=series_ids, tier=RAW, hour=_utc(hour)).delete()


def _pack(line):
    if all(value is None for value in line):
        return b""
    packed = array("d", [_NAN if value is None else value for value in line])
    if not _LITTLE_ENDIAN:
        packed.byteswap()
    return packed.tobytes()


def _unpack_into(target, data):
    if not data:
        target.extend(_EMPTY_HOUR)
    elif _LITTLE_ENDIAN:
        target.frombytes(data)
    else:
        part = array("d")
        part.frombytes(data)
        part.byteswap()
        target.extend(part)


def build_chunks(pairs):
    """Write the chunks of these (series id, hour start epoch) pairs from their points, in one
    transaction per run of consecutive hours; returns {pair: packed values}."""
    by_hour = defaultdict(list)
    for series_id, hour in pairs:
        by_hour[hour].append(series_id)
    built = {}
    run = []
    for hour in sorted(by_hour) + [None]:
        if run and (hour is None or hour != run[-1] + HOUR_SECONDS):
            built.update(_build_run(run, by_hour))
            run = []
        if hour is not None:
            run.append(hour)
    return built


def _build_run(hours, by_hour):
    ids = sorted({series_id for hour in hours for series_id in by_hour[hour]})
    begin = hours[0]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # record_many holds its series' rows (FOR UPDATE) while it writes a late point and
            # drops that hour's chunk: waiting for it here means the points read below include
            # that point, and a writer that comes after waits until this chunk is written (and
            # then drops it). Locked in id order, as record_many does: no deadlock.
            with connection.cursor() as cursor:
                cursor.execute("SELECT id FROM metrics_series WHERE id = ANY(%s) ORDER BY id FOR SHARE", [ids])
        lines = _raw_slots(ids, begin, len(hours) * CHUNK_SLOTS, CHUNK_STEP)
        built = {}
        for hour in hours:
            offset = (hour - begin) // CHUNK_STEP
            for series_id in by_hour[hour]:
                line = lines.get(series_id)
                built[(series_id, hour)] = _pack(line[offset:offset + CHUNK_SLOTS]) if line else b""
        HourChunk.objects.bulk_create(
            [HourChunk(series_id=series_id, tier=RAW, hour=_utc(hour), slots=data) for (series_id, hour), data in built.items()],
            batch_size=500, update_conflicts=True, unique_fields=["series", "tier", "hour"], update_fields=["slots"],
        )
    return built


def _stored_chunks(ids, begin, stop):
    """{(series id, hour start epoch): packed slots} of the chunks stored for [begin, stop)."""
    if connection.vendor == "postgresql":
        # Binary format: the bytea arrives as bytes and the hour as an integer, nothing to parse.
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as raw_cursor:
            raw_cursor.execute(
                """
                SELECT series_id, date_part('epoch', hour)::int8, slots FROM metrics_hourchunk
                WHERE series_id = ANY(%s) AND tier = %s AND hour >= %s AND hour < %s
                """,
                [ids, RAW, _utc(begin), _utc(stop)],
                binary=True,
            )
            rows = raw_cursor.fetchall()
    else:
        rows = [
            (series_id, int(hour.timestamp()), bytes(data))
            for series_id, hour, data in HourChunk.objects.filter(series_id__in=ids, tier=RAW, hour__gte=_utc(begin), hour__lt=_utc(stop)).values_list("series_id", "hour", "slots")
        ]
    # Another length was written at another step: left out, so rebuilt.
    return {(series_id, hour): data for series_id, hour, data in rows if len(data) in (0, CHUNK_BYTES)}


def _read_chunked(ids, times, now):
    """The raw tier at the raw step: ended hours from their chunks (written when missing), the
    rest from the points. None when the range has no sealed hour.

    A slot with no sample is NaN here, not None (orjson writes both as null): turning a day of
    NaN into None would cost more than the rest of the read. A series with no value at all in
    the range is all None, as the other paths answer it."""
    step, size = CHUNK_STEP, len(times)
    first, last = times[0] - step, times[-1]
    begin = math.floor(first / HOUR_SECONDS) * HOUR_SECONDS
    stop = min(sealed_until(now), math.ceil(last / HOUR_SECONDS) * HOUR_SECONDS)
    if stop <= begin:
        return None
    hours = range(begin, stop, HOUR_SECONDS)
    stored = _stored_chunks(ids, begin, stop)
    missing = [(series_id, hour) for series_id in ids for hour in hours if (series_id, hour) not in stored]
    if missing:
        stored.update(build_chunks(missing))
    offset = (first - begin) // step
    tail_size = max(0, (last - stop) // step)
    tail = _raw_slots(ids, stop, tail_size, step) if tail_size else {}
    values = {}
    for series_id in ids:
        line = array("d")
        for hour in hours:
            _unpack_into(line, stored[(series_id, hour)])
        part = line[offset:offset + size]
        tail_line = tail.get(series_id)
        if tail_line is None and not any(value == value for value in part):
            values[series_id] = [None] * size
            continue
        placed = part.tolist()
        if tail_size:
            placed.extend(tail_line or [None] * tail_size)
        values[series_id] = placed
    return values


def seal_hours(now=None, batch=50):
    """Write the missing chunks of the hours that have ended and that raw retention keeps, for
    the series that reported since (maintain_metrics, every 5 minutes; a chart's read writes
    those it still misses). Returns the number written."""
    now = now or timezone.now()
    stop = sealed_until(now)
    begin = math.ceil((now.timestamp() - settings.METRICS_RAW_RETENTION) / HOUR_SECONDS) * HOUR_SECONDS
    oldest = Point.objects.filter(tier=RAW).order_by("time").values_list("time", flat=True).first()
    if oldest is None:
        return 0
    begin = max(begin, _chunk_hour(oldest.timestamp()))
    if stop <= begin:
        return 0
    ids = list(Series.objects.filter(last_at__gt=_utc(begin)).order_by("pk").values_list("pk", flat=True))
    written = 0
    for index in range(0, len(ids), batch):
        part = ids[index:index + batch]
        have = {
            (series_id, int(hour.timestamp()))
            for series_id, hour in HourChunk.objects.filter(series_id__in=part, tier=RAW, hour__gte=_utc(begin), hour__lt=_utc(stop)).values_list("series_id", "hour")
        }
        missing = [(series_id, hour) for series_id in part for hour in range(begin, stop, HOUR_SECONDS) if (series_id, hour) not in have]
        written += len(build_chunks(missing))
    return written
