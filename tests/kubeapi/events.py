"""Core v1 Events as the controllers, scheduler and kubelet emit them.

Events are named ``<object>.<hex nanoseconds>`` and point at the object with
``involvedObject``; a repeat of the same (object, reason, message) bumps
``count`` and ``lastTimestamp`` instead of adding a new Event, like the
client-go event correlator.
"""

from __future__ import annotations

import threading
import time

from .meta import rfc3339


class EventRecorder:
    def __init__(self, registry):
        self.registry = registry
        self._seen = {}
        self._lock = threading.Lock()

    def record(self, obj, event_type, reason, message, component, host=None, field_path=None):
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        involved = {"kind": obj.get("kind"), "namespace": meta.get("namespace") or None,
                    "name": meta["name"], "uid": meta.get("uid"), "apiVersion": obj.get("apiVersion"),
                    "resourceVersion": meta.get("resourceVersion")}
        if field_path:
            involved["fieldPath"] = field_path
        involved = {k: v for k, v in involved.items() if v is not None}
        key = (meta.get("uid"), event_type, reason, message, component, field_path)
        store = self.registry.store
        with store.lock:
            nso = store.peek("/namespaces", "", namespace)
            if nso is None or nso["metadata"].get("deletionTimestamp"):
                return None
            with self._lock:
                existing_name = self._seen.get(key)
            if existing_name:
                ev = store.get("/events", namespace, existing_name)
                if ev is not None:
                    ev["count"] = ev.get("count", 1) + 1
                    ev["lastTimestamp"] = rfc3339()
                    ev["involvedObject"] = involved
                    return self.registry.store.put("/events", ev)
            now = time.time()
            name = f"{meta['name']}.{int(now * 1e9):x}"
            ev = {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": involved, "reason": reason, "message": message,
                "source": {"component": component, **({"host": host} if host else {})},
                "firstTimestamp": rfc3339(now), "lastTimestamp": rfc3339(now), "count": 1,
                "type": event_type, "eventTime": None,
                "reportingComponent": component, "reportingInstance": host or "",
            }
            created = self.registry.create_internal("/events", ev, manager=component)
            with self._lock:
                self._seen[key] = name
            return created
