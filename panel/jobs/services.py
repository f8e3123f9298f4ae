"""Starting, cancelling and retrying jobs: what views, the API and commands call.

The job row is written first; the RQ job is enqueued only once that transaction has
committed (so a worker never picks up a job it cannot read), with the row's id. If Redis
is unreachable at that moment the job is still accepted: it stays `queued` and the
reconciler enqueues it as soon as Redis answers (`job.enqueued` tells the caller).
"""

import logging

import django_rq
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from panel.audit.models import Action
from panel.audit.recorder import record
from panel.lib.outage import REDIS_ERRORS

from .context import cancel_key
from .kinds import get_kind
from .models import Job, Status

logger = logging.getLogger("filrouge.jobs")

class JobStateError(Exception):
    """The job is not in a state that allows this action."""


def start_job(kind_name, params, user, target=None, retry_of=None, idempotency_key=""):
    """Validate parameters, write the job row, and enqueue it after commit.

    `idempotency_key` (unique per user) makes a retried request safe: the caller looks
    for an existing job with it first (`find_idempotent`); two requests racing with the
    same key end in an IntegrityError for the second.
    Raises UnknownJobKind, rest_framework ValidationError, or PermissionDenied.
    """
    kind = get_kind(kind_name)
    if not kind.allowed(user, target):
        raise PermissionDenied(_("Your role does not allow starting %(kind)s jobs.") % {"kind": kind_name})
    cleaned = kind.validate(params, context={"user": user, "target": target})
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind.name,
            queue=kind.queue,
            params=cleaned,
            user=user if getattr(user, "pk", None) else None,
            timeout=kind.timeout,
            target_type=ContentType.objects.get_for_model(target) if target is not None else None,
            target_id=str(target.pk) if target is not None else "",
            target_repr=str(target)[:200] if target is not None else "",
            retry_of=retry_of,
            idempotency_key=idempotency_key or "",
        )
        job.enqueued = False
        transaction.on_commit(lambda: _enqueue_or_leave_queued(job))
    return job


def find_idempotent(user, key):
    """The job this user already started with this Idempotency-Key, or None."""
    if not key or not getattr(user, "pk", None):
        return None
    return Job.objects.filter(user=user, idempotency_key=key).first()


def _enqueue_or_leave_queued(job):
    try:
        enqueue(job)
    except REDIS_ERRORS as exc:
        logger.warning("Job %s stays queued: Redis is unreachable (%s); the reconciler enqueues it when Redis answers", job.pk, exc)
        return
    job.enqueued = True


def enqueue(job):
    queue = django_rq.get_queue(job.queue)
    queue.enqueue_call(
        "panel.jobs.runner.execute",
        args=(job.pk,),
        job_id=job.rq_id,
        timeout=job.timeout,  # raises JobTimeoutException in the job, which the runner reports
        result_ttl=0,
        failure_ttl=24 * 3600,
        description=f"{job.kind} #{job.pk}",
    )


def cancel_job(job, user):
    """Cancel a queued job at once; ask a running one to stop (it does within a few seconds)."""
    job.refresh_from_db()
    if job.is_finished:
        raise JobStateError(_("This job has already finished (%(status)s).") % {"status": job.get_status_display()})
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(cancel_requested_at=now, cancel_requested_by=user)
    from .runner import end_abandoned

    who = getattr(user, "username", "someone")
    before_start = f"Cancelled by {who} before it started."
    if job.status == Status.QUEUED and end_abandoned(job.pk, Status.CANCELLED, before_start, only_if=(Status.QUEUED,)):
        _drop_from_queue(job)
    else:
        try:
            django_rq.get_connection(job.queue).set(cancel_key(job.pk), 1, ex=24 * 3600)
        except Exception:  # the heartbeat's database check still delivers the cancel
            logger.warning("Cannot set the cancel flag of job %s in Redis", job.pk)
    record(Action.CANCEL, job, message=f"Cancel requested for {job}")
    job.refresh_from_db()
    return job


def _drop_from_queue(job):
    from rq.exceptions import NoSuchJobError
    from rq.job import Job as RQJob

    try:
        RQJob.fetch(job.rq_id, connection=django_rq.get_connection(job.queue)).cancel()
    except NoSuchJobError:  # gone already; the runner skips rows that are not queued anyway
        pass
    except REDIS_ERRORS:  # the same: a worker that dequeues it later skips it
        logger.warning("Cannot drop cancelled job %s from the queue: Redis is unreachable", job.pk)


def retry_job(job, user):
    """A new job with the same kind, parameters and target, linked to the old one."""
    if not job.is_finished:
        raise JobStateError(_("Only a finished job can be retried."))
    new_job = start_job(job.kind, job.params, user, target=job.target, retry_of=job)
    record(Action.RETRY, job, message=f"Retried as #{new_job.pk}")
    return new_job
