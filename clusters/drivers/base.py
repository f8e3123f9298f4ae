"""Errors every driver raises. They are JobFailed, so a job that meets one ends `failed`
with the message as its last line: write messages a person can act on (what, where,
what to do), never a bare library exception."""

from panel.jobs.errors import JobFailed


class DriverError(JobFailed):
    """Base of every failure to reach or command a remote system."""


class HostUnreachable(DriverError):
    """Connection refused, timed out, name not resolved."""


class HostKeyMismatch(DriverError):
    """The host presented a key other than the pinned one (both fingerprints in the message)."""


class AuthFailed(DriverError):
    """The remote refused our credentials (SSH auth, 401 from an API, registry login)."""


class PermissionRefused(DriverError):
    """Authenticated but not allowed (403, sudo refused)."""


class CommandTimeout(DriverError):
    """A remote command or API call did not answer in time."""


class ClusterApiError(DriverError):
    """A Docker or Kubernetes API answered with an error."""


class NotFound(DriverError):
    """The thing asked for does not exist (image, object, namespace)."""


class Conflict(DriverError):
    """The change clashes with the current state (port taken, field owned by another manager)."""
