"""Living through a service going away (Redis or the database) without flooding the log.

Every long-running process of the panel (worker, scheduler, a job's watcher thread)
talks to Redis and PostgreSQL in a loop. When one of them goes away the loop must not
die, must not spin, and must not write a traceback per attempt: it waits with a growing
(but short, so that work resumes within seconds of the service's return) delay, says
once that the service is away, at most once per period that it still is, and once that
it came back.
"""

import logging
import time

import redis.exceptions
from django.conf import settings
from django.db import InterfaceError, OperationalError

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
DATABASE_ERRORS = (OperationalError, InterfaceError)


class Outage:
    """One dependency that may be away. `failed(exc)` returns how long to wait before trying again."""

    def __init__(self, what, logger, first_wait=0.25, max_wait=None, log_period=None, clock=time.monotonic):
        self.what = what
        self.logger = logger
        self.first_wait = first_wait
        self.max_wait = max_wait if max_wait is not None else settings.OUTAGE_RETRY_MAX_WAIT
        self.log_period = log_period if log_period is not None else settings.OUTAGE_LOG_PERIOD
        self.clock = clock
        self.since = None
        self.attempts = 0
        self._wait = first_wait
        self._last_log = None

    @property
    def down(self):
        return self.since is not None

    def failed(self, exc):
        now = self.clock()
        if self.since is None:
            self.since, self.attempts, self._wait, self._last_log = now, 0, self.first_wait, now
            self.logger.warning("%s is unreachable (%s); retrying quietly until it answers", self.what, _short(exc))
        elif now - self._last_log >= self.log_period:
            self._last_log = now
            self.logger.warning("%s is still unreachable after %.0f s (%s)", self.what, now - self.since, _short(exc))
        self.attempts += 1
        wait, self._wait = self._wait, min(self._wait * 2, self.max_wait)
        return wait

    def recovered(self):
        """Call after a success; returns the outage's length in seconds if one just ended, else None."""
        if self.since is None:
            return None
        lasted = self.clock() - self.since
        self.logger.warning("%s answers again after %.1f s", self.what, lasted)
        self.since = None
        return lasted


def _short(exc):
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
