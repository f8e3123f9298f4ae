"""Small helpers shared by every part of the stand-in: time stamps, uids,
JSON-safe copies and random name suffixes.

They live apart so that the store, the REST layer and the controllers agree
on formats (RFC 3339 seconds for ``Time``, microseconds for ``MicroTime``).
"""

from __future__ import annotations

import datetime as _dt
import random
import time
import uuid

# The alphabet Kubernetes uses for generated suffixes (no vowels, no 0/1/3).
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

_rand = random.Random()


def now():
    return time.time()


def rfc3339(ts=None):
    ts = now() if ts is None else ts
    return _dt.datetime.fromtimestamp(int(ts), _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(ts=None):
    ts = now() if ts is None else ts
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text):
    if not text:
        return None
    text = text.replace("Z", "+00:00")
    return _dt.datetime.fromisoformat(text).timestamp()


def new_uid():
    return str(uuid.uuid4())


def random_suffix(length=5):
    return "".join(_rand.choice(SAFE_ALPHABET) for _ in range(length))


def clone(value):
    """Deep copy of a JSON-like value (much faster than ``copy.deepcopy``)."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def dig(obj, *path, default=None):
    for key in path:
        if isinstance(obj, dict):
            obj = obj.get(key)
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return default
        if obj is None:
            return default
    return obj


def ensure(obj, *path):
    """Return the dict at ``path`` inside ``obj``, creating empty dicts on the way."""
    for key in path:
        nxt = obj.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            obj[key] = nxt
        obj = nxt
    return obj


def truthy(value):
    return str(value).lower() in ("true", "1", "yes")


def owner_ref(obj, api_version, kind, controller=True):
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj):
    for ref in dig(obj, "metadata", "ownerReferences", default=[]) or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None
