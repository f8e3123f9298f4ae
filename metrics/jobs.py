"""Periodic work of the metrics app: the job engine's figures, and rolling up / pruning / sealing points."""

import logging
from datetime import timedelta

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F
from django.utils import timezone

from panel.health import checks
from panel.jobs.models import Job, Status
from panel.jobs.periodic import every

from . import store

logger = logging.getLogger("filrouge.metrics")

JOBS_INTERVAL = 15
MAINTENANCE_INTERVAL = 300


def job_samples(now, window=JOBS_INTERVAL):
    """Queue depth (Job rows waiting), running jobs, workers alive, and the average duration
    by kind of the jobs that finished in the last `window` seconds."""
    counts = dict(Job.objects.filter(status__in=[Status.QUEUED, Status.RUNNING]).values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    samples = [
        store.Sample("filrouge_jobs_queued", counts.get(Status.QUEUED, 0), object_type="jobs"),
        store.Sample("filrouge_jobs_running", counts.get(Status.RUNNING, 0), object_type="jobs"),
    ]
    try:
        samples.append(store.Sample("filrouge_workers", checks.check_workers()["alive"], object_type="jobs"))
    except Exception as exc:  # Redis away: the other figures still count
        logger.warning("Cannot count workers: %s", exc)
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    finished = (
        Job.objects.filter(finished_at__gt=now - timedelta(seconds=window), started_at__isnull=False)
        .annotate(duration=duration).values("kind").annotate(average=Avg("duration"))
    )
    for row in finished:
        if row["average"] is not None:
            samples.append(store.Sample("filrouge_job_duration_seconds_avg", row["average"].total_seconds(), {"kind": row["kind"]}, object_type="jobs"))
    return samples


@every(JOBS_INTERVAL, queue="high", timeout=60)
def sample_jobs():
    """Periodic: the job engine's figures (read from panel.jobs; the core does not know metrics)."""
    now = timezone.now()
    return store.record_many(job_samples(now), at=now)


@every(MAINTENANCE_INTERVAL, queue="low", timeout=600)
def maintain_metrics():
    """Periodic: roll raw points up into 5-minute averages, prune what retention drops, and seal
    the hours that ended into hour chunks (what charts at the raw step read)."""
    rolled = store.roll_up()
    pruned = store.prune()
    sealed = store.seal_hours()
    return {"rolled_up": rolled, "pruned": pruned, "sealed": sealed}
