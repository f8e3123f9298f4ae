"""The command line on its own: a recipe run with no panel (no Redis) running, and a
command run on a database that `migrate` has not set up yet. Real processes, real
PostgreSQL and sshd; what a person sees on the terminal is checked."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection

from clusters.models import Group
from tests.support.ports import free_port
from tests.support.services import require

from tests.clusters.conftest import fleet_servers, key_credential

ROOT = Path(__file__).resolve().parents[3]


def manage(*args, **env):
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **env}
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=300)


def database_url(name):
    settings = connection.settings_dict
    return f"postgres://{settings['USER'] or 'postgres'}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{name}"


@pytest.mark.ssh
@pytest.mark.django_db(transaction=True)
def test_a_recipe_run_from_the_command_line_with_no_redis_does_not_warn_about_cancel_flags(sshd_fleet_factory, shared_dir, tmp_path):
    require(connection.vendor == "postgresql", "needs PostgreSQL so that a second process sees the test database")
    fleet = sshd_fleet_factory(1)
    group = Group.objects.create(name="cli", variables={"root": str(shared_dir)})
    fleet_servers(fleet, key_credential(fleet.client_private_key), group=group)
    recipe = tmp_path / "slow.yml"
    recipe.write_text("- name: Take a few cancel polls\n  command: sleep 2\n- name: A file\n  copy: {dest: \"{{ root }}/cli\", content: \"done\\n\"}\n")

    # Nothing listens on this port: the panel (and its Redis) is not running.
    result = manage("run_recipe", str(recipe), "--limit", "cli", DATABASE_URL=database_url(connection.settings_dict["NAME"]),
                    REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok=1 changed=2" in result.stdout.replace("  ", " ") or "changed=2" in result.stdout, result.stdout
    assert (shared_dir / "cli").read_text() == "done\n"
    assert "cancel flag" not in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.django_db
def test_a_command_run_before_migrate_says_to_run_migrate_instead_of_a_traceback(tmp_path):
    require(connection.vendor == "postgresql", "needs PostgreSQL to create an empty database")
    import psycopg

    name = f"filrouge_unmigrated_{uuid.uuid4().hex[:10]}"
    settings = connection.settings_dict
    admin = psycopg.connect(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432, user=settings["USER"] or "postgres",
                            dbname="postgres", autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        (tmp_path / "inventory.ini").write_text("[web]\nweb01\n")
        runs = [manage("run_recipe", "base", "--limit", "all", DATABASE_URL=database_url(name)),
                manage("import_inventory", str(tmp_path / "inventory.ini"), DATABASE_URL=database_url(name)),
                manage("load_course", str(tmp_path), DATABASE_URL=database_url(name))]
        for result in runs:
            assert result.returncode == 1, result.stdout + result.stderr
            assert "Traceback" not in result.stderr, result.stderr
            assert "The database is not set up yet" in result.stderr and "Run `python manage.py migrate` first (`make run` does it too)" in result.stderr, result.stderr
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
