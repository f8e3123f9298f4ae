"""Why a terminal ended: a stable code and its parameters are stored (TerminalSession
.reason_code / .reason_params), and every page renders them through `describe()` in its
user's language. The English text (`end_reason`) is kept for the audit log and for rows
written before codes existed."""

from django.utils.translation import gettext, gettext_noop

# code -> English msgid (translated in locale/*/django.po). Codes are stored: never rename one.
MESSAGES = {
    "exited": gettext_noop("The shell exited."),
    "exited-status": gettext_noop("The shell exited with status %(status)s."),
    "disconnected": gettext_noop("Nobody reconnected within %(seconds)s s; the shell was closed."),
    "idle": gettext_noop("No input for %(minutes)s min; the shell was closed (idle timeout)."),
    "max-length": gettext_noop("The session reached its maximum length (%(hours)s h) and was closed."),
    "ended": gettext_noop("An administrator (%(by)s) ended this session."),
    "gone": gettext_noop("The target is gone: %(error)s"),
    "failed": gettext_noop("Could not open: %(error)s"),
}


def clean_params(params):
    return {key: str(value) for key, value in (params or {}).items()}


def _format(text, params):
    try:
        return text % params if params else text
    except (KeyError, TypeError, ValueError):  # a broken translation or old params
        return None


def english(code, params=None):
    """The English text of a reason (what the audit log and `end_reason` keep)."""
    msgid = MESSAGES.get(code)
    if msgid is None:
        return ""
    return _format(msgid, clean_params(params)) or msgid


def translated(code, params=None):
    """The reason in the active language, or None for an unknown code."""
    msgid = MESSAGES.get(code)
    if msgid is None:
        return None
    params = clean_params(params)
    return _format(gettext(msgid), params) or _format(msgid, params) or msgid


def describe(session):
    """Why `session` ended, in the active language (its stored English text for a reason
    without a code, e.g. a shutdown message)."""
    text = translated(session.reason_code, session.reason_params)
    if text is not None:
        return text
    return gettext(session.end_reason) if session.end_reason else ""
