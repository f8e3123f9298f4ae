import socket
import sys

from django.core.management.base import BaseCommand
from django.utils import timezone

from panel.health.checks import WORKER_STALE_AFTER, check_workers


class Command(BaseCommand):
    help = "Exit 0 when an RQ worker on this host has a recent heartbeat (container health check)."

    def handle(self, *args, **options):
        hostname = socket.gethostname()
        workers = check_workers()["workers"]
        alive = [worker for worker in workers if worker["alive"] and worker["hostname"] == hostname]
        if not alive:
            self.stderr.write(f"No worker on {hostname} with a heartbeat younger than {WORKER_STALE_AFTER} s ({timezone.now():%H:%M:%S})")
            sys.exit(1)
        self.stdout.write(f"{len(alive)} worker(s) alive")
