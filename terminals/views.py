"""Terminal pages: open a terminal, list sessions, replay a recording, end a live one.

The pages only read the database (the shell is opened by the websocket consumer); the
permission of the page is the same `resolve` the handshake runs again."""

import gzip
from urllib.parse import urlencode

from asgiref.sync import async_to_sync
from csp.decorators import csp_update
from channels.layers import get_channel_layer
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from panel.accounts.access import get_visible_or_404, role_required
from panel.audit.models import Action
from panel.audit.recorder import record

from . import kinds
from .live import control_group
from .models import TerminalSession

PARAMS = ("server", "become", "cluster", "container", "namespace", "pod", "environment", "member", "isolated")


def terminal_context(user, kind_name, params, title=None):
    """What a page needs to show a terminal for these parameters (or PermissionDenied/404)."""
    kind = kinds.get(kind_name)
    if kind is None:
        raise Http404("No such terminal kind")
    try:
        target = kind.resolve(user, params)
    except kinds.Refused as refusal:
        raise PermissionDenied(refusal.message) from None
    query = urlencode({key: value for key, value in params.items() if key in PARAMS and value not in (None, "")})
    return {"ws_path": f"/ws/terminals/{kind_name}/?{query}", "label": target.label, "title": title or target.label,
            "storage_key": f"terminal:{kind_name}:{query}", "choices": target.choices}


@login_required
@require_GET
def open_terminal(request, kind):
    params = {key: request.GET.get(key) for key in PARAMS if request.GET.get(key) is not None}
    context = terminal_context(request.user, kind, params)
    # A pod's container is chosen on the page: the containers the last observation stored
    # (the default one preselected), or a free name for a pod not observed yet.
    picker = None
    if kind == "pod":
        choices = context["choices"]
        picker = {**{key: params.get(key, "") for key in ("cluster", "namespace", "pod")},
                  "containers": choices.get("containers") or [], "container": choices.get("container", params.get("container", ""))}
    return render(request, "terminals/terminal.html", {"terminal": context, "container_picker": picker})


@login_required
@require_GET
def session_list(request):
    sessions = TerminalSession.objects.visible_to(request.user).select_related("user")
    live_only = request.GET.get("live") == "1"
    if live_only:
        sessions = sessions.live()
    # ?kind=lab&object=12: the sessions opened into one object (a lab environment), for whoever may see it.
    kind_name, object_id = request.GET.get("kind", ""), request.GET.get("object", "")
    if object_id:
        kind = kinds.get(kind_name)
        if kind is None or not kind.object_visible(request.user, object_id):
            raise Http404("No such object")
        sessions = sessions.filter(kind=kind_name, object_id=object_id)
    page = Paginator(sessions, 50).get_page(request.GET.get("page"))
    return render(request, "terminals/session_list.html", {"page": page, "sessions": page.object_list, "live_only": live_only,
                                                           "filtered": bool(object_id)})


@login_required
@require_GET
# The player's terminal emulator is WebAssembly: this page alone may compile it
# ('wasm-unsafe-eval' allows WebAssembly, not JavaScript eval).
@csp_update({"script-src": ["'wasm-unsafe-eval'"]})
def replay(request, pk):
    session = get_visible_or_404(TerminalSession.objects.select_related("user", "audit_event"), request.user, pk=pk)
    watch = None
    if session.is_live:
        kind = kinds.get(session.kind)
        if kind is not None and session.user_id != request.user.pk and kind.can_watch(request.user, session):
            watch = {"ws_path": f"/ws/terminals/{session.kind}/?watch={session.pk}", "label": session.target_label,
                     "title": session.target_label, "storage_key": "", "readonly": True}
    return render(request, "terminals/replay.html", {"session": session, "watch": watch,
                                                     "cast_url": reverse("terminals:recording", args=[session.pk])})


@login_required
@require_GET
def recording(request, pk):
    session = get_visible_or_404(TerminalSession, request.user, pk=pk)
    if not session.has_recording:
        raise Http404("No recording")
    try:
        with gzip.open(session.recording_path, "rb") as handle:
            data = handle.read()
    except EOFError:  # a live recording: everything up to its last flush
        data = _read_growing(session.recording_path)
    except OSError:
        raise Http404("The recording file is missing") from None
    response = HttpResponse(data, content_type="application/x-asciicast")
    response["Content-Disposition"] = f'inline; filename="terminal-{session.pk}.cast"'
    response["Cache-Control"] = "no-store"
    return response


def _read_growing(path):
    import zlib

    with open(path, "rb") as handle:
        raw = handle.read()
    return zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(raw)


@login_required
@role_required("is_admin", _("Only administrators end other people's sessions."))
@require_POST
def end_session(request, pk):
    session = get_visible_or_404(TerminalSession, request.user, pk=pk)
    if session.is_live:
        _ask_owner_to_end(session, request.user.username)
        record(Action.TERMINAL_STOP, session, message=f"Asked to end the terminal of {session.username} ({session.target_label})")
        messages.success(request, _("The session is being ended."))
    return redirect(request.POST.get("next") or reverse("terminals:sessions") + "?live=1")


def _ask_owner_to_end(session, username):
    """Tell the process holding the shell (whichever it is) to end it, through the channel layer."""
    import asyncio
    import threading

    send = async_to_sync(get_channel_layer().group_send)
    message = {"type": "terminal.end", "by": username}
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        send(control_group(session.pk), message)
        return
    # An event loop runs in this thread (a sync view called from async code): send from another thread.
    thread = threading.Thread(target=send, args=(control_group(session.pk), message))
    thread.start()
    thread.join(30)
