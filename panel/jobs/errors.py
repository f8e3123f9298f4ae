"""Exceptions that end a job. Drivers raise subclasses of JobFailed with a message a person can act on."""


class JobFailed(Exception):
    """The work said no: a host is down, a health check failed. The job ends `failed`."""


class JobCancelled(BaseException):
    """Raised inside a running job when someone cancels it.

    A BaseException so that a job's own `except Exception` cannot swallow it.
    """


class UnknownJobKind(LookupError):
    pass
