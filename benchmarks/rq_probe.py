"""A no-op RQ job for the RQ-alone baseline: it records when it started."""

import time

from rq import get_current_job


def record_start(key):
    get_current_job().connection.set(key, repr(time.time()))
