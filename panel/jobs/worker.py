"""The RQ worker class the panel runs (`manage.py rqworker --worker-class panel.jobs.worker.Worker`).

RQ forks a "horse" per job. When the horse dies without finishing (killed, out of
memory, stopped by RQ's own hard timeout) the parent notices; this class turns that
into a final status on the job row at once instead of waiting for the reconciler.
"""

import logging
import os
import signal

from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone
from rq.worker import Worker as RQWorker

from .models import Job, Status
from .runner import claim, end_abandoned

logger = logging.getLogger("filrouge.jobs")


def job_pk_from_rq_id(rq_id):
    prefix = "filrouge-job-"
    return int(rq_id[len(prefix):]) if rq_id and rq_id.startswith(prefix) else None


_inherited_connections = []


def forget_inherited_connections():
    """In a freshly forked horse: leave the parent's database sockets alone.

    The horse opens its own connections. The inherited ones are kept referenced (never
    closed nor garbage-collected, which would end the parent's session) until the horse
    leaves through os._exit, which runs no finalizers.
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            _inherited_connections.append(connection.connection)
            connection.connection = None


os.register_at_fork(after_in_child=forget_inherited_connections)


class Worker(RQWorker):
    def execute_job(self, job, queue):
        # Claim the row before forking, over this process's warm connection: the job
        # says "running" a fork and a database connect sooner.
        job_pk = job_pk_from_rq_id(job.id)
        if job_pk is not None:
            try:
                close_old_connections()
                claim(job_pk, self.name)
            except DatabaseError:
                logger.warning("Could not claim job %s before forking; its horse will", job_pk)
        super().execute_job(job, queue)

    def handle_work_horse_killed(self, job, retpid, ret_val, rusage):
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        job_pk = job_pk_from_rq_id(job.id)
        if job_pk is None:
            return
        try:
            row = Job.objects.filter(pk=job_pk).only("status", "cancel_requested_at", "timeout", "started_at").first()
            if row is None or row.status not in (Status.QUEUED, Status.RUNNING):
                return
            if row.cancel_requested_at is not None:
                end_abandoned(job_pk, Status.CANCELLED, "Cancelled; the job's process was stopped.")
            elif row.started_at and (timezone.now() - row.started_at).total_seconds() >= row.timeout:
                end_abandoned(job_pk, Status.FAILED, f"Timed out after {row.timeout} s; the job's process was stopped.")
            else:
                end_abandoned(job_pk, Status.LOST, _death_reason(ret_val, self.name))
        except DatabaseError:
            logger.exception("Could not record the end of job %s; the reconciler will", job_pk)


def _death_reason(ret_val, worker_name):
    if ret_val is not None and os.WIFSIGNALED(ret_val):
        sig = os.WTERMSIG(ret_val)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        how = f"was killed by {name}" + (" (often the kernel's out-of-memory killer)" if sig == signal.SIGKILL else "")
    elif ret_val is not None and os.WIFEXITED(ret_val):
        how = f"exited with code {os.WEXITSTATUS(ret_val)}"
    else:
        how = "ended"
    return f"The process running this job {how} before it finished (worker {worker_name}). Check the target's state before retrying."
