"""`make run`: the whole panel in one command (web, worker, scheduler, and an embedded
Redis when REDIS_URL is unset). Ctrl-C stops everything, the Redis last.

A part that exits is started again (after 1 s, then 2, 4... up to a minute while it keeps
exiting at once) and the others go on: an outage of Redis or the database never takes
the whole panel down."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from panel.lib.embedded_redis import start_embedded_redis

STABLE_AFTER = 60  # seconds a restarted part must run before its restart delay resets
MAX_RESTART_DELAY = 60


class Command(BaseCommand):
    help = "Run web (gunicorn with uvicorn workers: HTTP and websockets), an RQ worker and the scheduler together; Ctrl-C stops them all."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 3)))

    def handle(self, *args, host, port, web_workers, **options):
        self.children = []
        self.commands = {}
        self.started_at = {}
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
        self.commands[name] = command
        self.started_at[name] = time.monotonic()

    def _watch(self):
        restart_at = {}
        delay = {}
        while not self.stopping:
            now = time.monotonic()
            if self.redis is not None and self.redis.poll() is not None and "redis" not in restart_at:
                self.stderr.write(f"The embedded Redis exited with code {self.redis.returncode}; starting it again.")
                restart_at["redis"] = now
            for index, (name, process) in enumerate(self.children):
                if process.poll() is None:
                    if now - self.started_at[name] > STABLE_AFTER:
                        delay.pop(name, None)  # it ran long enough: the next exit restarts at once
                    continue
                if name not in restart_at:
                    wait = delay.get(name, 1.0)
                    self.stderr.write(f"{name} exited with code {process.returncode}; starting it again in {wait:.0f} s.")
                    restart_at[name] = now + wait
                    delay[name] = min(wait * 2, MAX_RESTART_DELAY)
                elif now >= restart_at[name]:
                    del restart_at[name]
                    replacement = subprocess.Popen(self.commands[name], cwd=settings.BASE_DIR, start_new_session=True)
                    self.children[index] = (name, replacement)
                    self.started_at[name] = now
            if "redis" in restart_at and now >= restart_at["redis"]:
                try:
                    self.redis = start_embedded_redis()
                    del restart_at["redis"]
                except RuntimeError as exc:
                    self.stderr.write(f"The embedded Redis did not start again ({exc}); retrying in 5 s.")
                    restart_at["redis"] = now + 5
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
