"""The websocket end of a terminal: `/ws/terminals/<kind>/?...` (see routing.py).

The handshake is checked before it is accepted: a logged-in session (the session cookie,
through AuthMiddlewareStack), an allowed Origin (security.py), and the user's right to
the object (the kind's `resolve`, built on the models' `visible_to`). A refusal closes
the handshake (HTTP 403), opens nothing, and is written to the audit log.

Messages are JSON. From the page: {"type": "input", "data"}, {"type": "resize", "cols",
"rows"}. To the page: {"type": "session", "id", "label", "readonly"}, {"type":
"output", "data"}, {"type": "ended", "message"}, {"type": "error", "message"}.
A page reconnects to the same shell with `?session=<id>`; a teacher or admin watches with
`?watch=<id>` (read-only).
"""

import asyncio
import json
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext

from panel.jobs.errors import JobFailed

from . import kinds
from .live import LocalClient, control_group, manager
from .reasons import describe

logger = logging.getLogger(__name__)
JOIN_TIMEOUT = 5.0


def client_ip(scope):
    client = scope.get("client") or (None, None)
    return client[0]


@database_sync_to_async
def audit_refusal(user, kind, message, obj=None, ip=None):
    from panel.audit.context import acting_as
    from panel.audit.models import Action
    from panel.audit.recorder import record

    user = user if getattr(user, "is_authenticated", False) else None
    with acting_as(user=user, source="web", ip=ip):
        record(Action.TERMINAL_REFUSED, obj, user=user, after={"terminal": kind, "refused": True}, message=f"Terminal refused ({kind}): {message}")


@database_sync_to_async
def find_session(session_id):
    from .models import TerminalSession

    try:
        return TerminalSession.objects.select_related("user").get(pk=session_id)
    except (TerminalSession.DoesNotExist, ValueError, Exception):  # noqa: BLE001 - a malformed id is "not found"
        return None


def scope_language(scope):
    """The page's language, picked as LocaleMiddleware picks it: the language cookie (the
    page's language switch), then the browser's Accept-Language, then LANGUAGE_CODE."""
    cookie = (scope.get("cookies") or {}).get(settings.LANGUAGE_COOKIE_NAME)
    if cookie:
        try:
            return translation.get_supported_language_variant(cookie)
        except LookupError:
            pass
    headers = dict(scope.get("headers") or [])
    accept = headers.get(b"accept-language", b"").decode("latin1")
    for code, _quality in translation.trans_real.parse_accept_lang_header(accept):
        if code == "*":
            break
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return translation.get_supported_language_variant(settings.LANGUAGE_CODE)


def translate(message, language):
    """A message to the page in its user's language: an `i18n` [msgid, params] part (live.py)
    is translated; the English `message` stays the fallback."""
    i18n = message.get("i18n")
    if not i18n:
        return message
    message = {key: value for key, value in message.items() if key != "i18n"}
    msgid, params = i18n[0], i18n[1] or {}
    with translation.override(language):
        text = gettext(msgid)
        try:
            message["message"] = text % params if params else text
        except (KeyError, TypeError, ValueError):  # a broken translation: keep the English text
            pass
    return message


def _size(params, name, default, low, high):
    try:
        return max(low, min(high, int(params.get(name, default))))
    except (TypeError, ValueError):
        return default


class TerminalConsumer(AsyncWebsocketConsumer):
    terminal = None  # the LiveTerminal when it lives in this process
    remote_session = None  # its id when another process holds it
    readonly = False
    language = "en"

    async def connect(self):
        self.language = scope_language(self.scope)
        with translation.override(self.language):
            await self._connect()

    async def _connect(self):
        user = self.scope.get("user")
        kind_name = self.scope["url_route"]["kwargs"]["kind"]
        params = {key: values[-1] for key, values in parse_qs(self.scope.get("query_string", b"").decode("latin1")).items()}
        self.cols = _size(params, "cols", 80, 10, 500)
        self.rows = _size(params, "rows", 24, 2, 300)
        ip = client_ip(self.scope)
        kind = kinds.get(kind_name)
        if kind is None:
            await self.close()
            return
        if not getattr(user, "is_authenticated", False):
            await audit_refusal(None, kind_name, "not logged in (no session, or it expired)", ip=ip)
            await self.close()
            return
        existing = params.get("session") or params.get("watch")
        if existing:
            await self._join_existing(user, kind, existing, watch="watch" in params, ip=ip)
            return
        try:
            target = await database_sync_to_async(kind.resolve)(user, params)
        except kinds.Refused as refusal:
            await audit_refusal(user, kind_name, refusal.message, refusal.obj, ip=ip)
            await self.close()
            return
        await self.accept()
        try:
            self.terminal = await manager.open(target, user, self.cols, self.rows, source_ip=ip)
        except JobFailed as exc:  # the drivers' typed errors: a message a person can act on
            await self.deliver({"type": "error", "message": str(exc)})
            await self.close(code=4404)
            return
        except Exception:  # noqa: BLE001 - our bug: say so without a traceback
            logger.exception("terminal: opening %s failed", target.label)
            await self.deliver({"type": "error", "message": gettext("The terminal could not open (an internal error was logged).")})
            await self.close(code=4500)
            return
        await self.terminal.join(LocalClient(self, cols=self.cols, rows=self.rows))

    async def _join_existing(self, user, kind, session_id, watch, ip):
        row = await find_session(session_id)
        allowed = row is not None and row.kind == kind.name
        if allowed and watch:
            allowed = await database_sync_to_async(kind.can_watch)(user, row)
        elif allowed:
            allowed = row.user_id == user.pk
        if not allowed:
            await audit_refusal(user, kind.name, f"{'watching' if watch else 'rejoining'} session {str(session_id)[:40]} is not allowed", ip=ip)
            await self.close()
            return
        self.readonly = watch
        await self.accept()
        if row.ended_at is not None:
            await self.deliver({"type": "ended", "message": gettext("This terminal has ended: %(reason)s") % {"reason": describe(row)}})
            await self.close(code=4000)
            return
        local = manager.get(row.pk)
        if local is not None:
            self.terminal = local
            await local.join(LocalClient(self, readonly=watch, cols=self.cols, rows=self.rows))
            return
        # Another web process holds the shell: join through the channel layer.
        self.remote_session = row.pk
        self.joined = asyncio.Event()
        layer = get_channel_layer()
        await layer.group_send(control_group(row.pk), {"type": "terminal.join", "reply_to": self.channel_name, "readonly": watch,
                                                       "cols": self.cols, "rows": self.rows})
        # The owner answers through this consumer's channel, which is read only once connect()
        # returns: wait for it in a task, not here.
        self.join_watch = asyncio.ensure_future(self._expect_join())

    async def _expect_join(self):
        try:
            await asyncio.wait_for(self.joined.wait(), JOIN_TIMEOUT)
        except asyncio.TimeoutError:
            with translation.override(self.language):
                await self.deliver({"type": "ended", "message": gettext("This terminal is no longer held by any web process (it was restarted).")})

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = json.loads(text_data or "{}")
        except ValueError:
            return
        kind = message.get("type")
        if kind == "input" and not self.readonly:
            data = str(message.get("data", ""))[:65536]
            if self.terminal is not None:
                await self.terminal.input(data)
            elif self.remote_session is not None:
                await get_channel_layer().group_send(control_group(self.remote_session), {"type": "terminal.input", "client": self.channel_name, "data": data})
        elif kind == "resize":
            cols, rows = message.get("cols"), message.get("rows")
            if self.terminal is not None:
                await self.terminal.resize(id(self), cols, rows)
            elif self.remote_session is not None:
                await get_channel_layer().group_send(control_group(self.remote_session), {"type": "terminal.resize", "client": self.channel_name, "cols": cols, "rows": rows})

    async def disconnect(self, code):
        if self.terminal is not None:
            await self.terminal.leave(id(self))
        elif self.remote_session is not None:
            await get_channel_layer().group_send(control_group(self.remote_session), {"type": "terminal.leave", "client": self.channel_name})

    async def deliver(self, message):
        """Send one message to the page (called by the LiveTerminal or through the channel layer)."""
        message = translate(message, self.language)
        await self.send(text_data=json.dumps(message, ensure_ascii=False))
        if message.get("type") == "ended":
            await self.close(code=4000)

    async def terminal_deliver(self, event):
        payload = event["payload"]
        if payload.get("type") == "session" and getattr(self, "joined", None) is not None:
            self.joined.set()
        await self.deliver(payload)
