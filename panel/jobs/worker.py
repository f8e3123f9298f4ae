"""The RQ worker class the panel runs (`manage.py rqworker --worker-class panel.jobs.worker.Worker`).

RQ forks a "horse" per job. When the horse dies without finishing (killed, out of
memory, stopped by RQ's own hard timeout) the parent notices; this class turns that
into a final status on the job row at once instead of waiting for the reconciler.

It also outlives Redis going away. Plain RQ quits on the first connection error outside
its dequeue loop (a heartbeat while a job runs, the state update after it); this worker
keeps watching its job, waits quietly for Redis between jobs, re-registers itself when
Redis comes back without its data, and leaves the job's true outcome to the database row
(RQ's own bookkeeping of a job that ended during the outage is simply skipped).
Heartbeats are short (WORKER_HEARTBEAT_INTERVAL) so a killed worker stops being listed
alive within WORKER_STALE_AFTER seconds.
"""

import logging
import math
import os
import signal
import time

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone
from rq import worker_registration
from rq.utils import now as rq_now
from rq.utils import utcformat
from rq.worker import Worker as RQWorker

from panel.lib.outage import REDIS_ERRORS, Outage

from .models import Job, Status
from .runner import claim, end_abandoned

logger = logging.getLogger("filrouge.jobs")

WORKER_STARTUP_HOOKS = []


def on_worker_start(func):
    """Run `func()` once in the worker process before it takes its first job.

    For slow imports every job would otherwise pay in its freshly forked horse (the
    Kubernetes client): done here, the first job starts as fast as the next ones.
    A hook that raises is logged in one line and skipped.
    """
    WORKER_STARTUP_HOOKS.append(func)
    return func


def run_startup_hooks():
    for hook in WORKER_STARTUP_HOOKS:
        try:
            hook()
        except Exception as exc:  # a warm-up is an optimisation, never a reason not to start
            logger.warning("Worker warm-up %s skipped: %s: %s", getattr(hook, "__name__", hook), type(exc).__name__, exc)


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
    # RQ's own dequeue loop sleeps this long at most after a connection error.
    max_connection_wait_time = 2.0

    def __init__(self, *args, **kwargs):
        kwargs["job_monitoring_interval"] = settings.WORKER_HEARTBEAT_INTERVAL
        super().__init__(*args, **kwargs)
        self.redis_outage = Outage(f"Redis (worker {self.name})", logger)
        self._forked = False
        self._unclaimed = []  # job rows handed back to the queue while Redis was away

    # ---- heartbeats: short, and they survive Redis going away -------------------------

    @property
    def dequeue_timeout(self):
        # Block for a job no longer than a heartbeat interval, so an idle worker beats
        # (and re-registers after a Redis data loss) that often.
        return settings.WORKER_HEARTBEAT_INTERVAL

    @property
    def key_ttl(self):
        return int(math.ceil(settings.WORKER_STALE_AFTER))

    def heartbeat(self, timeout=None, pipeline=None):
        if pipeline is not None:  # part of RQ's own bookkeeping pipeline
            return super().heartbeat(timeout or self.key_ttl, pipeline=pipeline)
        while True:
            try:
                self._beat(timeout or self.key_ttl)
            except REDIS_ERRORS as exc:
                if self.is_horse or self._horse_pid:
                    # A job is running: keep watching it; the next beat will try again.
                    self.redis_outage.failed(exc)
                    return
                # Idle: nothing to do without Redis; wait for it (a stop signal still works).
                time.sleep(self.redis_outage.failed(exc))
                continue
            if self.redis_outage.recovered() is not None:
                self._after_redis_returned()
            return

    def _beat(self, ttl):
        self.last_heartbeat = rq_now()
        with self.connection.pipeline() as pipe:
            pipe.hset(self.key, "last_heartbeat", utcformat(self.last_heartbeat))
            pipe.expire(self.key, ttl)
            pipe.expire(self.executions_key, ttl)
            pipe.sismember(self.redis_workers_keys, self.key)
            pipe.hexists(self.key, "birth")
            registered, complete = pipe.execute()[3:]
        if not (registered and complete) and self.birth_date is not None:
            # Redis lost our registration (flushed, or restarted without persistence; the
            # hash may have been recreated by a state update). Register again so the panel
            # lists this worker.
            with self.connection.pipeline() as pipe:
                pipe.hset(self.key, mapping=self.serialize())
                pipe.hset(self.key, "state", self._state or "idle")
                worker_registration.register(self, pipe)
                pipe.expire(self.key, ttl)
                pipe.execute()
            logger.warning("Worker %s registered again: Redis had lost its registration", self.name)

    def maintain_heartbeats(self, job, execution):
        try:
            super().maintain_heartbeats(job, execution)
        except REDIS_ERRORS as exc:
            self.redis_outage.failed(exc)  # the job goes on; its row is the source of truth
            return
        if self.redis_outage.recovered() is not None:
            try:
                self._beat(self.key_ttl)  # re-register now if Redis came back empty
            except REDIS_ERRORS as exc:
                self.redis_outage.failed(exc)

    def _after_redis_returned(self):
        from .services import enqueue

        unclaimed, self._unclaimed = self._unclaimed, []
        for job_pk in unclaimed:
            try:
                row = Job.objects.filter(pk=job_pk, status=Status.QUEUED).first()
                if row is not None:
                    enqueue(row)
            except (DatabaseError, *REDIS_ERRORS):
                logger.warning("Could not enqueue job %s again; the reconciler will", job_pk)

    # ---- the rest of RQ's loop that talks to Redis ------------------------------------

    def check_for_suspension(self, burst):
        try:
            return super().check_for_suspension(burst)
        except REDIS_ERRORS:
            self.heartbeat()  # waits until Redis answers

    def run_maintenance_tasks(self):
        try:
            super().run_maintenance_tasks()
        except REDIS_ERRORS as exc:
            self.redis_outage.failed(exc)

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        while True:
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except REDIS_ERRORS:
                self.heartbeat()  # waits until Redis answers, then dequeue again

    def _pubsub_exception_handler(self, exc, pubsub, pubsub_thread):
        if isinstance(exc, REDIS_ERRORS):
            time.sleep(2.0)  # the main loop reports the outage once; redis-py resubscribes
            return
        super()._pubsub_exception_handler(exc, pubsub, pubsub_thread)

    def teardown(self):
        try:
            super().teardown()
        except REDIS_ERRORS:
            logger.warning("Worker %s stopped without deregistering: Redis is unreachable", self.name)

    # ---- running a job ------------------------------------------------------------

    def bootstrap(self, *args, **kwargs):
        run_startup_hooks()
        super().bootstrap(*args, **kwargs)

    def fork_work_horse(self, job, queue):
        self._forked = True
        super().fork_work_horse(job, queue)

    def prepare_job_execution(self, job, remove_from_intermediate_queue=False):
        # In the horse: RQ's bookkeeping before the job. Without Redis the job still runs
        # (it needs the database, not the queue).
        try:
            super().prepare_job_execution(job, remove_from_intermediate_queue)
        except REDIS_ERRORS as exc:
            logger.warning("Job %s starts without RQ's bookkeeping: Redis is unreachable (%s)", job.id, exc)

    def perform_job(self, job, queue, execution):
        try:
            return super().perform_job(job, queue, execution)
        except REDIS_ERRORS as exc:
            # The job ran and wrote its end to the database; only RQ's record of it is lost.
            logger.warning("Job %s ended while Redis was unreachable (%s); its row has the outcome", job.id, exc)
            return False

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
        self._forked = False
        try:
            super().execute_job(job, queue)
        except REDIS_ERRORS as exc:
            self.redis_outage.failed(exc)
            self._horse_pid = 0
            if job_pk is None:
                return
            if self._forked:
                self._end_if_unfinished(job_pk, None)
            else:
                self._unclaim(job_pk)

    def _unclaim(self, job_pk):
        """Redis went away between dequeue and fork: the job did not run; hand it back."""
        try:
            handed_back = Job.objects.filter(pk=job_pk, status=Status.RUNNING, worker_name=self.name, line_count=0).update(
                status=Status.QUEUED, started_at=None, heartbeat_at=None, worker_name=""
            )
        except DatabaseError:
            logger.warning("Could not hand job %s back to the queue; the reconciler will settle it", job_pk)
            return
        if handed_back:
            self._unclaimed.append(job_pk)

    def handle_work_horse_killed(self, job, retpid, ret_val, rusage):
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        job_pk = job_pk_from_rq_id(job.id)
        if job_pk is None:
            return
        self._end_if_unfinished(job_pk, ret_val)

    def _end_if_unfinished(self, job_pk, ret_val):
        """The horse is gone; a row it left queued or running gets its final status now."""
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
