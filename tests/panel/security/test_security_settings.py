"""HSTS and the HTTPS redirect as settings from the environment (off by default), /healthz
details for operators only, and the panel's private files (SQLite, generated secrets) 0600."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.fixtures.actors import api_client, logged_in

ROOT = Path(__file__).resolve().parents[3]


def settings_in_a_fresh_process(tmp_path, **env):
    """Import panel.settings with this environment and read a few values back."""
    code = ("import json, django; from django.conf import settings; django.setup(); "
            "from django.db import connection; connection.ensure_connection(); "
            "print(json.dumps({name: getattr(settings, name) for name in ['SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'AXES_FAILURE_LIMIT']}))")
    clean = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS")}
    clean.update({"DJANGO_SETTINGS_MODULE": "panel.settings", "FILROUGE_VAR_DIR": str(tmp_path / "var"), **env})
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120,
                            preexec_fn=lambda: os.umask(0o022))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_https_settings_are_off_by_default_and_read_from_the_environment(tmp_path):
    default = settings_in_a_fresh_process(tmp_path)
    behind_tls = settings_in_a_fresh_process(tmp_path, SECURE_SSL_REDIRECT="true", SECURE_HSTS_SECONDS="31536000", SECURE_HSTS_INCLUDE_SUBDOMAINS="1")

    assert (default["SECURE_SSL_REDIRECT"], default["SECURE_HSTS_SECONDS"]) == (False, 0)
    assert (behind_tls["SECURE_SSL_REDIRECT"], behind_tls["SECURE_HSTS_SECONDS"], behind_tls["SECURE_HSTS_INCLUDE_SUBDOMAINS"]) == (True, 31536000, True)


@pytest.mark.django_db
def test_with_them_set_http_redirects_to_https_and_https_answers_carry_hsts(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600

    plain = Client().get("/accounts/login/")
    secure = Client().get("/accounts/login/", secure=True)
    probe = Client().get("/healthz/live")

    assert plain.status_code == 301 and plain["Location"] == "https://testserver/accounts/login/"
    assert secure.status_code == 200 and secure["Strict-Transport-Security"] == "max-age=3600"
    assert probe.status_code == 200  # probes inside a cluster speak plain http


@pytest.mark.django_db
def test_every_page_carries_the_content_security_policy(bob):
    for response in (Client().get("/accounts/login/"), logged_in(bob).get("/"), logged_in(bob).get("/inventory/"), Client().get("/healthz/live")):
        policy = response["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


@pytest.mark.django_db
def test_healthz_details_are_for_operators_only(bob, sam):
    anonymous = Client().get("/healthz").json()
    student = logged_in(sam).get("/healthz").json()
    operator = logged_in(bob).get("/healthz").json()
    by_token = api_client(bob).get("/healthz").json()

    for body in (anonymous, student):
        assert set(body["components"]["redis"]) == {"ok"} and set(body["components"]["workers"]) == {"ok"}
        text = json.dumps(body)
        assert "version" not in text and "hostname" not in text and "detail" not in text
    assert "version" in operator["components"]["redis"] and "workers" in operator["components"]["workers"]
    assert "version" in by_token["components"]["redis"]


def test_the_sqlite_file_and_the_generated_secrets_are_private(tmp_path):
    settings_in_a_fresh_process(tmp_path)

    var = tmp_path / "var"
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in var.iterdir() if path.is_file()}
    assert modes["filrouge.sqlite3"] == 0o600
    assert modes["secret-key"] == 0o600 and modes["credential-key"] == 0o600
    assert stat.S_IMODE(var.stat().st_mode) == 0o700


def test_an_existing_sqlite_file_with_wide_permissions_is_narrowed(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    database = var / "filrouge.sqlite3"
    database.touch()
    database.chmod(0o644)

    settings_in_a_fresh_process(tmp_path)

    assert stat.S_IMODE(database.stat().st_mode) == 0o600
