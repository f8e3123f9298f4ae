"""Keeps the job table honest. Run by the scheduler process itself (not through RQ),
so it still works when every worker is dead or Redis lost its data.

- A running job whose heartbeat stopped (its worker was SIGKILLed, its machine died)
  is marked `lost` with a line that says so.
- A queued job that Redis no longer knows (flushed, restarted without persistence)
  is enqueued again.
"""

import logging
from datetime import timedelta

import django_rq
from django.conf import settings
from django.utils import timezone

from .models import Job, JobEvent, Status
from .runner import end_abandoned
from .services import enqueue

logger = logging.getLogger("filrouge.jobs.reconciler")


def reconcile():
    return {"lost": mark_lost_jobs(), "requeued": requeue_forgotten_jobs()}


def mark_lost_jobs():
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_LOST_AFTER)
    lost = 0
    for job in Job.objects.filter(status=Status.RUNNING, heartbeat_at__lt=cutoff).only("pk", "heartbeat_at", "worker_name"):
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


def requeue_forgotten_jobs():
    cutoff = timezone.now() - timedelta(seconds=settings.RECONCILE_QUEUED_GRACE)
    candidates = list(Job.objects.filter(status=Status.QUEUED, created_at__lt=cutoff).only("pk", "queue", "kind", "timeout", "line_count"))
    if not candidates:
        return 0
    redis = django_rq.get_connection("default")
    with redis.pipeline(transaction=False) as pipe:
        for job in candidates:
            pipe.exists(f"rq:job:{job.rq_id}")
        known = pipe.execute()
    requeued = 0
    for job, exists in zip(candidates, known):
        if exists:
            continue
        seq = job.line_count + 1
        JobEvent.objects.create(job=job, seq=seq, time=timezone.now(), text="Re-enqueued: the queue (Redis) had lost this job.")
        Job.objects.filter(pk=job.pk).update(line_count=seq)
        enqueue(job)
        requeued += 1
        logger.warning("Job %s was queued in the database but unknown to Redis; enqueued again", job.pk)
    return requeued
