"""JobContext: what a running job writes through.

Lines are buffered and written in batches (every JOB_LINE_FLUSH_INTERVAL seconds or
every BATCH_SIZE lines), redacted of the secrets the job registered, numbered with a
monotonic seq, and closed by an end marker. A watcher thread flushes quiet jobs, keeps
the heartbeat that tells a live job from a lost one, and turns a cancel request into
JobCancelled in the job's main thread.

When the database goes away the job goes on: its lines stay in memory (in order, up to
JOB_LINE_BUFFER_MAX) and are written when the database answers again, the watcher keeps
beating through Redis (so the reconciler does not call a live job lost) and keeps
honouring cancel requests through Redis, and the end waits for the database (up to
JOB_END_PATIENCE seconds) so the row gets its true final status.
"""

import logging
import os
import signal
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from panel.lib.outage import DATABASE_ERRORS, REDIS_ERRORS, Outage
from panel.lib.redaction import Redactor

from .errors import JobCancelled, JobFailed
from .models import Job, JobEvent, Outcome

logger = logging.getLogger("filrouge.jobs")

BATCH_SIZE = 500
CANCEL_GRACE_SECONDS = 5


def cancel_key(job_id):
    return f"filrouge:job-cancel:{job_id}"


def alive_key(job_id):
    """Set by the running job's process every heartbeat; expires JOB_LOST_AFTER seconds later."""
    return f"filrouge:job-alive:{job_id}"


class JobContext:
    def __init__(self, job: Job, redis=None):
        self.job = job
        self.user = job.user
        self.redis = redis
        self.redact = Redactor()
        self.cancelled = threading.Event()
        self._seq = job.line_count
        self._pending = []
        self._progress = None
        self._append_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._stop = threading.Event()
        self._watcher = None
        self._main_thread_id = threading.main_thread().ident
        self._cancel_seen_at = None
        self._dropped = 0  # lines not kept because the buffer was full during a database outage
        self.database_outage = Outage(f"The database (job {job.pk})", logger)
        self.redis_outage = Outage(f"Redis (job {job.pk})", logger)
        self._next_flush_attempt = 0.0
        self._next_redis_attempt = 0.0

    # ---- what job kinds call -------------------------------------------------

    def line(self, text, host="", task="", outcome=Outcome.NONE):
        """Record one line. Safe to call from several threads (fan-out over hosts)."""
        self.check_cancelled()
        now = timezone.now()
        # Redact before splitting: a private key spans lines.
        text, host, task = self.redact(str(text)), self.redact(host)[:200], self.redact(task)[:200]
        with self._append_lock:
            for part in text.splitlines() or [""]:
                if len(self._pending) >= settings.JOB_LINE_BUFFER_MAX:
                    self._dropped += 1
                    continue
                self._seq += 1
                self._pending.append(
                    JobEvent(job_id=self.job.pk, seq=self._seq, time=now, host=host, task=task, outcome=outcome, text=part)
                )
            # While the database is away the watcher retries; the job itself never waits.
            due = len(self._pending) >= BATCH_SIZE and not self.database_outage.down
        if due:
            self.flush()

    def ok(self, text, **kw):
        self.line(text, outcome=Outcome.OK, **kw)

    def changed(self, text, **kw):
        self.line(text, outcome=Outcome.CHANGED, **kw)

    def failed(self, text, **kw):
        self.line(text, outcome=Outcome.FAILED, **kw)

    def skipped(self, text, **kw):
        self.line(text, outcome=Outcome.SKIPPED, **kw)

    def progress(self, done, total=None):
        self.check_cancelled()
        with self._append_lock:
            self._progress = (done, total if total is not None else self.job.progress_total)

    def add_secret(self, value):
        """Values registered here never reach the database, the page or the API."""
        self.redact.add(value)

    def fail(self, message):
        raise JobFailed(message)

    def check_cancelled(self):
        if self.cancelled.is_set() and threading.get_ident() == self._main_thread_id:
            raise JobCancelled()

    # ---- lifecycle (called by the runner) ---------------------------------------

    def start(self):
        self._install_cancel_signal()
        self._watcher = threading.Thread(target=self._watch, name=f"job-{self.job.pk}-watcher", daemon=True)
        self._watcher.start()

    def finish(self, status, error="", result=None):
        """Flush, write the end marker and the final status. Runs whatever happened before."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # a late cancel signal must not kill the process
        end_text = _end_text(status, error)
        with self._append_lock:
            self._seq += 1
            self._pending.append(
                JobEvent(job_id=self.job.pk, seq=self._seq, time=timezone.now(), text=self.redact(end_text), is_end=True)
            )
        final = {"status": status, "error": self.redact(error or ""), "result": result}
        deadline = time.monotonic() + settings.JOB_END_PATIENCE
        while not self.flush(final=final):
            # The database is away: keep beating through Redis so the job is not called
            # lost meanwhile, and write the end as soon as it answers.
            self._beat_in_redis()
            if time.monotonic() > deadline:
                logger.error(
                    "Job %s could not record its end (%s, %d lines): the database stayed unreachable for %.0f s",
                    self.job.pk, status, len(self._pending), settings.JOB_END_PATIENCE,
                )
                return
            time.sleep(max(0.05, self._next_flush_attempt - time.monotonic()))
        self._forget_in_redis()

    def flush(self, final=None):
        """Write pending lines (and progress, heartbeat, or the final state) in one transaction.

        Returns False when the database is unreachable: the lines go back to the front of
        the buffer, in order, for the next attempt.
        """
        with self._flush_lock:
            with self._append_lock:
                batch, self._pending = self._pending, []
                progress, self._progress = self._progress, None
                seq = self._seq
                if self._dropped and not (batch and batch[-1].is_end):
                    # Say where lines are missing rather than pretend the story is whole.
                    self._seq += 1
                    seq = self._seq
                    batch.append(JobEvent(job_id=self.job.pk, seq=seq, time=timezone.now(),
                                          text=f"[{self._dropped} lines were not kept: the database was unreachable and the buffer was full]"))
                    self._dropped = 0
            if not batch and progress is None and final is None:
                return True
            try:
                self._write(batch, progress, seq, final)
            except DATABASE_ERRORS as exc:
                with self._append_lock:
                    self._pending[:0] = batch
                    if self._progress is None:
                        self._progress = progress
                self._next_flush_attempt = time.monotonic() + self.database_outage.failed(exc)
                _drop_broken_connection()
                return False
            self.database_outage.recovered()
            return True

    def _write(self, batch, progress, seq, final):
        now = timezone.now()
        fields = {"line_count": seq, "heartbeat_at": now}
        if progress is not None:
            fields["progress_done"], fields["progress_total"] = progress
        if final is not None:
            fields.update(status=final["status"], error=final["error"], result=final["result"], finished_at=now)
            if final["status"] == "succeeded" and fields.get("progress_total", self.job.progress_total):
                fields["progress_done"] = fields.get("progress_total", self.job.progress_total)
        with transaction.atomic():
            if batch:
                # ignore_conflicts: a batch whose commit was cut may have been written.
                JobEvent.objects.bulk_create(batch, ignore_conflicts=True)
            # A job the reconciler wrongly called lost still reports what really happened.
            Job.objects.filter(pk=self.job.pk, status__in=("running", "lost")).update(**fields)
        for name, value in fields.items():
            setattr(self.job, name, value)
        self._last_flush = time.monotonic()

    # ---- the watcher thread ---------------------------------------------------------

    def _watch(self):
        interval = min(settings.JOB_LINE_FLUSH_INTERVAL, settings.JOB_CANCEL_POLL_INTERVAL)
        next_cancel_poll = next_heartbeat = 0.0
        try:
            while not self._stop.wait(interval):
                now = time.monotonic()
                if now - self._last_flush >= settings.JOB_LINE_FLUSH_INTERVAL and self._pending and now >= self._next_flush_attempt:
                    self.flush()
                if now >= next_heartbeat:
                    next_heartbeat = now + settings.JOB_HEARTBEAT_INTERVAL
                    self._beat_in_redis()
                    self._heartbeat()
                if now >= next_cancel_poll:
                    next_cancel_poll = now + settings.JOB_CANCEL_POLL_INTERVAL
                    self._poll_cancel()
                if self._cancel_seen_at is not None and now - self._cancel_seen_at > CANCEL_GRACE_SECONDS:
                    self._force_cancel()
        except Exception:
            logger.exception("Job %s watcher stopped", self.job.pk)
        finally:
            connection.close()

    def _heartbeat(self):
        if self.database_outage.down and time.monotonic() < self._next_flush_attempt:
            return
        try:
            close_old_connections()
            updated = Job.objects.filter(pk=self.job.pk, status="running").update(heartbeat_at=timezone.now())
            if updated and not self.cancelled.is_set():
                if Job.objects.filter(pk=self.job.pk, cancel_requested_at__isnull=False).exists():
                    self._request_cancel()
        except DATABASE_ERRORS as exc:
            self._next_flush_attempt = time.monotonic() + self.database_outage.failed(exc)
            _drop_broken_connection()
            return
        if self.database_outage.down:
            self.flush()  # writes what was buffered, or notes the outage goes on

    def _beat_in_redis(self):
        if self.redis is None:
            return
        try:
            self.redis.set(alive_key(self.job.pk), self.job.worker_name or "1", ex=max(1, int(settings.JOB_LOST_AFTER)))
        except REDIS_ERRORS as exc:
            self._next_redis_attempt = time.monotonic() + self.redis_outage.failed(exc)
        else:
            self.redis_outage.recovered()

    def _forget_in_redis(self):
        if self.redis is None:
            return
        try:
            self.redis.delete(alive_key(self.job.pk))
        except REDIS_ERRORS:
            pass  # it expires by itself

    def _poll_cancel(self):
        if self.redis is None or self.cancelled.is_set():
            return
        if self.redis_outage.down and time.monotonic() < self._next_redis_attempt:
            return
        try:
            if self.redis.exists(cancel_key(self.job.pk)):
                self._request_cancel()
        except REDIS_ERRORS as exc:  # the database check in the heartbeat still works
            self._next_redis_attempt = time.monotonic() + self.redis_outage.failed(exc)
        else:
            self.redis_outage.recovered()

    def _request_cancel(self):
        self.cancelled.set()
        self._cancel_seen_at = time.monotonic()
        # Interrupt the main thread even if it is blocked in a socket read or a sleep.
        signal.pthread_kill(self._main_thread_id, signal.SIGUSR1)

    def _force_cancel(self):
        """The job ignored the cancel: record it and end the process (the worker survives)."""
        logger.warning("Job %s did not stop within %ss of its cancel; ending its process", self.job.pk, CANCEL_GRACE_SECONDS)
        self._stop.set()
        with self._append_lock:
            self._seq += 1
            self._pending.append(
                JobEvent(job_id=self.job.pk, seq=self._seq, time=timezone.now(), text="Cancelled (the job did not stop by itself; its process was ended).", is_end=True)
            )
        self.flush(final={"status": "cancelled", "error": "Cancelled.", "result": None})
        os._exit(1)

    def _install_cancel_signal(self):
        def on_signal(signum, frame):
            if self.cancelled.is_set():
                raise JobCancelled()

        signal.signal(signal.SIGUSR1, on_signal)


def _drop_broken_connection():
    try:
        connection.close()
    except DATABASE_ERRORS:
        pass


def _end_text(status, error):
    if status == "succeeded":
        return "Finished: succeeded."
    if error:
        return f"Finished: {status}. {error}"
    return f"Finished: {status}."
