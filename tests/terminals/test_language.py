"""The terminal's messages reach the page in its user's language (the language cookie the
page's switch sets, else Accept-Language), while the database keeps the English text."""

import json
import re

import pytest

from django.urls import reverse

from terminals.consumers import scope_language
from terminals.models import TerminalSession

from tests.fixtures.actors import logged_in

from .conftest import session_cookie, ssh_server, ws_connect, ws_read_until

pytestmark = [pytest.mark.ssh, pytest.mark.django_db(transaction=True)]


def read_until_end(socket, timeout=20):
    while True:
        message = json.loads(socket.recv(timeout=timeout))
        if message["type"] in ("ended", "error"):
            return message


def test_a_french_user_reads_why_the_shell_ended_in_french(asgi_server, bob, sshd_fleet_factory):
    server = ssh_server(sshd_fleet_factory(1))
    cookie = f"{session_cookie(bob)}; django_language=fr"
    path = f"/ws/terminals/server/?server={server.pk}"
    with ws_connect(asgi_server, path, cookie=cookie) as socket:
        session_id = json.loads(socket.recv(timeout=30))["id"]
        socket.send(json.dumps({"type": "input", "data": "echo ready-$((20+1))\n"}))
        ws_read_until(socket, "ready-21")
        socket.send(json.dumps({"type": "input", "data": "exit\n"}))
        ended = read_until_end(socket)
    assert ended["type"] == "ended" and ended["message"] == "Le shell s'est terminé."
    assert "i18n" not in ended
    row = TerminalSession.objects.get(pk=session_id)
    assert row.end_reason == "The shell exited."  # the record stays in English

    # Rejoining the ended shell: told so in French too; an English page gets English.
    with ws_connect(asgi_server, f"{path}&session={session_id}", cookie=cookie) as socket:
        assert read_until_end(socket)["message"].startswith("Ce terminal est terminé : ")
    with ws_connect(asgi_server, f"{path}&session={session_id}", cookie=f"{session_cookie(bob)}; django_language=en") as socket:
        assert read_until_end(socket)["message"] == "This terminal has ended: The shell exited."


def test_the_language_follows_the_cookie_then_the_browser():
    def scope(cookie=None, accept=None):
        return {"cookies": {"django_language": cookie} if cookie else {},
                "headers": [(b"accept-language", accept.encode())] if accept else []}

    assert scope_language(scope("fr")) == "fr"
    assert scope_language(scope("fr", "en-US,en")) == "fr"
    assert scope_language(scope(None, "fr-FR,fr;q=0.9,en;q=0.5")) == "fr"
    assert scope_language(scope("xx", "de,en;q=0.5")) == "en"
    assert scope_language(scope()) == "en"


def test_a_french_watcher_reads_the_grace_period_end_in_french(asgi_server, bob, alice, sshd_fleet_factory, settings):
    settings.TERMINAL_RECONNECT_GRACE = 1
    server = ssh_server(sshd_fleet_factory(1))
    with ws_connect(asgi_server, f"/ws/terminals/server/?server={server.pk}", user=bob) as owner:
        session_id = json.loads(owner.recv(timeout=30))["id"]
        with ws_connect(asgi_server, f"/ws/terminals/server/?watch={session_id}", cookie=f"{session_cookie(alice)}; django_language=fr") as watcher:
            assert json.loads(watcher.recv(timeout=20))["readonly"] is True
            owner.close()  # the owner leaves; the read-only watcher does not keep the shell open
            ended = read_until_end(watcher, timeout=30)
    assert ended["message"] == "Personne ne s'est reconnecté dans les 1 s ; le shell a été fermé."
    assert TerminalSession.objects.get().end_reason == "Nobody reconnected within 1 s; the shell was closed."


def test_a_french_user_reads_a_numbered_end_in_french_on_every_page(asgi_server, bob, sshd_fleet_factory):
    server = ssh_server(sshd_fleet_factory(1))
    cookie = f"{session_cookie(bob)}; django_language=fr"
    path = f"/ws/terminals/server/?server={server.pk}"
    with ws_connect(asgi_server, path, cookie=cookie) as socket:
        session_id = json.loads(socket.recv(timeout=30))["id"]
        socket.send(json.dumps({"type": "input", "data": "echo ready-$((20+1))\n"}))
        ws_read_until(socket, "ready-21")
        socket.send(json.dumps({"type": "input", "data": "exit 3\n"}))
        assert read_until_end(socket)["message"] == "Le shell s'est terminé avec le code 3."
    row = TerminalSession.objects.get(pk=session_id)
    assert row.end_reason == "The shell exited with status 3."  # the audit's English text stays
    assert (row.reason_code, row.reason_params) == ("exited-status", {"status": "3"})

    with ws_connect(asgi_server, f"{path}&session={session_id}", cookie=cookie) as socket:
        assert read_until_end(socket)["message"] == "Ce terminal est terminé : Le shell s'est terminé avec le code 3."

    french = logged_in(bob)
    french.cookies["django_language"] = "fr"
    for url in (reverse("terminals:sessions"), reverse("terminals:replay", args=[session_id])):
        page = french.get(url).content.decode()
        assert "Le shell s&#x27;est terminé avec le code 3." in page, url
        assert "exited with status 3" not in page, url
    english = logged_in(bob)
    english.cookies["django_language"] = "en"
    assert "The shell exited with status 3." in english.get(reverse("terminals:replay", args=[session_id])).content.decode()


def test_sessions_that_ended_before_codes_get_theirs_back_from_the_english_text():
    import importlib

    from terminals import reasons

    backfill = importlib.import_module("terminals.migrations.0003_backfill_reason_codes")
    assert backfill.MESSAGES == reasons.MESSAGES  # the migration's copy is the same table
    for code, msgid in reasons.MESSAGES.items():
        params = {name: f"v-{name}: 1" for name in re.findall(r"%\((\w+)\)s", msgid)}
        assert backfill.reason_of(reasons.english(code, params)) == (code, params)
    assert backfill.reason_of("The test is over.") == ("", {})
