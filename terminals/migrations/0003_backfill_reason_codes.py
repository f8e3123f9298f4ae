"""Sessions that ended before reasons had codes: read the code and parameters back from
the English text, so that their pages show them in the reader's language too. A text that
matches no reason keeps an empty code (pages then show the stored text)."""

import re

from django.db import migrations

# A copy of terminals.reasons.MESSAGES as it was when codes came (a migration does not import app code).
MESSAGES = {
    "exited": "The shell exited.",
    "exited-status": "The shell exited with status %(status)s.",
    "disconnected": "Nobody reconnected within %(seconds)s s; the shell was closed.",
    "idle": "No input for %(minutes)s min; the shell was closed (idle timeout).",
    "max-length": "The session reached its maximum length (%(hours)s h) and was closed.",
    "ended": "An administrator (%(by)s) ended this session.",
    "gone": "The target is gone: %(error)s",
    "failed": "Could not open: %(error)s",
}


def _pattern(msgid):
    parts = re.split(r"%\((\w+)\)s", msgid)
    text = "".join(re.escape(part) if index % 2 == 0 else f"(?P<{part}>.*)" for index, part in enumerate(parts))
    return re.compile(rf"\A{text}\Z", re.DOTALL)


PATTERNS = [(code, _pattern(msgid)) for code, msgid in MESSAGES.items()]


def reason_of(text):
    for code, pattern in PATTERNS:
        found = pattern.match(text)
        if found:
            return code, found.groupdict()
    return "", {}


def backfill(apps, schema_editor):
    TerminalSession = apps.get_model("terminals", "TerminalSession")
    rows = TerminalSession.objects.filter(ended_at__isnull=False, reason_code="").exclude(end_reason="")
    for row in rows.iterator():
        code, params = reason_of(row.end_reason)
        if code:
            TerminalSession.objects.filter(pk=row.pk).update(reason_code=code, reason_params=params)


class Migration(migrations.Migration):
    dependencies = [("terminals", "0002_reason_code")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
