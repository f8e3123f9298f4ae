"""Periodic tasks (probes, expiry) declared by apps in their jobs.py and enqueued by the scheduler.

    @every(60, queue="low")
    def probe_servers(): ...

They run on the workers like any RQ job but are not Job rows: they refresh observed
state and would otherwise flood the job history.

RQ stores a queued job with the dotted path of its function. When a new version moves a
task's module (the layout move turned `clusters.engine_jobs.probe_engines` into
`clusters.docker.jobs.probe_engines`), the jobs the old scheduler left in Redis name a
path that no longer imports, and a worker would fail each of them once. The scheduler
therefore calls `repair_moved_paths` when it starts: a queued job whose path does not
import is pointed at the periodic task of the same function name (its arguments kept),
or dropped when there is none; one log line says what it did.
"""

import logging
from collections import Counter

from rq.exceptions import DeserializationError
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.utils import import_attribute

logger = logging.getLogger("filrouge.scheduler")

PERIODIC = []


def every(seconds, queue="low", timeout=None):
    def decorator(func):
        PERIODIC.append({"func": func, "interval": seconds, "queue": queue, "timeout": timeout})
        return func

    return decorator


def _imports(path):
    try:
        import_attribute(path)
    except (ImportError, AttributeError, ValueError):
        return False
    return True


def _periodic_paths_by_name():
    """Function name -> the dotted path of the one periodic task with that name."""
    paths = {}
    for task in PERIODIC:
        func = task["func"]
        paths.setdefault(func.__name__, set()).add(f"{func.__module__}.{func.__name__}")
    return {name: found.pop() for name, found in paths.items() if len(found) == 1}


def repair_moved_paths(queues):
    """Point queued and scheduled jobs whose function path no longer imports at the periodic
    task of the same name, or drop them. Returns {(old path, new path or None): count}."""
    moved = _periodic_paths_by_name()
    importable = {}
    done = Counter()
    for queue in queues:
        ids = [*queue.get_job_ids(), *ScheduledJobRegistry(queue=queue).get_job_ids()]
        for job in Job.fetch_many(ids, connection=queue.connection):
            if job is None:
                continue
            try:
                path, bound = job.func_name, job.instance is not None
            except DeserializationError:  # its arguments no longer load either: leave it to the worker
                continue
            if bound or not path:
                continue
            if path not in importable:
                importable[path] = _imports(path)
            if importable[path]:
                continue
            new_path = moved.get(path.rsplit(".", 1)[-1])
            if new_path is None:
                job.delete()
            else:
                job.func_name = new_path
                job.description = job.get_call_string()
                job.save()
            done[(path, new_path)] += 1
    if done:
        logger.warning("Queued jobs from an older version: %s", "; ".join(
            f"{count} {old} -> {new}" if new else f"{count} {old} dropped (no longer imports, no periodic task of that name)"
            for (old, new), count in sorted(done.items(), key=lambda item: item[0][0])))
    return dict(done)
