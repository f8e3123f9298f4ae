"""Periodic tasks (probes, expiry) declared by apps in their jobs.py and enqueued by the scheduler.

    @every(60, queue="low")
    def probe_servers(): ...

They run on the workers like any RQ job but are not Job rows: they refresh observed
state and would otherwise flood the job history.
"""

PERIODIC = []


def every(seconds, queue="low", timeout=None):
    def decorator(func):
        PERIODIC.append({"func": func, "interval": seconds, "queue": queue, "timeout": timeout})
        return func

    return decorator
