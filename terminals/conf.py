"""Terminal settings, read late so tests can override them."""

from pathlib import Path

from django.conf import settings


def value(name, default):
    return getattr(settings, name, default)


def reconnect_grace():
    return float(value("TERMINAL_RECONNECT_GRACE", 60))


def idle_timeout():
    return float(value("TERMINAL_IDLE_TIMEOUT", 1800))


def max_session():
    return float(value("TERMINAL_MAX_SESSION", 8 * 3600))


def replay_buffer_chars():
    return int(value("TERMINAL_REPLAY_BUFFER", 64 * 1024))


def recording_max_bytes():
    return int(value("TERMINAL_RECORDING_MAX_BYTES", 20 * 1024 * 1024))


def recording_retention_days():
    return float(value("TERMINAL_RECORDING_RETENTION_DAYS", 90))


def recordings_dir():
    return Path(value("TERMINAL_RECORDINGS_DIR", settings.VAR_DIR / "recordings"))


def max_per_process():
    return int(value("TERMINAL_MAX_PER_PROCESS", 200))
