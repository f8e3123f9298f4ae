"""Live terminals in this web process: one shell with a list of clients (terminado's shape).

A `LiveTerminal` holds the driver session (SSH channel, Docker exec, pod exec), reads it
in a thread, and fans the output out to every client: a websocket consumer of this
process directly, or of another process through the channel layer (each terminal's owner
listens on the group `terminal.<id>`, so a reconnect or a watcher that lands on another
web process still reaches the same shell). A small buffer of recent output is replayed to
a client that joins late or reconnects; the size follows the smallest writing client;
when the last client goes, the shell waits `TERMINAL_RECONNECT_GRACE` seconds for a
reconnect before it is closed. Idle and maximum-length limits end it too.

This is the one place where a web process talks to remote machines (DESIGN.md), and it
does so only through the drivers' session interface.
"""

import asyncio
import codecs
import concurrent.futures
import contextvars
import json
import logging
import os
import socket
import threading
import time

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone
from django.utils.translation import gettext


from . import conf, reasons
from .recording import Recorder

logger = logging.getLogger(__name__)
PROCESS = f"{socket.gethostname()}:{os.getpid()}"
READ_BATCH = 64 * 1024


def control_group(session_id):
    return f"terminal.{str(session_id).replace('-', '')}"


class LocalClient:
    """A websocket consumer of this process."""

    def __init__(self, consumer, readonly=False, cols=80, rows=24):
        self.consumer = consumer
        self.key = id(consumer)
        self.readonly = readonly
        self.cols, self.rows = cols, rows

    async def deliver(self, message):
        await self.consumer.deliver(message)


class RemoteClient:
    """A websocket consumer of another web process, reached through its channel."""

    def __init__(self, channel, readonly=False, cols=80, rows=24):
        self.key = channel
        self.channel = channel
        self.readonly = readonly
        self.cols, self.rows = cols, rows

    async def deliver(self, message):
        await get_channel_layer().send(self.channel, {"type": "terminal.deliver", "payload": message})


class LiveTerminal:
    def __init__(self, row, target, user, cols, rows):
        self.row = row
        self.id = row.pk
        self.target = target
        self.user = user
        self.cols, self.rows = cols, rows
        self.clients = {}
        self.buffer = ""
        self.started = time.monotonic()
        self.last_activity = self.started
        self.alone_since = None
        self.session = None
        self.recorder = None
        self.ended = False
        self.end_reason = ""
        self.writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"terminal-{str(self.id)[:8]}")
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.tasks = []
        self.channel = None

    # ---- life ---------------------------------------------------------------------

    async def start(self):
        loop = asyncio.get_running_loop()
        self.loop = loop
        # The drivers' messages follow the opener's language (the consumer's translation.override).
        context = contextvars.copy_context()
        self.session = await loop.run_in_executor(self.writer, context.run, self.target.open, self.cols, self.rows)
        directory = conf.recordings_dir() / timezone.now().strftime("%Y/%m")
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.id}.cast.gz"
        self.recorder = Recorder(path, self.cols, self.rows, secrets=self.target.secrets, max_bytes=conf.recording_max_bytes(),
                                 title=f"{self.row.username} → {self.target.label}")
        self.row.recording_path = str(path)
        self.queue = asyncio.Queue()
        threading.Thread(target=self._read_loop, name=f"terminal-read-{str(self.id)[:8]}", daemon=True).start()
        layer = get_channel_layer()
        if layer is not None:
            self.channel = await layer.new_channel()
            await layer.group_add(control_group(self.id), self.channel)
            self.tasks.append(asyncio.ensure_future(self._control_loop()))
        self.tasks.append(asyncio.ensure_future(self._pump()))
        self.tasks.append(asyncio.ensure_future(self._watchdog()))

    def _read_loop(self):
        session, loop, queue = self.session, self.loop, self.queue
        try:
            while True:
                data = session.read(READ_BATCH)
                if not data:
                    break
                loop.call_soon_threadsafe(queue.put_nowait, data)
        except Exception:  # noqa: BLE001 - a broken transport ends the terminal like an exit
            logger.exception("terminal %s: reading failed", self.id)
        finally:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except RuntimeError:  # the loop is closed: the process is stopping
                pass

    async def _pump(self):
        while True:
            data = await self.queue.get()
            chunks, ended = [], data is None
            if data is not None:
                chunks.append(data)
                size = len(data)
                while size < READ_BATCH and not self.queue.empty():
                    more = self.queue.get_nowait()
                    if more is None:
                        ended = True
                        break
                    chunks.append(more)
                    size += len(more)
            if chunks:
                text = self.decoder.decode(b"".join(chunks))
                if text:
                    self._keep(text)
                    self.recorder.output(text)
                    await self._fan_out({"type": "output", "data": text})
            if ended:
                status = await self.loop.run_in_executor(self.writer, lambda: self.session.exit_status)
                self.row.exit_status = status
                if status in (None, 0):
                    await self.end("exited", reason="exited")
                else:
                    await self.end("exited-status", reason="exited", params={"status": status})
                return

    def _keep(self, text):
        limit = conf.replay_buffer_chars()
        self.buffer = (self.buffer + text)[-limit:]

    async def _fan_out(self, message):
        for client in list(self.clients.values()):
            try:
                await client.deliver(message)
            except Exception:  # noqa: BLE001 - one broken client must not stop the others
                logger.info("terminal %s: a client could not be reached (it left); dropping it", self.id)
                self.clients.pop(client.key, None)
                self._note_alone()

    async def _watchdog(self):
        grace, idle, longest = conf.reconnect_grace(), conf.idle_timeout(), conf.max_session()
        while not self.ended:
            await asyncio.sleep(min(1.0, grace / 4 if grace else 1.0))
            now = time.monotonic()
            if self.alone_since is not None and now - self.alone_since >= grace:
                await self.end("disconnected", reason="disconnected",
                               params={"seconds": f"{grace:g}"})
            elif now - self.last_activity >= idle:
                await self.end("idle", reason="idle",
                               params={"minutes": f"{idle / 60:g}"})
            elif now - self.started >= longest:
                await self.end("max-length", reason="max-length",
                               params={"hours": f"{longest / 3600:g}"})

    async def _control_loop(self):
        layer = get_channel_layer()
        while not self.ended:
            try:
                message = await layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis hiccup: try again shortly
                logger.warning("terminal %s: the channel layer did not answer", self.id)
                await asyncio.sleep(0.5)
                continue
            kind = message.get("type")
            if kind == "terminal.join":
                client = RemoteClient(message["reply_to"], bool(message.get("readonly")), message.get("cols", 80), message.get("rows", 24))
                await self.join(client)
            elif kind == "terminal.leave":
                await self.leave(message.get("client"))
            elif kind == "terminal.input":
                client = self.clients.get(message.get("client"))
                if client is not None and not client.readonly:
                    await self.input(message.get("data", ""))
            elif kind == "terminal.resize":
                await self.resize(message.get("client"), message.get("cols"), message.get("rows"))
            elif kind == "terminal.end":
                await self.end("ended", reason="ended", by=message.get("by", ""),
                               params={"by": message.get("by", "?")})

    # ---- clients ------------------------------------------------------------------

    async def join(self, client):
        await client.deliver({"type": "session", "id": str(self.id), "label": self.target.label, "readonly": client.readonly})
        if self.buffer:
            await client.deliver({"type": "output", "data": self.buffer, "replay": True})
        self.clients[client.key] = client
        if not client.readonly:  # a watcher alone does not keep the shell from closing
            self.alone_since = None
        await self._fit()

    async def leave(self, key):
        if self.clients.pop(key, None) is not None:
            self._note_alone()
            await self._fit()

    def _note_alone(self):
        if not any(not client.readonly for client in self.clients.values()) and self.alone_since is None:
            self.alone_since = time.monotonic()

    async def input(self, data):
        if self.ended or not data:
            return
        self.last_activity = time.monotonic()
        self.recorder.input(data)
        encoded = data.encode()
        try:
            await self.loop.run_in_executor(self.writer, self.session.write, encoded)
        except Exception as exc:  # noqa: BLE001 - the target is gone: say so and end
            await self.end("gone", reason="gone", params={"error": str(exc)})

    async def resize(self, key, cols, rows):
        client = self.clients.get(key)
        try:
            cols, rows = max(10, min(500, int(cols))), max(2, min(300, int(rows)))
        except (TypeError, ValueError):
            return
        if client is not None:
            client.cols, client.rows = cols, rows
            await self._fit()

    async def _fit(self):
        """The shell's size follows the smallest client (writers first: a watcher's small
        window does not squeeze the student's terminal)."""
        writers = [client for client in self.clients.values() if not client.readonly] or list(self.clients.values())
        if not writers or self.ended:
            return
        cols, rows = min(client.cols for client in writers), min(client.rows for client in writers)
        if (cols, rows) != (self.cols, self.rows):
            self.cols, self.rows = cols, rows
            self.recorder.resize(cols, rows)
            await self.loop.run_in_executor(self.writer, self.session.resize, cols, rows)

    # ---- the end --------------------------------------------------------------------

    async def end(self, code, reason="ended", by="", params=None):
        """End the shell. `code` names a reason of terminals.reasons.MESSAGES (with its
        `params`); any other text is an English message kept as is (a shutdown). The
        database stores the code and params (pages render them in their reader's language)
        and the English text (the audit log); each live client gets it in its user's
        language (the consumer translates the `i18n` part, see consumers.translate)."""
        if self.ended:
            return
        params = reasons.clean_params(params)
        if code in reasons.MESSAGES:
            message = reasons.english(code, params)
            i18n = [reasons.MESSAGES[code], params]
        else:
            message, i18n, code, params = code, [code, {}], "", {}
        self.ended = True
        self.end_reason = message
        manager.forget(self)
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        try:
            await self.loop.run_in_executor(self.writer, self.session.close)
        except Exception:  # noqa: BLE001 - closing a broken session
            logger.warning("terminal %s: closing the session failed", self.id, exc_info=True)
        self.recorder.close()
        self.writer.shutdown(wait=False)
        layer = get_channel_layer()
        if layer is not None and self.channel:
            try:
                await layer.group_discard(control_group(self.id), self.channel)
            except Exception:  # noqa: BLE001
                pass
        await database_sync_to_async(self._save_end)(message, reason, by, code, params)
        await self._fan_out({"type": "ended", "message": message, "reason": reason, "i18n": i18n})
        self.clients.clear()

    def _save_end(self, message, reason, by, code="", params=None):
        from panel.audit.models import Action
        from panel.audit.recorder import record

        row = self.row
        row.ended_at = timezone.now()
        row.end_reason = message[:300]
        row.reason_code, row.reason_params = code, params or {}
        row.ended_by = by[:150]
        row.cols, row.rows = self.cols, self.rows
        row.output_bytes = self.recorder.output_bytes
        row.input_bytes = self.recorder.input_bytes
        row.recording_truncated = self.recorder.truncated
        try:
            row.recording_bytes = os.path.getsize(row.recording_path)
        except OSError:
            row.recording_bytes = 0
        row.save()
        action = Action.TERMINAL_STOP if reason == "ended" else Action.TERMINAL_END
        seconds = (row.ended_at - row.started_at).total_seconds()
        record(action, self.target.obj, user=self.user if reason != "ended" else None,
               after={"terminal_session": str(row.pk), "duration_seconds": round(seconds, 1), "output_bytes": row.output_bytes,
                      "input_bytes": row.input_bytes, "recording_bytes": row.recording_bytes, "reason": reason, "ended_by": by},
               message=f"Terminal ended ({self.target.label}): {message}")


class Manager:
    """The live terminals of this process, by session id."""

    def __init__(self):
        self.terminals = {}

    def get(self, session_id):
        return self.terminals.get(str(session_id))

    def forget(self, terminal):
        self.terminals.pop(str(terminal.id), None)

    def count(self):
        return len(self.terminals)

    async def open(self, target, user, cols, rows, source_ip=None):
        """Record the session, open the shell, and keep it; raises the driver's error."""
        if self.count() >= conf.max_per_process():
            from panel.jobs.errors import JobFailed

            raise JobFailed(gettext("This web process already holds %(count)s terminals (TERMINAL_MAX_PER_PROCESS); close one or try again later.")
                            % {"count": self.count()})
        row = await database_sync_to_async(_create_row)(target, user, cols, rows, source_ip)
        terminal = LiveTerminal(row, target, user, cols, rows)
        try:
            await terminal.start()
        except BaseException as exc:
            await database_sync_to_async(_fail_row)(row, target, user, exc)
            if terminal.session is not None:
                terminal.session.close()
            terminal.writer.shutdown(wait=False)
            raise
        await database_sync_to_async(row.save)(update_fields=["recording_path"])
        self.terminals[str(row.pk)] = terminal
        return terminal

    async def end_all(self, message):
        for terminal in list(self.terminals.values()):
            await terminal.end(message, reason="shutdown")


def _create_row(target, user, cols, rows, source_ip):
    from panel.audit.context import acting_as
    from panel.audit.models import Action
    from panel.audit.recorder import record

    from .models import TerminalSession

    row = TerminalSession(user=user, username=user.username, kind=target.kind, target_label=target.label[:300], target_ref=target.ref,
                          object_type=target.obj._meta.label_lower if target.obj is not None else "",
                          object_id=str(getattr(target.obj, "pk", "") or ""), cols=cols, rows=rows, process=PROCESS)
    with acting_as(user=user, source="web", ip=source_ip):
        row.audit_event = record(Action.TERMINAL_OPEN, target.obj, after={"terminal_session": str(row.pk), "target": target.label, "size": f"{cols}x{rows}"},
                                 message=f"Terminal opened: {target.label}")
    row.save()
    return row


def _fail_row(row, target, user, exc):
    from panel.audit.models import Action
    from panel.audit.recorder import record

    message = getattr(exc, "args", [""])[0] if getattr(exc, "args", None) else type(exc).__name__
    row.ended_at = timezone.now()
    row.reason_code, row.reason_params = "failed", {"error": str(message)}
    row.end_reason = reasons.english("failed", row.reason_params)[:300]
    row.save()
    record(Action.TERMINAL_FAILED, target.obj, user=user, after={"terminal_session": str(row.pk), "reason": "failed"},
           message=f"Terminal could not open ({target.label}): {message}")


manager = Manager()


def dumps(message):
    return json.dumps(message, ensure_ascii=False)
