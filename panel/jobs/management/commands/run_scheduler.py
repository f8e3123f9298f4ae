"""The scheduler process: periodic tasks onto RQ, and the job reconciler in-process.

Run exactly one per installation (two would enqueue periodic tasks twice).

Redis or the database going away does not stop it: it waits with a short growing delay
(never spinning), logs the outage once and then at most once per OUTAGE_LOG_PERIOD, and
reconciles at once when Redis answers again (so the jobs Redis lost are enqueued again
within seconds). Before its first round it repairs the jobs an older version left queued
under a function path that has moved since (panel.jobs.periodic.repair_moved_paths).
"""

import logging
import signal
import time

import django_rq
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection
from rq.cron import CronScheduler

from panel.jobs.periodic import PERIODIC, repair_moved_paths
from panel.jobs.reconciler import reconcile
from panel.lib.outage import DATABASE_ERRORS, REDIS_ERRORS, Outage

logger = logging.getLogger("filrouge.scheduler")


class Command(BaseCommand):
    help = "Run the scheduler: periodic tasks and the job reconciler (lost and forgotten jobs)."

    def handle(self, *args, **options):
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.redis_outage = Outage("Redis (scheduler)", logger)
        self.database_outage = Outage("The database (scheduler)", logger)
        self.bug = Outage("Periodic tasks", logger)
        cron = CronScheduler(connection=django_rq.get_connection("low"), name="filrouge-scheduler")
        for task in PERIODIC:
            cron.register(task["func"], task["queue"], interval=task["interval"], job_timeout=task["timeout"], result_ttl=0)
        registered = False
        self.stdout.write(f"Scheduler started: {len(PERIODIC)} periodic task(s), reconciling every {settings.RECONCILE_INTERVAL:g} s")
        self.stdout.flush()
        next_reconcile = 0.0
        try:
            while not self.stopping:
                now = time.monotonic()
                if now >= next_reconcile:
                    next_reconcile = now + settings.RECONCILE_INTERVAL
                    self._reconcile()
                wait = None
                try:
                    if not registered:
                        # Jobs an older version queued under a path that has moved since.
                        repair_moved_paths([django_rq.get_queue(name) for name in settings.RQ_QUEUES])
                        cron.register_birth()
                        registered = True
                    if cron.enqueue_jobs():
                        cron.save()
                    cron.heartbeat()
                except REDIS_ERRORS as exc:
                    wait = self.redis_outage.failed(exc)
                except Exception:
                    # Our bug or a broken task definition: say it (with the traceback) once
                    # per period, never in a tight loop.
                    if not self.bug.down:
                        logger.exception("Could not enqueue periodic tasks")
                    wait = self.bug.failed(RuntimeError("see the traceback above"))
                else:
                    self.bug.recovered()
                    if self.redis_outage.recovered() is not None:
                        next_reconcile = 0.0  # enqueue at once what Redis lost meanwhile
                        continue
                if wait is None:
                    wait = min(max(next_reconcile - time.monotonic(), 0), cron.calculate_sleep_interval(), 1.0)
                time.sleep(max(wait, 0.05))
        finally:
            try:
                cron.register_death()
            except Exception:
                logger.warning("Could not deregister the scheduler from Redis")
            self.stdout.write("Scheduler stopped")

    def _reconcile(self):
        try:
            close_old_connections()
            result = reconcile()
        except DATABASE_ERRORS as exc:
            self.database_outage.failed(exc)
            try:
                connection.close()  # a fresh connection next time
            except DATABASE_ERRORS:
                pass
            return
        except REDIS_ERRORS as exc:
            self.database_outage.recovered()
            self.redis_outage.failed(exc)
            return
        except Exception:
            logger.exception("Job reconciler failed; will try again")
            return
        self.database_outage.recovered()
        if any(result.values()):
            logger.warning("Reconciled jobs: %s", result)

    def _stop(self, signum, frame):
        self.stopping = True
