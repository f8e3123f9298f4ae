"""The panel's verdict on a corpus of realistic compose files, compared with `docker-compose
config` (the reference tool) on each: a file compose accepts is accepted by the panel, or
refused with the key and line of what is unsupported; nothing compose keeps is dropped
without being listed; and the environment each service gets is the one compose computes
(.env and env_file parsed alike, secrets included)."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from deployments.compose import SERVICE_KEYS, ComposeError, parse_compose, read_env_file
from tests.support.services import require, tool_path

CORPUS = Path(__file__).resolve().parents[2] / "data" / "compose-corpus"
FOLDERS = sorted(path.name for path in CORPUS.iterdir() if (path / "compose.yaml").exists())
# What the panel says of each file (compose's own verdict is read from the tool each run).
EXPECTED = {"invalid-no-image": "refused", "undefined-secret": "refused"}


def compose_config(folder):
    """(accepted?, the normalised file or stderr) from `docker-compose config`, run with a
    clean environment so that nothing of the test's shell leaks into the variables."""
    binary = tool_path("docker-compose")
    require(binary, "docker-compose is not installed (apt-get install docker-compose)")
    result = subprocess.run([binary, "config"], cwd=folder, capture_output=True, text=True,
                            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, timeout=120)
    if result.returncode != 0:
        return False, result.stderr
    return True, yaml.safe_load(result.stdout)


def panel_verdict(folder):
    text = (folder / "compose.yaml").read_text()
    variables = read_env_file(str(folder / ".env")) if (folder / ".env").exists() else {}
    try:
        return parse_compose(text, filename="compose.yaml", base_dir=str(folder), variables=variables), ""
    except ComposeError as exc:
        return None, str(exc)


def test_the_corpus_is_the_size_the_issue_asks_for():
    assert len(FOLDERS) >= 15


@pytest.mark.parametrize("name", FOLDERS)
def test_the_panel_agrees_with_docker_compose_config_on(name, settings):
    folder = CORPUS / name
    accepted, reference = compose_config(folder)
    plan, refusal = panel_verdict(folder)
    assert ("refused" if plan is None else "accepted") == EXPECTED.get(name, "accepted"), refusal

    if not accepted:
        assert plan is None, f"docker-compose refuses it ({reference.strip()}) but the panel accepted it"
        return
    if plan is None:
        # Refusing a file compose accepts is allowed only when the message names the key and its line.
        assert re.search(r"services\.[\w.-]+(\[\d+\])? \(line \d+\)", refusal), refusal
        return

    listed = plan.unsupported + plan.notes + plan.warnings
    imported = {item.name: item for item in plan.services}
    for service, body in reference["services"].items():
        if service not in imported:
            assert any(line.startswith(f"services.{service}.") for line in plan.notes), f"{service} was dropped without a note"
            continue
        item = imported[service]
        # Nothing dropped silently: every key compose keeps is imported or listed with its line.
        for key in body:
            if key not in SERVICE_KEYS:
                assert any(re.match(rf"services\.{re.escape(service)}\.{re.escape(key)}\b.* \(line \d+\)", line) for line in listed), \
                    f"services.{service}.{key} is neither imported nor listed: {listed}"
        # The environment is the one compose computes, part of it now kept as encrypted secrets.
        expected_env = {key: "" if value is None else str(value) for key, value in (body.get("environment") or {}).items()}
        env_secrets = {use["name"]: item.secrets[use["name"]] for use in item.spec["secrets"] if use.get("env")}
        assert {**item.spec["env"], **env_secrets} == expected_env
        # Secrets and configs compose mounts are mounted as files.
        for use in body.get("secrets") or []:
            target = use.get("target") or use["source"]
            path = target if target.startswith("/") else f"/run/secrets/{target}"
            assert {"name": use["source"], "env": None, "path": path} in item.spec["secrets"]
        for use in body.get("configs") or []:
            assert use["target"] in [config["path"] for config in item.spec["config_files"]]
        if "build" in body:
            assert item.spec["build"]["context"].startswith("sha256:") and item.build_archive
            assert item.spec["build"]["dockerfile"] == body["build"].get("dockerfile", "Dockerfile")
            assert item.spec["build"]["args"] == {key: "" if value is None else str(value) for key, value in (body["build"].get("args") or {}).items()}
            assert item.spec["build"]["target"] == body["build"].get("target", "")
        assert len(item.spec["ports"]) == len(body.get("ports") or [])


def test_dot_env_and_env_file_follow_docker_compose_rules_and_a_url_with_a_password_is_a_secret():
    plan, refusal = panel_verdict(CORPUS / "django-postgres-env")
    assert plan is not None, refusal
    web, db = (next(item for item in plan.services if item.name == name) for name in ("web", "db"))
    assert db.spec["env"] == {"POSTGRES_USER": "django", "POSTGRES_DB": "notes"}  # " # the database owner" is a comment
    assert db.secrets == {"POSTGRES_PASSWORD": "p@ss word#1"}  # quoted: the # stays, `export` is dropped
    assert web.spec["env"] == {"DEBUG": "0", "ALLOWED_HOSTS": "localhost 127.0.0.1"}
    assert web.secrets["SENTRY_DSN"] == "https://abc123:topsecretkey@sentry.example.test/42"  # a password inside a URL
    assert web.secrets["DATABASE_URL"] == "postgres://django:p@ss word#1@db:5432/notes"
    assert "topsecretkey" not in plan.preview() and "p@ss word#1" not in plan.preview()


def test_a_password_file_pointer_is_not_taken_for_a_secret_but_the_secret_file_is_mounted():
    plan, refusal = panel_verdict(CORPUS / "wordpress-mysql")
    assert plan is not None, refusal
    db = plan.services[0]
    assert db.spec["env"]["MYSQL_PASSWORD_FILE"] == "/run/secrets/db_password"
    assert db.secrets == {"db_root_password": "root-pw-123\n", "db_password": "wp-pw-456\n"}
    assert {"name": "db_root_password", "env": None, "path": "/run/secrets/mysql_root"} in db.spec["secrets"]
