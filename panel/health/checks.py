"""Checks of the panel's own parts, shared by /healthz and the diagnostics job.

Each returns a dict with at least `ok` (bool) and a human `detail`.
"""

import shutil
import time

import django_rq
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rq import Worker

QUEUE_NAMES = ("high", "default", "low")


def worker_stale_after():
    """Seconds without a heartbeat after which a worker is listed dead (settings.WORKER_STALE_AFTER)."""
    return settings.WORKER_STALE_AFTER


def _timed(func):
    started = time.perf_counter()
    result = func()
    return result, round((time.perf_counter() - started) * 1000, 2)


def check_database():
    try:
        def ping():
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                return cursor.fetchone()[0]

        _, ms = _timed(ping)
        return {"ok": True, "vendor": connection.vendor, "latency_ms": ms, "detail": f"{connection.vendor} answered in {ms} ms"}
    except Exception as exc:
        return {"ok": False, "vendor": connection.vendor, "detail": f"{connection.vendor} unreachable: {exc}"}


def check_redis():
    try:
        redis = django_rq.get_connection("default")
        _, ms = _timed(redis.ping)
        version = redis.info("server").get("redis_version", "?")
        return {"ok": True, "version": version, "latency_ms": ms, "detail": f"Redis {version} answered in {ms} ms"}
    except Exception as exc:
        return {"ok": False, "detail": f"Redis unreachable: {exc}"}


def queue_depths():
    redis = django_rq.get_connection("default")
    with redis.pipeline(transaction=False) as pipe:
        for name in QUEUE_NAMES:
            pipe.llen(f"rq:queue:{name}")
        return dict(zip(QUEUE_NAMES, pipe.execute()))


def check_workers():
    try:
        workers = Worker.all(connection=django_rq.get_connection("default"))
    except Exception as exc:
        return {"ok": False, "workers": [], "detail": f"Cannot list workers: {exc}"}
    now = timezone.now()
    listed = []
    for worker in workers:
        beat = worker.last_heartbeat
        age = (now - beat).total_seconds() if beat else None
        listed.append(
            {
                "name": worker.name,
                "hostname": worker.hostname,
                "state": worker.get_state(),
                "queues": worker.queue_names(),
                "last_heartbeat": beat.isoformat() if beat else None,
                "heartbeat_age_s": round(age, 1) if age is not None else None,
                "alive": age is not None and age < worker_stale_after(),
            }
        )
    alive = sum(1 for worker in listed if worker["alive"])
    return {"ok": alive > 0, "alive": alive, "workers": listed, "detail": f"{alive} worker(s) alive"}


def check_disk(min_free_percent=5):
    usage = shutil.disk_usage(settings.VAR_DIR)
    free_percent = round(100 * usage.free / usage.total, 1)
    return {
        "ok": free_percent >= min_free_percent,
        "path": str(settings.VAR_DIR),
        "free_bytes": usage.free,
        "free_percent": free_percent,
        "detail": f"{usage.free / 2**30:.1f} GiB free ({free_percent}%) on {settings.VAR_DIR}",
    }
