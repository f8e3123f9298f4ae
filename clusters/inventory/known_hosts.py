"""Pinning host keys from an OpenSSH known_hosts file: parse it (plain and hashed host
names, `[host]:port`, comments, `@cert-authority`/`@revoked` markers), match its entries to
servers, and say what pinning would change. Nothing here talks to a host."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field

import paramiko

from clusters.drivers.ssh import SCAN_KEY_TYPES, fingerprint

# Which of several keys of one host to pin: the strongest type first (the one paramiko then asks for).
KEY_PREFERENCE = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
KNOWN_KEY_TYPES = set(KEY_PREFERENCE) | set(SCAN_KEY_TYPES)


class KnownHostsError(ValueError):
    def __init__(self, problems):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class Entry:
    line: int
    names: list = field(default_factory=list)  # plain patterns, e.g. "web01", "[10.0.0.5]:2222"
    hashed: list = field(default_factory=list)  # (salt bytes, digest bytes) of |1|salt|hash names
    key: str = ""  # "type base64"

    def matches(self, name):
        if name in self.names:
            return True
        return any(hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), digest) for salt, digest in self.hashed)


def parse_known_hosts(text, source="known_hosts"):
    """(entries, warnings). Raises KnownHostsError listing every unreadable line."""
    entries, warnings, problems = [], [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if fields[0].startswith("@"):
            warnings.append(f"{source}, line {number}: {fields[0]} entries are not pinned (only plain host keys are).")
            continue
        if len(fields) < 3:
            problems.append(f"{source}, line {number}: expected `host[,host...] key-type base64-key`.")
            continue
        hosts, key_type, blob = fields[0], fields[1], fields[2]
        if key_type not in KNOWN_KEY_TYPES:
            problems.append(f"{source}, line {number}: unknown key type {key_type!r}.")
            continue
        try:
            paramiko.PKey.from_type_string(key_type, base64.b64decode(blob, validate=True))
        except (binascii.Error, ValueError, paramiko.SSHException):
            problems.append(f"{source}, line {number}: the {key_type} key is not valid base64 key data.")
            continue
        entry = Entry(line=number, key=f"{key_type} {blob}")
        for name in hosts.split(","):
            if name.startswith("|1|"):
                try:
                    _empty, _one, salt, digest = name.split("|")
                    entry.hashed.append((base64.b64decode(salt), base64.b64decode(digest)))
                except (ValueError, binascii.Error):
                    problems.append(f"{source}, line {number}: a hashed host name (|1|salt|hash) cannot be read.")
            elif name.startswith("!") or "*" in name or "?" in name:
                warnings.append(f"{source}, line {number}: pattern {name!r} is skipped (only exact host names are matched).")
            elif name:
                entry.names.append(name)
        if entry.names or entry.hashed:
            entries.append(entry)
    if problems:
        raise KnownHostsError(problems)
    return entries, warnings


def names_of(server):
    """How known_hosts names this server: `address` on port 22, `[address]:port` otherwise (and by its name too)."""
    names = []
    for host in (server.address, server.name):
        names.append(host if server.port == 22 else f"[{host}]:{server.port}")
    return list(dict.fromkeys(names))


def plan_pins(entries, servers):
    """[{server, key, fingerprint, action}] for each server a known_hosts entry names.

    action: "pin" (no key pinned yet), "unchanged" (that key is pinned), "replace" (another key is pinned)."""
    rows = []
    for server in servers:
        names = names_of(server)
        keys = [entry.key for entry in entries if any(entry.matches(name) for name in names)]
        if not keys:
            continue
        keys = list(dict.fromkeys(keys))
        pinned = " ".join(server.pinned_host_key.split()[:2])
        if pinned in keys:
            key = pinned
        else:
            key = sorted(keys, key=lambda k: KEY_PREFERENCE.index(k.split()[0]) if k.split()[0] in KEY_PREFERENCE else 99)[0]
        action = "unchanged" if pinned == key else ("replace" if pinned else "pin")
        rows.append({"server": server, "key": key, "key_type": key.split()[0], "fingerprint": fingerprint(key), "action": action,
                     "previous_fingerprint": fingerprint(pinned) if pinned and action == "replace" else ""})
    return rows


def pin_key(server, key, user, how):
    """Pin `key` ("type base64") on `server` (a row locked by the caller); audited with both fingerprints."""
    from django.utils import timezone

    from panel.audit.models import Action
    from panel.audit.recorder import record

    previous = " ".join(server.pinned_host_key.split()[:2])
    key = " ".join(key.split()[:2])
    if previous == key:
        return False
    before = {"pinned_host_key": fingerprint(previous) if previous else ""}
    after = {"pinned_host_key": fingerprint(key)}
    server.pinned_host_key, server.host_key_pinned_at = key, timezone.now()
    server.offered_host_key, server.offered_host_key_at = "", None
    server.save(update_fields=["pinned_host_key", "host_key_pinned_at", "offered_host_key", "offered_host_key_at"])
    record(Action.UPDATE, server, before=before, after=after, user=user,
           message=f"Pinned the host key {key.split()[0]} {after['pinned_host_key']} ({how}; was {before['pinned_host_key'] or 'none'})")
    return True


def scanned_key(job, server, key_fingerprint):
    """The key line of `key_fingerprint` in a succeeded scan job of `server`, or None."""
    if job.kind != "server-scan-host-keys" or job.status != "succeeded" or str(job.target_id) != str(server.pk):
        return None
    for row in (job.result or {}).get("keys") or []:
        if row.get("fingerprint") == key_fingerprint and fingerprint(row.get("key", "")) == key_fingerprint:
            return row["key"]
    return None
