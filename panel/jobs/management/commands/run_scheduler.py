"""The scheduler process: periodic tasks onto RQ, and the job reconciler in-process.

Run exactly one per installation (two would enqueue periodic tasks twice).
"""

import logging
import signal
import time

import django_rq
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from rq.cron import CronScheduler

from panel.jobs.periodic import PERIODIC
from panel.jobs.reconciler import reconcile

logger = logging.getLogger("filrouge.scheduler")


class Command(BaseCommand):
    help = "Run the scheduler: periodic tasks and the job reconciler (lost and forgotten jobs)."

    def handle(self, *args, **options):
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        cron = CronScheduler(connection=django_rq.get_connection("low"), name="filrouge-scheduler")
        for task in PERIODIC:
            cron.register(task["func"], task["queue"], interval=task["interval"], job_timeout=task["timeout"], result_ttl=0)
        cron.register_birth()
        self.stdout.write(f"Scheduler started: {len(PERIODIC)} periodic task(s), reconciling every {settings.RECONCILE_INTERVAL:g} s")
        next_reconcile = 0.0
        try:
            while not self.stopping:
                now = time.monotonic()
                if now >= next_reconcile:
                    next_reconcile = now + settings.RECONCILE_INTERVAL
                    self._reconcile()
                try:
                    if cron.enqueue_jobs():
                        cron.save()
                    cron.heartbeat()
                except Exception:
                    logger.exception("Could not enqueue periodic tasks (is Redis up?)")
                sleep = min(max(next_reconcile - time.monotonic(), 0), cron.calculate_sleep_interval(), 1.0)
                time.sleep(sleep)
        finally:
            try:
                cron.register_death()
            except Exception:
                logger.warning("Could not deregister the scheduler from Redis")
            self.stdout.write("Scheduler stopped")

    def _reconcile(self):
        close_old_connections()
        try:
            result = reconcile()
            if any(result.values()):
                logger.warning("Reconciled jobs: %s", result)
        except Exception:
            logger.exception("Job reconciler failed; will try again")

    def _stop(self, signum, frame):
        self.stopping = True
