"""Keeps the job table honest. Run by the scheduler process itself (not through RQ),
so it still works when every worker is dead or Redis lost its data.

- A running job whose heartbeat stopped (its worker was SIGKILLed, its machine died)
  is marked `lost` with a line that says so. A job beats in two places: its row (every
  JOB_HEARTBEAT_INTERVAL) and a Redis key that expires after JOB_LOST_AFTER. While the
  database was away the row's beat is old but the Redis one is fresh: such a job is alive
  and left alone. Without Redis, the row alone decides.
- A queued job that Redis no longer knows (flushed, restarted without persistence, or
  unreachable when the job was created) is enqueued.
"""

import logging
from datetime import timedelta

import django_rq
from django.conf import settings
from django.utils import timezone

from panel.lib.outage import REDIS_ERRORS

from .context import alive_key
from .models import Job, JobEvent, Status
from .runner import end_abandoned
from .services import enqueue

logger = logging.getLogger("filrouge.jobs.reconciler")

ENDED_IN_RQ = {"finished", "failed", "stopped", "canceled"}


def reconcile():
    return {"lost": mark_lost_jobs(), "requeued": requeue_forgotten_jobs()}


def mark_lost_jobs():
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_LOST_AFTER)
    lost = 0
    silent = list(Job.objects.filter(status=Status.RUNNING, heartbeat_at__lt=cutoff).only("pk", "heartbeat_at", "worker_name"))
    for job in _without_a_live_process(silent):
        silent_for = (timezone.now() - job.heartbeat_at).total_seconds()
        message = (
            f"Lost: no heartbeat from worker {job.worker_name or '?'} for {silent_for:.0f} s; "
            "the worker died or was killed while running this job. It may have stopped midway: "
            "check its target before retrying."
        )
        if end_abandoned(job.pk, Status.LOST, message):
            logger.warning("Job %s marked lost (%s)", job.pk, message)
            lost += 1
    return lost


def _without_a_live_process(jobs):
    """The jobs whose process has not beaten in Redis lately either."""
    if not jobs:
        return []
    try:
        with django_rq.get_connection("default").pipeline(transaction=False) as pipe:
            for job in jobs:
                pipe.exists(alive_key(job.pk))
            alive = pipe.execute()
    except REDIS_ERRORS:
        return jobs  # Redis is away: the database's heartbeat is all we know
    return [job for job, beating in zip(jobs, alive) if not beating]


def requeue_forgotten_jobs():
    cutoff = timezone.now() - timedelta(seconds=settings.RECONCILE_QUEUED_GRACE)
    candidates = list(Job.objects.filter(status=Status.QUEUED, created_at__lt=cutoff).only("pk", "queue", "kind", "timeout", "line_count"))
    if not candidates:
        return 0
    redis = django_rq.get_connection("default")
    with redis.pipeline(transaction=False) as pipe:
        for job in candidates:
            pipe.hget(f"rq:job:{job.rq_id}", "status")
        rq_statuses = pipe.execute()
    requeued = 0
    for job, rq_status in zip(candidates, rq_statuses):
        # Unknown to Redis, or ended there without the row ever being claimed (its
        # process could not reach the database): either way it will not run unless enqueued.
        if rq_status is not None and rq_status.decode() not in ENDED_IN_RQ:
            continue
        seq = job.line_count + 1
        JobEvent.objects.create(job=job, seq=seq, time=timezone.now(), text="Re-enqueued: the queue (Redis) had lost this job or was unreachable when it was created.")
        Job.objects.filter(pk=job.pk).update(line_count=seq)
        enqueue(job)
        requeued += 1
        logger.warning("Job %s was queued in the database but unknown to Redis; enqueued again", job.pk)
    return requeued
