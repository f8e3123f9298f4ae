"""The recorder on its own: asciicast v2 lines, the cap, the echo rule, split secrets, retention."""

import gzip
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from terminals.recording import Recorder


def events(path):
    lines = gzip.open(path, "rt").read().splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


def test_it_writes_asciicast_v2_with_output_input_and_resize(tmp_path):
    recorder = Recorder(tmp_path / "a.cast.gz", 80, 24)
    recorder.output("$ ")
    recorder.input("l")
    recorder.output("l")
    recorder.input("\r")
    recorder.output("\r\nfile\r\n$ ")
    recorder.resize(100, 30)
    recorder.close()
    header, items = events(tmp_path / "a.cast.gz")
    assert header["version"] == 2 and (header["width"], header["height"]) == (80, 24)
    assert [(kind, data) for _, kind, data in items] == [("o", "$ "), ("i", "l"), ("o", "l"), ("i", "\r"), ("o", "\r\nfile\r\n$ "), ("r", "100x30")]
    times = [at for at, _, _ in items]
    assert times == sorted(times)


def test_it_stops_recording_output_past_the_cap_and_says_so(tmp_path):
    recorder = Recorder(tmp_path / "b.cast.gz", 80, 24, max_bytes=1000)
    for _ in range(100):
        recorder.output("y\r\n" * 50)
    recorder.close()
    _, items = events(tmp_path / "b.cast.gz")
    recorded = "".join(data for _, kind, data in items if kind == "o")
    assert len(recorded.encode()) < 1300 and "the rest was not recorded" in recorded
    assert recorder.truncated and recorder.output_bytes == 100 * 150


def test_it_redacts_a_secret_split_across_reads_and_keeps_the_rest_flowing(tmp_path):
    recorder = Recorder(tmp_path / "c.cast.gz", 80, 24, secrets=["hunter2-hunter2"])
    recorder.output("before hunter2-")
    recorder.output("hunter2 after")
    recorder.output(" and more")
    recorder.close()
    _, items = events(tmp_path / "c.cast.gz")
    text = "".join(data for _, kind, data in items if kind == "o")
    assert text == "before [redacted] after and more"
    assert items[0][2] == "before "  # only the part that could start a secret waited


@pytest.mark.django_db
def test_retention_deletes_old_recordings_and_keeps_the_rows(tmp_path, bob, settings):
    from terminals.jobs import delete_expired_recordings
    from terminals.models import TerminalSession

    settings.TERMINAL_RECORDING_RETENTION_DAYS = 30
    old, recent = tmp_path / "old.cast.gz", tmp_path / "recent.cast.gz"
    for path in (old, recent):
        Recorder(path, 80, 24).close()
    now = timezone.now()
    TerminalSession.objects.create(user=bob, kind="server", target_label="x", started_at=now - timedelta(days=31), ended_at=now - timedelta(days=31), recording_path=str(old))
    TerminalSession.objects.create(user=bob, kind="server", target_label="y", started_at=now - timedelta(days=2), ended_at=now - timedelta(days=2), recording_path=str(recent))
    assert delete_expired_recordings() == 1
    assert not old.exists() and recent.exists()
    assert TerminalSession.objects.count() == 2
    assert not TerminalSession.objects.get(target_label="x").has_recording
