"""The RQ worker class the panel runs (`manage.py rqworker --worker-class panel.jobs.worker.Worker`).

RQ forks a "horse" per job. When the horse dies without finishing (killed, out of
memory, stopped by RQ's own hard timeout) the parent notices; this class turns that
into a final status on the job row at once instead of waiting for the reconciler.
"""

import os
import signal

from django.db import connections
from django.utils import timezone
from rq.worker import Worker as RQWorker

from .models import Job, Status
from .runner import end_abandoned


def job_pk_from_rq_id(rq_id):
    prefix = "filrouge-job-"
    return int(rq_id[len(prefix):]) if rq_id and rq_id.startswith(prefix) else None


class Worker(RQWorker):
    def fork_work_horse(self, job, queue):
        # The horse must open its own database connections, never share the parent's socket.
        connections.close_all()
        super().fork_work_horse(job, queue)

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
        finally:
            connections.close_all()


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
