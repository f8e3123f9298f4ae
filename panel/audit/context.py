"""Who is acting right now: set per request by the middleware, per command by `acting_as`.

Changes to audited models are recorded only inside such a context, so that internal
bookkeeping (probes refreshing observed state) does not flood the audit log.
"""

import contextvars
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Actor:
    source: str  # "web", "api", "cli", "job"
    request: object = None  # the Django request; its user is read late (DRF authenticates in the view)
    user: object = None
    ip: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def current_user(self):
        user = self.user
        if user is None and self.request is not None:
            user = getattr(self.request, "user", None)
        if user is not None and not getattr(user, "is_authenticated", False):
            return None
        return user


_actor = contextvars.ContextVar("filrouge_audit_actor", default=None)


def current_actor():
    return _actor.get()


def current_request_id():
    actor = _actor.get()
    return actor.request_id if actor else None


@contextmanager
def acting_as(user=None, source="cli", ip=None, request=None, request_id=None):
    actor = Actor(source=source, request=request, user=user, ip=ip, request_id=request_id or uuid.uuid4().hex)
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)
