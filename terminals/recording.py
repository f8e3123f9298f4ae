"""Asciicast v2 recordings of terminal sessions, gzip-compressed as they are written.

One JSON header line, then one line per event `[seconds, "o"|"i"|"r", data]` (see
asciinema's format). What is kept, and what is not:
- output ("o") always, with the secrets the panel knows replaced by "[redacted]" (a
  secret split across two reads is still caught: the last few characters are held back
  until the next read), up to a size cap per session; past it a note says that the rest
  was not recorded (a `yes` flood cannot fill the disk);
- input ("i") only when the target echoes it straight back. A remote PTY's echo flag
  cannot be read through SSH, a Docker exec or a pod exec, so the echo is the test: a
  key the shell did not echo (a password prompt, `read -s`, a full-screen program) is
  left out. Control keys (Enter, arrows, Ctrl-C) carry no text and are always kept;
- resizes ("r", "COLSxROWS").
"""

import gzip
import io
import json
import re
import time
import zlib

from panel.lib.redaction import Redactor

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")
CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
ECHO_WINDOW = 2.0  # seconds: input not echoed by then is taken as not echoed
FLUSH_EVERY = 2.0


def visible_text(text):
    """The printable characters of a chunk, without escape sequences and control characters."""
    return CONTROLS.sub("", ESCAPES.sub("", text))


class Recorder:
    def __init__(self, path, cols, rows, secrets=(), max_bytes=20 * 1024 * 1024, title="", started_at=None):
        self.path = path
        self.raw = gzip.GzipFile(path, "wb", compresslevel=6)
        self.file = io.TextIOWrapper(self.raw, encoding="utf-8", write_through=False)
        self.started = time.monotonic()
        self.redact = Redactor(secrets)
        self.secrets = sorted(self.redact._secrets, key=len, reverse=True)
        secret_lengths = [len(value) for value in self.secrets]
        self.hold = max(secret_lengths) - 1 if secret_lengths else 0
        self.tail = ""
        self.pending = []  # [(time, text)] typed but not yet seen echoed
        self.max_bytes = max_bytes
        self.recorded_bytes = 0
        self.output_bytes = 0
        self.input_bytes = 0
        self.truncated = False
        self.closed = False
        self._last_flush = self.started
        header = {"version": 2, "width": cols, "height": rows, "timestamp": int(started_at or time.time()),
                  "env": {"TERM": "xterm-256color", "SHELL": "/bin/sh"}}
        if title:
            header["title"] = title
        self.file.write(json.dumps(header) + "\n")

    def now(self):
        return round(time.monotonic() - self.started, 6)

    def _event(self, at, kind, data):
        self.file.write(json.dumps([at, kind, data], ensure_ascii=False) + "\n")

    def output(self, text):
        if self.closed or not text:
            return
        at = self.now()
        self.output_bytes += len(text.encode())
        self._resolve_pending(text, at)
        if self.truncated:
            return
        combined = self.redact(self.tail + text)
        keep = self._secret_prefix_at_end(combined)
        emit, self.tail = (combined[:-keep], combined[-keep:]) if keep else (combined, "")
        if emit:
            self._write_output(at, emit)
        self._maybe_flush()

    def _secret_prefix_at_end(self, text):
        """How many last characters could be the start of a secret (held until the next read)."""
        if not self.hold:
            return 0
        for size in range(min(self.hold, len(text)), 0, -1):
            suffix = text[-size:]
            if any(secret.startswith(suffix) for secret in self.secrets):
                return size
        return 0

    def _write_output(self, at, text):
        size = len(text.encode())
        if self.recorded_bytes + size > self.max_bytes:
            self.truncated = True
            self.tail = ""
            self.pending = []
            limit = f"{self.max_bytes / (1024 * 1024):g} MiB" if self.max_bytes >= 1024 * 1024 else f"{self.max_bytes} bytes"
            self._event(at, "o", f"\r\n\x1b[7m[Filrouge: this session printed more than {limit}; the rest was not recorded]\x1b[0m\r\n")
            return
        self.recorded_bytes += size
        self._event(at, "o", text)

    def input(self, text):
        if self.closed or not text:
            return
        at = self.now()
        self.input_bytes += len(text.encode())
        if self.truncated:
            return
        self._expire_pending(at)
        if not visible_text(text):
            if not self.pending:
                self._event(at, "i", text)
            else:
                self.pending.append((at, text))
            return
        self.pending.append((at, text))

    def _expire_pending(self, at):
        while self.pending and at - self.pending[0][0] > ECHO_WINDOW:
            self.pending.pop(0)

    def _resolve_pending(self, output, at):
        if not self.pending:
            return
        self._expire_pending(at)
        seen = visible_text(output)
        while self.pending:
            typed_at, typed = self.pending[0]
            wanted = visible_text(typed)
            if not wanted:  # a control key between echoed keys
                self.pending.pop(0)
                if not self.truncated:
                    self._event(typed_at, "i", self.redact(typed))
                continue
            if not seen:  # this output is used up: the rest may be echoed by the next one
                break
            if seen.startswith(wanted):
                self.pending.pop(0)
                seen = seen[len(wanted):]
                if not self.truncated:
                    self._event(typed_at, "i", self.redact(typed))
                continue
            # Not echoed: whatever was typed before this output is not recorded.
            self.pending = []
            break

    def resize(self, cols, rows):
        if self.closed or self.truncated:
            return
        self._event(self.now(), "r", f"{cols}x{rows}")

    def _maybe_flush(self):
        moment = time.monotonic()
        if moment - self._last_flush >= FLUSH_EVERY:
            self.flush()

    def flush(self):
        """Make what is written so far readable from the file (a sync flush of the gzip stream)."""
        if not self.closed:
            self._last_flush = time.monotonic()
            self.file.flush()
            self.raw.flush(zlib.Z_SYNC_FLUSH)

    def close(self):
        if self.closed:
            return
        if self.tail and not self.truncated:
            self._write_output(self.now(), self.tail)
        self.tail = ""
        self.closed = True
        self.file.close()


def read_events(path):
    """(header, [events]) of a recording (gzip or plain)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    header = json.loads(lines[0]) if lines else {}
    return header, [json.loads(line) for line in lines[1:] if line.strip()]
