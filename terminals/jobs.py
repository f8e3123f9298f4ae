"""Periodic work of the terminals: recordings past their retention are deleted."""

import os
from datetime import timedelta

from django.utils import timezone

from panel.jobs.periodic import every

from . import conf


@every(3600, queue="low", timeout=600)
def delete_expired_recordings(now=None):
    """Delete the recording files of sessions older than TERMINAL_RECORDING_RETENTION_DAYS.

    The session rows and their audit entries stay (who, what, when, how long); only the
    file goes, and the row says when. Returns how many files were deleted."""
    from .models import TerminalSession

    cutoff = (now or timezone.now()) - timedelta(days=conf.recording_retention_days())
    deleted = 0
    expired = TerminalSession.objects.filter(ended_at__isnull=False, started_at__lt=cutoff, recording_deleted_at__isnull=True).exclude(recording_path="")
    for session in expired.iterator():
        try:
            os.unlink(session.recording_path)
            deleted += 1
        except FileNotFoundError:
            pass
        TerminalSession.objects.filter(pk=session.pk).update(recording_deleted_at=timezone.now())
    return deleted
