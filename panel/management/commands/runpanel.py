"""`make run`: the whole panel in one command (web, worker, scheduler, and an embedded
Redis when REDIS_URL is unset). Ctrl-C stops everything, the Redis last."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from panel.lib.embedded_redis import start_embedded_redis


class Command(BaseCommand):
    help = "Run web (gunicorn with uvicorn workers: HTTP and websockets), an RQ worker and the scheduler together; Ctrl-C stops them all."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 3)))

    def handle(self, *args, host, port, web_workers, **options):
        self.children = []
        self.redis = None
        self.stopping = False
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        try:
            if settings.EMBEDDED_REDIS:
                self.redis = start_embedded_redis()
                self.stdout.write(f"Embedded Redis on {settings.EMBEDDED_REDIS_SOCKET}")
            call_command("migrate", interactive=False, verbosity=0)
            call_command("ensure_admin", stdout=self.stdout)
            python = sys.executable
            manage = str(settings.BASE_DIR / "manage.py")
            # gunicorn with uvicorn workers: HTTP and the terminals' websockets (panel/asgi.py).
            self._spawn("web", [python, "-m", "gunicorn", "panel.asgi:application", "--worker-class", "uvicorn_worker.UvicornWorker",
                                "--bind", f"{host}:{port}", "--workers", str(web_workers), "--access-logfile", "-", "--graceful-timeout", "5"])
            self._spawn("worker", [python, manage, "rqworker", "high", "default", "low", "--worker-class", "panel.jobs.worker.Worker"])
            self._spawn("scheduler", [python, manage, "run_scheduler"])
            database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
            self.stdout.write(self.style.SUCCESS(f"Filrouge is up on http://{host}:{port}/  (database: {database}; Ctrl-C stops it)"))
            self._watch()
        finally:
            self._stop_all()

    def _spawn(self, name, command):
        process = subprocess.Popen(command, cwd=settings.BASE_DIR, start_new_session=True)
        self.children.append((name, process))

    def _watch(self):
        while not self.stopping:
            for name, process in self.children:
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with code {process.returncode}; stopping the panel.")
                    self.exit_code = 1
                    return
            time.sleep(0.5)

    def _request_stop(self, signum, frame):
        self.stopping = True

    def _stop_all(self):
        for name, process in self.children:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, process in self.children:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in time; killing it.")
                process.kill()
                process.wait()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            try:
                self.redis.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.redis.kill()
        self.stdout.write("Filrouge stopped.")
        if getattr(self, "exit_code", 0):
            sys.exit(self.exit_code)
