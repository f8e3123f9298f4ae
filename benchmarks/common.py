"""Shared setup for benchmarks: a database and Redis index of their own, Django, workers.

Benchmarks print tables; they never assert timings. Run one alone with
`.venv/bin/python benchmarks/bench_<topic>.py`, or all with `make bench`.
"""

import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def setup_django(database="filrouge_bench", redis_db=15):
    """Point Django at a benchmark database (created and migrated) and a Redis index, then flush both."""
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            connection.execute(f'CREATE DATABASE "{database}"')
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{database}"
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:6379/{redis_db}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    import django_rq

    django_rq.get_connection("default").flushdb()


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values):
    return {
        "n": len(values),
        "p50": statistics.median(values) * 1000,
        "p95": percentile(values, 0.95) * 1000,
        "max": max(values) * 1000,
    }


def print_table(title, headers, rows):
    print(f"\n## {title}")
    widths = [max(len(str(h)), *(len(str(row[i])) for row in rows)) for i, h in enumerate(headers)]
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
    sys.stdout.flush()


def machine_line():
    import platform

    return f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}"


def make_fleet_servers(fleet, private_key, root):
    """Replace the inventory with one Server per host of an sshd fleet, all in the group "bench"
    (whose `root` variable the recipes write under), with one SSH key credential."""
    from clusters.models import Credential, Group, Server

    Server.objects.all().delete()
    Group.objects.all().delete()
    Credential.objects.all().delete()
    credential = Credential(name="bench-key", kind="ssh-key")
    credential.set_secret({"private_key": private_key})
    credential.save()
    group = Group.objects.create(name="bench", variables={"root": root})
    servers = [Server(name=f"host{i:02d}", address=m.host, port=m.port, user=fleet.user, credential=credential) for i, m in enumerate(fleet.hosts)]
    Server.objects.bulk_create(servers)
    group.servers.add(*Server.objects.all())


class QuietContext:
    """A job context for bare check or reader runs outside a job (nothing is written)."""

    def line(self, *args, **kwargs):
        pass

    def add_secret(self, value):
        pass
