"""Issue 13 figures: Redis and PostgreSQL going away under load, and a fresh worker's first job.

- Redis: a redis-server of the benchmark's own is killed for --redis-outage seconds (60 by
  default) while 4 workers run 4 jobs and 20 more wait; it comes back empty (no
  persistence). Counted: processes that exited, jobs lost or run twice, seconds from
  Redis's return to the first job started again and to the last one finished, and the
  log lines the scheduler and the workers wrote during the outage.
- PostgreSQL: the worker reaches the database through a TCP proxy that is cut for
  --database-outage seconds (30 by default) while a job writes 50 lines a second; the
  scheduler keeps a direct line, so the reconciler could call the job lost. Counted:
  lines lost, lines out of order, the job's final status.
- Worker start: enqueue→running of the first job on a freshly started worker against the
  next ones on the same worker.

Production timings (heartbeats, reconciler period, lost-after) are used, not the tests'.
Quick run: `.venv/bin/python benchmarks/bench_outages.py --redis-outage 10 --database-outage 8`.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine_line, print_table, setup_django  # noqa: F401

PRODUCTION = {
    "FILROUGE_JOB_HEARTBEAT_INTERVAL": "5",
    "FILROUGE_JOB_LOST_AFTER": "30",
    "FILROUGE_RECONCILE_INTERVAL": "10",
    "FILROUGE_RECONCILE_QUEUED_GRACE": "5",
    "FILROUGE_WORKER_HEARTBEAT_INTERVAL": "10",
    "FILROUGE_WORKER_STALE_AFTER": "30",
}
os.environ.update(PRODUCTION)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.faults import RedisServer, TcpProxy  # noqa: E402

REDIS = RedisServer().start()
setup_django()
os.environ["REDIS_URL"] = REDIS.url

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

settings.RQ_QUEUES = {name: {"URL": REDIS.url} for name in ("high", "default", "low")}

from panel.accounts.models import Role, User  # noqa: E402
from panel.jobs.models import Job, JobEvent, Status  # noqa: E402
from panel.jobs.services import start_job  # noqa: E402
from tests.fixtures.workers import start_scheduler, start_worker, test_database_url  # noqa: E402
from tests.support.ports import wait_until  # noqa: E402

SCRATCH = Path(tempfile.mkdtemp(prefix="filrouge-bench-outages-"))
USER = User.objects.get_or_create(username="bench-outages", defaults={"role": Role.OPERATOR})[0]


def log_size(process):
    return len(process.log_path.read_text(errors="replace"))


def log_lines(process, start, end):
    return [line for line in process.log_path.read_text(errors="replace")[start:end].splitlines() if line.strip()]


def redis_outage(outage, job_seconds=5.0):
    Job.objects.all().delete()
    workers = [start_worker(SCRATCH, name=f"bench-redis-{n}", REDIS_URL=REDIS.url) for n in range(4)]
    scheduler = start_scheduler(SCRATCH, REDIS_URL=REDIS.url)
    processes = [*workers, scheduler]
    try:
        jobs = [start_job("test-sleeper", {"seconds": job_seconds}, USER) for _ in range(24)]
        wait_until(lambda: Job.objects.filter(status=Status.RUNNING).count() == 4, timeout=120, message="4 jobs running")
        marks = {process.name: log_size(process) for process in processes}
        killed_at = time.monotonic()
        REDIS.stop()
        while time.monotonic() - killed_at < outage:
            time.sleep(0.2)
        during = {process.name: log_lines(process, marks[process.name], log_size(process)) for process in processes}
        finished_during = Job.objects.filter(status=Status.SUCCEEDED).count()
        REDIS.start()
        back_at = time.time()
        wait_until(lambda: Job.objects.filter(status__in=(Status.QUEUED, Status.RUNNING)).count() == 0, timeout=600, message="every job to end")
        exited = sum(1 for process in processes if not process.alive())
    finally:
        for process in processes:
            process.stop()
    rows = Job.objects.filter(pk__in=[job.pk for job in jobs])
    resumed = min(row.started_at.timestamp() for row in rows if row.started_at and row.started_at.timestamp() >= back_at)
    last_done = max(row.finished_at.timestamp() for row in rows)
    runs = {job.pk: JobEvent.objects.filter(job=job, text="sleeping").count() for job in jobs}
    return {
        "outage": outage,
        "exited": exited,
        "lost": rows.exclude(status=Status.SUCCEEDED).count(),
        "duplicated": sum(1 for count in runs.values() if count > 1),
        "never_ran": sum(1 for count in runs.values() if count == 0),
        "finished_during": finished_during,
        "resume": resumed - back_at,
        "all_done": last_done - back_at,
        "scheduler_lines": len(during["scheduler"]),
        "worker_lines": max(len(during[w.name]) for w in workers),
        "tracebacks": sum(1 for lines in during.values() for line in lines if "Traceback" in line),
        "scheduler_log": during["scheduler"],
        "worker_log": max((during[w.name] for w in workers), key=len),
    }


def database_outage(outage, per_second=50, before=5, after=10):
    lines = int(per_second * (before + outage + after))
    proxy = TcpProxy(connection.settings_dict["HOST"] or "127.0.0.1", int(connection.settings_dict["PORT"] or 5432)).start()
    proxied = test_database_url().replace(f":{connection.settings_dict['PORT'] or 5432}/", f":{proxy.port}/")
    worker = start_worker(SCRATCH, name="bench-database", REDIS_URL=REDIS.url, DATABASE_URL=proxied)
    scheduler = start_scheduler(SCRATCH, REDIS_URL=REDIS.url)
    seen = set()
    try:
        job = start_job("test-writer", {"lines": lines, "per_second": per_second}, USER)
        wait_until(lambda: Job.objects.filter(pk=job.pk, status=Status.RUNNING).exists(), timeout=120, message="the job to run")
        time.sleep(before)
        proxy.cut()
        cut_at = time.monotonic()
        while time.monotonic() - cut_at < outage:
            seen.add(Job.objects.get(pk=job.pk).status)
            time.sleep(0.5)
        proxy.restore()
        wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=600, message="the job to end")
    finally:
        worker.stop()
        scheduler.stop()
        proxy.close()
    job.refresh_from_db()
    texts = list(JobEvent.objects.filter(job=job, is_end=False).order_by("seq").values_list("text", flat=True))
    expected = [f"line {n}" for n in range(1, lines + 1)]
    return {
        "outage": outage,
        "lines": lines,
        "lost": len(set(expected) - set(texts)),
        "out_of_order": int(texts != sorted(texts, key=lambda text: int(text.split()[1]))),
        "status": job.status,
        "status_during": "/".join(sorted(seen)),
    }


def first_job_latency(workers=3, following=4):
    firsts, others = [], []
    for number in range(workers):
        worker = start_worker(SCRATCH, name=f"bench-start-{number}", REDIS_URL=REDIS.url)
        try:
            for index in range(following + 1):
                asked = time.time()
                job = start_job("test-writer", {"lines": 1}, USER)
                wait_until(lambda: Job.objects.filter(pk=job.pk, finished_at__isnull=False).exists(), timeout=120, interval=0.005, message="the job to end")
                # The job's own first line: "running" is written before the fork, the line after it.
                first_line = JobEvent.objects.get(job=job, seq=1).time.timestamp()
                (firsts if index == 0 else others).append(first_line - asked)
            traceback = "Traceback" in worker.output()
        finally:
            worker.stop()
    return {"first": statistics.median(firsts), "first_max": max(firsts), "others": statistics.median(others), "traceback": traceback}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-outage", type=float, default=60)
    parser.add_argument("--database-outage", type=float, default=30)
    parser.add_argument("--parts", default="start,redis,database", help="comma-separated: start, redis, database")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(machine_line())
    if "start" in parts:
        print_start()
    if "redis" in parts:
        print_redis(args.redis_outage)
    if "database" in parts:
        print_database(args.database_outage)


def print_start():
    start = first_job_latency()
    print_table(
        "Fresh worker: enqueue → the job's first line (median of 3 workers)",
        ["first job (s)", "first job, worst (s)", "next jobs (s)", "traceback at start"],
        [[f"{start['first']:.3f}", f"{start['first_max']:.3f}", f"{start['others']:.3f}", "yes" if start["traceback"] else "no"]],
    )


def print_redis(outage):
    redis = redis_outage(outage)
    print_table(
        f"Redis killed for {redis['outage']:g} s (4 workers, 4 jobs running, 20 queued; it returns empty)",
        ["processes exited", "jobs lost", "jobs run twice", "jobs never run", "ended during outage",
         "resume after return (s)", "all 24 done after return (s)", "scheduler log lines", "worker log lines (max)", "tracebacks"],
        [[redis["exited"], redis["lost"], redis["duplicated"], redis["never_ran"], redis["finished_during"],
          f"{redis['resume']:.1f}", f"{redis['all_done']:.1f}", redis["scheduler_lines"], redis["worker_lines"], redis["tracebacks"]]],
    )
    print("\nScheduler log during the outage:")
    for line in redis["scheduler_log"]:
        print(f"    {line}")
    print("\nThe busiest worker's log during the outage:")
    for line in redis["worker_log"]:
        print(f"    {line[:200]}")


def print_database(outage):
    database = database_outage(outage)
    print_table(
        f"PostgreSQL cut for {database['outage']:g} s under a job writing 50 lines/s",
        ["lines written", "lines lost", "out of order", "final status", "status seen during outage"],
        [[database["lines"], database["lost"], database["out_of_order"], database["status"], database["status_during"]]],
    )


if __name__ == "__main__":
    import shutil

    try:
        main()
    finally:
        REDIS.stop()
        shutil.rmtree(SCRATCH, ignore_errors=True)
