"""What the RQ worker calls: claim the job row, run its kind, record how it ended.

Every way a job can end lands here or in the worker's horse-death hook, so no row is
left `running`: success, a refusal by the work (failed), our bug (errored), cancel,
timeout, and a killed process (lost, from the worker or the reconciler).
"""

import logging
import os
import socket
import time

import django_rq
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from rq.timeouts import JobTimeoutException

from panel.lib.outage import DATABASE_ERRORS, Outage

from .context import JobContext
from .errors import JobCancelled, JobFailed, UnknownJobKind
from .kinds import get_kind
from .models import Job, JobEvent, Status

logger = logging.getLogger("filrouge.jobs")


def claim(job_id, worker_name):
    """queued → running, once: True if `worker_name` now owns the job."""
    now = timezone.now()
    return bool(
        Job.objects.filter(pk=job_id, status=Status.QUEUED).update(
            status=Status.RUNNING, started_at=now, heartbeat_at=now, worker_name=worker_name
        )
    )


def _cancel_flag_redis(job):
    """Redis for the job's cancel flag, or None when it does not answer: a command-line run
    (`manage.py run_recipe`) with no panel running has no Redis, and its cancel requests
    still arrive through the database, which the heartbeat reads."""
    redis = django_rq.get_connection(job.queue)
    try:
        redis.ping()
    except Exception:  # noqa: BLE001 - any failure to reach it means the same: go without
        logger.info("Job %s: Redis does not answer; cancel requests are read from the database only", job.pk)
        return None
    return redis


def execute(job_id):
    worker = os.environ.get("RQ_WORKER_ID") or f"{socket.gethostname()}:{os.getpid()}"
    job = _claim_waiting_for_the_database(job_id, worker)
    if job is None:
        logger.info("Job %s was not queued any more (cancelled or already run); skipping", job_id)
        return
    ctx = JobContext(job, redis=_cancel_flag_redis(job))
    status, error, result = Status.ERRORED, "", None
    ctx.start()
    try:
        kind = get_kind(job.kind)
        result = kind.run(ctx, **job.params)
        status = Status.SUCCEEDED
    except JobCancelled:
        status, error = Status.CANCELLED, _cancel_message(job)
    except JobFailed as exc:
        status, error = Status.FAILED, str(exc)
    except JobTimeoutException:
        status, error = Status.FAILED, f"Timed out after {job.timeout} s (the limit for {job.kind} jobs)."
    except UnknownJobKind as exc:
        status, error = Status.ERRORED, str(exc)
    except Exception as exc:
        logger.exception("Job %s (%s) raised", job.pk, job.kind)
        status, error = Status.ERRORED, f"Internal error ({type(exc).__name__}: {exc}). The panel's logs have the details."
    finally:
        ctx.finish(status, error=error, result=result)


def _claim_waiting_for_the_database(job_id, worker):
    """The job's row if this process owns it now, else None. A job taken from the queue
    while the database is away waits for it (up to JOB_END_PATIENCE) rather than fail."""
    outage = Outage(f"The database (job {job_id}, before it starts)", logger)
    deadline = time.monotonic() + settings.JOB_END_PATIENCE
    while True:
        try:
            close_old_connections()
            # Our worker process claims the row just before it forks us (worker.py), so that
            # "running" is written over its warm database connection; otherwise claim it here.
            owned = claim(job_id, worker) or Job.objects.filter(pk=job_id, status=Status.RUNNING, worker_name=worker, finished_at__isnull=True).exists()
            return Job.objects.select_related("user").get(pk=job_id) if owned else None
        except DATABASE_ERRORS as exc:
            if time.monotonic() > deadline:
                raise
            wait = outage.failed(exc)
            try:
                connection.close()
            except DATABASE_ERRORS:
                pass
            time.sleep(wait)


def _cancel_message(job):
    try:
        job.refresh_from_db(fields=["cancel_requested_by"])
        who = job.cancel_requested_by.username if job.cancel_requested_by else "someone"
    except DATABASE_ERRORS:  # cancelled through Redis while the database is away
        who = "someone"
    return f"Cancelled by {who}."


def end_abandoned(job_id, status, error, only_if=(Status.QUEUED, Status.RUNNING)):
    """Close a job whose process can no longer do it (killed horse, lost worker, cancelled in the queue).

    Only a job whose status is in `only_if` is touched, so a race with the worker
    claiming or finishing it leaves the worker's version standing.
    """
    close_old_connections()
    job = Job.objects.filter(pk=job_id, status__in=only_if).first()
    if job is None:
        return False
    seq = max(job.line_count, JobEvent.objects.filter(job=job).order_by("-seq").values_list("seq", flat=True).first() or 0) + 1
    now = timezone.now()
    with transaction.atomic():  # a reader never sees the final status without the end marker
        updated = Job.objects.filter(pk=job.pk, status=job.status).update(
            status=status, error=error, finished_at=now, line_count=seq
        )
        if updated:
            JobEvent.objects.create(job=job, seq=seq, time=now, text=f"Finished: {status}. {error}", is_end=True)
    return bool(updated)
