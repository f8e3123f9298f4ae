"""Bearer-token authentication: the admin token, ad-hoc user tokens, and
ServiceAccount tokens issued through the TokenRequest API.

ServiceAccount tokens are real RS256-signed JWTs with the claims a cluster
puts in them (``iss``, ``sub``, ``aud``, ``exp``, ``kubernetes.io``), so code
that decodes them (to show an expiry, say) behaves as on a cluster.  A token
stops working when it expires, when its ServiceAccount (or bound object) is
deleted, or when a test calls ``expire_token``.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass
class Identity:
    username: str
    groups: tuple = ()
    uid: str = ""
    extra: dict = field(default_factory=dict)

    def as_user_info(self):
        info = {"username": self.username, "groups": list(self.groups)}
        if self.uid:
            info["uid"] = self.uid
        if self.extra:
            info["extra"] = {k: list(v) for k, v in self.extra.items()}
        return info


@dataclass
class TokenRecord:
    identity: Identity
    expires: float | None = None
    sa_ref: tuple | None = None          # (namespace, name, uid)
    bound_ref: tuple | None = None       # (resource key, namespace, name, uid)
    revoked: bool = False


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Authenticator:
    def __init__(self):
        self._tokens = {}
        self._lock = threading.Lock()
        self._key = None

    def add_static(self, token, identity, expires=None):
        with self._lock:
            self._tokens[token] = TokenRecord(identity, expires)
        return token

    def new_user_token(self, username, groups=()):
        token = secrets.token_urlsafe(24)
        groups = tuple(groups) + (("system:authenticated",) if "system:authenticated" not in groups else ())
        return self.add_static(token, Identity(username, groups))

    def _signing_key(self):
        if self._key is None:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self._key

    def issue_sa_token(self, namespace, sa_name, sa_uid, expiration_seconds, audiences, bound=None):
        now = int(time.time())
        exp = now + int(expiration_seconds)
        claims = {
            "aud": audiences, "exp": exp, "iat": now, "nbf": now, "iss": ISSUER,
            "jti": secrets.token_hex(16),
            "sub": f"system:serviceaccount:{namespace}:{sa_name}",
            "kubernetes.io": {"namespace": namespace,
                              "serviceaccount": {"name": sa_name, "uid": sa_uid}},
        }
        if bound:
            kind = {"/pods": "pod", "/secrets": "secret", "/nodes": "node"}.get(bound[0], "object")
            claims["kubernetes.io"][kind] = {"name": bound[2], "uid": bound[3]}
        header = {"alg": "RS256", "kid": "standin"}
        signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
        sig = self._signing_key().sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        token = signing_input + "." + _b64(sig)
        identity = Identity(f"system:serviceaccount:{namespace}:{sa_name}",
                            ("system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                             "system:authenticated"),
                            uid=sa_uid,
                            extra={"authentication.kubernetes.io/credential-id": [f"JTI={claims['jti']}"]})
        with self._lock:
            self._tokens[token] = TokenRecord(identity, exp, (namespace, sa_name, sa_uid), bound)
        return token, exp

    def expire(self, token):
        with self._lock:
            rec = self._tokens.get(token)
            if rec:
                rec.revoked = True

    def authenticate(self, token, store):
        """Identity for ``token``, or None (unknown, expired, revoked, orphaned)."""
        with self._lock:
            rec = self._tokens.get(token)
        if rec is None or rec.revoked:
            return None
        if rec.expires is not None and time.time() >= rec.expires:
            return None
        if rec.sa_ref:
            ns, name, uid = rec.sa_ref
            sa = store.peek("/serviceaccounts", ns, name)
            if sa is None or sa["metadata"].get("uid") != uid:
                return None
        if rec.bound_ref:
            key, ns, name, uid = rec.bound_ref
            obj = store.peek(key, ns, name)
            if obj is None or obj["metadata"].get("uid") != uid:
                return None
        return rec.identity
