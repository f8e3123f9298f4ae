"""Container logs that tests write and clients read through ``pods/log``.

Each (namespace, pod, container) keeps timestamped lines; readers can ask for
``tailLines``, ``sinceSeconds``, ``limitBytes``, ``timestamps`` and follow the
stream as new lines are appended (``follow=true``), which ends when the pod
goes away or the server stops.
"""

from __future__ import annotations

import datetime as dt
import threading
import time


class PodLogs:
    def __init__(self):
        self._lines = {}
        self._cond = threading.Condition()
        self.closed = False

    def append(self, namespace, pod, container, text):
        now = time.time()
        parts = text.splitlines()
        with self._cond:
            buf = self._lines.setdefault((namespace, pod, container), [])
            buf.extend((now, line) for line in parts)
            self._cond.notify_all()

    def forget(self, namespace, pod):
        with self._cond:
            for key in [k for k in self._lines if k[:2] == (namespace, pod)]:
                del self._lines[key]
            self._cond.notify_all()

    def close(self):
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    @staticmethod
    def _fmt(entry, timestamps):
        ts, line = entry
        if timestamps:
            stamp = dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
            return f"{stamp} {line}\n"
        return line + "\n"

    def read(self, namespace, pod, container, tail=None, since=None, timestamps=False, limit_bytes=None):
        with self._cond:
            entries = list(self._lines.get((namespace, pod, container), []))
        if since is not None:
            entries = [e for e in entries if e[0] >= time.time() - since]
        if tail is not None:
            entries = entries[-tail:] if tail > 0 else []
        text = "".join(self._fmt(e, timestamps) for e in entries)
        data = text.encode()
        return data[:limit_bytes] if limit_bytes is not None else data

    def follow(self, namespace, pod, container, still_there, tail=None, since=None, timestamps=False):
        """Yield existing then new lines (bytes); b"" now and then so the caller can check the client."""
        key = (namespace, pod, container)
        first = self.read(namespace, pod, container, tail, since, timestamps)
        if first:
            yield first
        with self._cond:
            sent = len(self._lines.get(key, []))
        while True:
            with self._cond:
                lines = self._lines.get(key, [])
                if len(lines) <= sent and not self.closed:
                    self._cond.wait(0.5)
                    lines = self._lines.get(key, [])
                new, sent = lines[sent:], max(sent, len(lines))
                closed = self.closed
            if new:
                yield "".join(self._fmt(e, timestamps) for e in new).encode()
            else:
                yield b""
            if closed or not still_there():
                return
