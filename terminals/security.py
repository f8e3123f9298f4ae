"""The Origin check of terminal websockets: channels' OriginValidator with the hosts of
ALLOWED_HOSTS (what AllowedHostsOriginValidator does), plus an audit line when it refuses
(a page of another site trying to open a shell with the user's cookie)."""

from urllib.parse import urlparse

from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings


class AuditedOriginValidator(OriginValidator):
    async def __call__(self, scope, receive, send):
        origin = None
        for name, value in scope.get("headers", []):
            if name == b"origin":
                try:
                    origin = urlparse(value.decode("latin1"))
                except UnicodeDecodeError:
                    pass
        if self.valid_origin(origin):
            return await self.application(scope, receive, send)
        await _audit(scope, origin.geturl() if origin is not None else "")
        return await WebsocketDenier()(scope, receive, send)


@database_sync_to_async
def _audit(scope, origin):
    from panel.audit.context import acting_as
    from panel.audit.models import Action
    from panel.audit.recorder import record

    user = scope.get("user")
    user = user if getattr(user, "is_authenticated", False) else None
    ip = (scope.get("client") or (None,))[0]
    with acting_as(user=user, source="web", ip=ip):
        record(Action.TERMINAL_REFUSED, None, user=user, after={"path": scope.get("path", "")[:200], "origin": origin[:200], "refused": True},
               message=f"Terminal refused: the page's origin {origin[:100] or '(none)'} is not one of ALLOWED_HOSTS")


def allowed_hosts_origin_validator(application):
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = ["localhost", "127.0.0.1", "[::1]"]
    return AuditedOriginValidator(application, allowed)
