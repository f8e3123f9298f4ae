import socket
import sys

from django.core.management.base import BaseCommand
from django.utils import timezone

from panel.health.checks import check_workers, worker_stale_after


class Command(BaseCommand):
    help = "Exit 0 when an RQ worker on this host has a recent heartbeat (container health check)."

    def handle(self, *args, **options):
        hostname = socket.gethostname()
        workers = check_workers()["workers"]
        alive = [worker for worker in workers if worker["alive"] and worker["hostname"] == hostname]
        if not alive:
            self.stderr.write(f"No worker on {hostname} with a heartbeat younger than {worker_stale_after():g} s ({timezone.now():%H:%M:%S})")
            sys.exit(1)
        self.stdout.write(f"{len(alive)} worker(s) alive")
