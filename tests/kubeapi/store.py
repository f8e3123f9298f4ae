"""In-memory object storage with one global, monotonic resourceVersion and a
bounded history of changes for watches.

Like etcd behind the real server, every write gets the next resourceVersion
and is appended to a change log; a watch replays the log from the version it
was given and then waits on a condition variable for more.  Versions older
than the retained window answer ``410 Expired`` ("too old resource version").
Stored snapshots are never mutated, so the log can share them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .errors import gone
from .meta import clone


@dataclass
class Change:
    rv: int
    type: str            # ADDED | MODIFIED | DELETED
    key: str             # resource type key, e.g. "apps/deployments"
    namespace: str
    obj: dict            # snapshot after the change (the last state for DELETED)
    prev: dict | None    # snapshot before the change


class Store:
    def __init__(self, history_limit=10000):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._rv = 1000
        self._objects = {}          # key -> {(ns, name): obj}
        self._history = []
        self._first_index = 0       # absolute index of _history[0]
        self.history_limit = history_limit
        self.closed = False

    # --- versions -------------------------------------------------------------
    @property
    def current_rv(self):
        return self._rv

    def _bump(self):
        self._rv += 1
        return self._rv

    # --- reads ------------------------------------------------------------------
    def get(self, key, ns, name):
        with self.lock:
            obj = self._objects.get(key, {}).get((ns or "", name))
            return clone(obj) if obj is not None else None

    def peek(self, key, ns, name):
        """Read without copying; the caller must not mutate the result."""
        return self._objects.get(key, {}).get((ns or "", name))

    def items(self, key, ns=None):
        """Snapshots (not copies) sorted like etcd keys; do not mutate them."""
        with self.lock:
            bucket = self._objects.get(key, {})
            keys = sorted(k for k in bucket if ns is None or k[0] == ns)
            return [bucket[k] for k in keys]

    def list(self, key, ns=None):
        return [clone(o) for o in self.items(key, ns)]

    def namespaces_in_use(self, ns):
        with self.lock:
            return [key for key, bucket in self._objects.items() if any(k[0] == ns for k in bucket)]

    # --- writes -----------------------------------------------------------------
    def put(self, key, obj):
        """Create or replace ``obj``; assigns the next resourceVersion. Returns a copy."""
        with self.lock:
            meta = obj["metadata"]
            ident = (meta.get("namespace") or "", meta["name"])
            bucket = self._objects.setdefault(key, {})
            prev = bucket.get(ident)
            rv = self._bump()
            snapshot = clone(obj)
            snapshot["metadata"]["resourceVersion"] = str(rv)
            bucket[ident] = snapshot
            self._record(Change(rv, "MODIFIED" if prev is not None else "ADDED", key, ident[0], snapshot, prev))
            return clone(snapshot)

    def remove(self, key, ns, name):
        with self.lock:
            bucket = self._objects.get(key, {})
            prev = bucket.pop((ns or "", name), None)
            if prev is None:
                return None
            rv = self._bump()
            final = clone(prev)
            final["metadata"]["resourceVersion"] = str(rv)
            self._record(Change(rv, "DELETED", key, ns or "", final, prev))
            return clone(final)

    def _record(self, change):
        self._history.append(change)
        if len(self._history) > self.history_limit:
            drop = len(self._history) - self.history_limit // 2
            del self._history[:drop]
            self._first_index += drop
        self.changed.notify_all()

    def compact(self):
        """Forget all history (tests use it to provoke ``410 Gone``)."""
        with self.lock:
            self._first_index += len(self._history)
            self._history = []

    # --- watch support -----------------------------------------------------------
    def start_index(self, rv):
        """Absolute history index of the first change after ``rv``."""
        with self.lock:
            oldest = self._history[0].rv if self._history else self._rv + 1
            if rv >= self._rv:
                return self._first_index + len(self._history)
            if rv + 1 < oldest:
                raise gone(f"too old resource version: {rv} ({self._rv})")
            return self._first_index + (rv + 1 - oldest)

    def changes_from(self, index):
        """(changes, next_index); raises 410 if ``index`` fell out of the window."""
        with self.lock:
            if index < self._first_index:
                raise gone(f"too old resource version: {index} ({self._rv})")
            start = index - self._first_index
            out = self._history[start:]
            return out, index + len(out)

    def wait_past(self, index, timeout):
        """Block until a change at or after ``index`` exists, or ``timeout``."""
        with self.changed:
            if self.closed or self._first_index + len(self._history) > index:
                return
            self.changed.wait(timeout)

    def wait(self, timeout):
        with self.changed:
            if not self.closed:
                self.changed.wait(timeout)

    def close(self):
        with self.changed:
            self.closed = True
            self.changed.notify_all()
