"""Series and their points, in two resolution tiers.

Tier 0 holds the samples as the probes took them (every 15 to 60 s) for
METRICS_RAW_RETENTION; tier 1 holds 5-minute averages (with the maximum beside them) for
METRICS_ROLLUP_RETENTION. See docs/operator-guide.md ("Metrics") for the sizes.
"""

from django.db import models
from django.utils import timezone

RAW, ROLLUP = 0, 1
ROLLUP_SECONDS = 300


class Series(models.Model):
    """One metric name with one set of labels, optionally about one object of an app."""

    name = models.CharField(max_length=100)
    labels = models.JSONField(default=dict, blank=True)
    key = models.CharField(max_length=64, unique=True)  # sha1 of name + sorted labels
    object_type = models.CharField(max_length=32, blank=True, default="")
    object_id = models.BigIntegerField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)
    # For counters (CPU seconds, bytes): the last raw reading, to turn the next one into a rate.
    last_counter = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["object_type", "object_id", "name"]), models.Index(fields=["name"])]
        verbose_name_plural = "series"

    def __str__(self):
        labels = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return f"{self.name}{{{labels}}}"


class Point(models.Model):
    id = models.BigAutoField(primary_key=True)
    # No index of its own: the unique constraint's index starts with the series.
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="points", db_index=False)
    tier = models.SmallIntegerField(default=RAW)
    time = models.DateTimeField()
    value = models.FloatField()
    max_value = models.FloatField(null=True, blank=True)

    class Meta:
        # The value rides in the unique index so that a chart's read is an index-only scan
        # (series, tier, time range) that never visits the table. (SQLite has no covering
        # index: migration 0002 gives it a plain unique index instead.)
        constraints = [models.UniqueConstraint(fields=["series", "tier", "time"], include=["value"], name="metrics_point_unique_value")]
        indexes = [models.Index(fields=["tier", "time"])]


class Rollup(models.Model):
    """How far raw points have been rolled up into 5-minute buckets (one row)."""

    tier = models.SmallIntegerField(unique=True)
    until = models.DateTimeField()


HOUR_SECONDS = 3600


class HourChunk(models.Model):
    """One ended hour of a series' raw points, as a chart at the raw step reads it: a derived
    read cache, never the source (the points are). `hour` is the hour's start H; `slots` holds
    the grid slots (H, H + 1 h] at the raw step (slot k is the time H + 15 (k + 1), the end of
    its bucket, as the grid labels it) as packed little-endian float64, NaN where no sample
    fell, and is empty when the hour had no sample at all. Written for hours that have ended
    (metrics.store.seal_hours, and a chart's read when one is missing); deleted when a late
    point lands in its hour and when prune drops its points."""

    id = models.BigAutoField(primary_key=True)
    # No index of its own: the unique constraint's index starts with the series.
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="hour_chunks", db_index=False)
    tier = models.SmallIntegerField(default=RAW)
    hour = models.DateTimeField()
    slots = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "tier", "hour"], name="metrics_hourchunk_unique")]
        indexes = [models.Index(fields=["tier", "hour"])]
