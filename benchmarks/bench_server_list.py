"""Server list page and API with 10,000 servers in 200 groups: server time and SQL queries.

    .venv/bin/python benchmarks/bench_server_list.py [--repeat 20]

A filtered page of 50 (a group, a state, a label) is asked for through Django's test
client in this process, so the time is the server's own (no network, no browser). The
same requests at 100 servers show whether the number of queries grows with the
inventory (it must not). A throw-away test database is created and dropped.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.conf import settings  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases  # noqa: E402

GROUPS = 200


def populate(total):
    from clusters.models import Group, Server

    Server.objects.all().delete()
    Group.objects.all().delete()
    groups = Group.objects.bulk_create([Group(name=f"group{index:03d}", variables={"index": index}) for index in range(GROUPS)])
    for parent in range(0, GROUPS, 20):  # some nesting, as real inventories have
        groups[parent].children.add(*groups[parent + 1: parent + 4])
    servers = Server.objects.bulk_create([
        Server(name=f"srv{index:05d}", address=f"10.{index // 65536}.{index // 256 % 256}.{index % 256}", user="deploy",
               labels={"env": ("prod", "staging", "dev")[index % 3], "rack": f"r{index % 40}"},
               reachable=(None, True, True, False)[index % 4], load_1m=(index % 17) / 10, disk_free_bytes=index * 1_000_000)
        for index in range(total)
    ], batch_size=2000)
    through = Server.groups.through
    links = [through(server_id=server.pk, group_id=groups[index % GROUPS].pk) for index, server in enumerate(servers)]
    links += [through(server_id=server.pk, group_id=groups[(index * 7 + 3) % GROUPS].pk) for index, server in enumerate(servers) if index % 5 == 0]
    through.objects.bulk_create(links, batch_size=5000, ignore_conflicts=True)


def measure(client, url, repeat):
    client.get(url)  # warm caches (templates, query plans)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    if response["Content-Type"].startswith("application/json"):
        rows = len(response.json()["results"])
    else:
        rows = response.content.decode().count('name="servers" value=')
    sql_ms = sum(float(query["time"]) for query in queries.captured_queries) * 1000
    return statistics.median(times), sorted(times)[int(len(times) * 0.95) - 1], len(queries.captured_queries), rows, sql_ms


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    options = parser.parse_args()
    # Not setup_test_environment(): its template instrumentation would slow every render down.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    old_config = setup_databases(verbosity=0, interactive=False)
    results = []
    try:
        from panel.accounts.models import ApiToken, Role, User

        user = User.objects.create(username="bench", role=Role.OPERATOR)
        _token, plaintext = ApiToken.issue(user, "bench", "read")
        page_client = Client()
        page_client.force_login(user)
        api_client = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        requests = [
            ("page", "/inventory/?group=group020&state=reachable", page_client),
            ("page", "/inventory/?label=env%3Dprod&q=srv0&page=3", page_client),
            ("api", "/api/servers/?group=group020&state=reachable&limit=50", api_client),
            ("api", "/api/servers/?label=env%3Dprod&limit=50&offset=20", api_client),
        ]
        for total in (100, 10_000):
            populate(total)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE") if connection.vendor == "postgresql" else None
            for kind, url, client in requests:
                median, p95, queries, rows, sql_ms = measure(client, url, options.repeat)
                results.append((total, kind, url, rows, median, p95, queries, sql_ms))
    finally:
        teardown_databases(old_config, verbosity=0)

    print(f"\nServer list with {GROUPS} groups: server time of a filtered page of 50 ({connection.vendor}, median of {options.repeat})\n")
    header = f"{'servers':>7}  {'what':<4}  {'request':<56}  {'rows':>4}  {'median ms':>9}  {'p95 ms':>7}  {'queries':>7}  {'SQL ms':>6}"
    print(header)
    print("-" * len(header))
    for total, kind, url, rows, median, p95, queries, sql_ms in results:
        print(f"{total:>7}  {kind:<4}  {url:<56}  {rows:>4}  {median:9.1f}  {p95:7.1f}  {queries:>7}  {sql_ms:6.1f}")
    small = {(kind, url): queries for total, kind, url, _r, _m, _p, queries, _s in results if total == 100}
    large = {(kind, url): queries for total, kind, url, _r, _m, _p, queries, _s in results if total == 10_000}
    print("\nqueries the same at 100 and 10,000 servers:", "yes" if small == large else f"NO ({small} vs {large})")
    print("SQL ms: time spent in the database for one request (the rest is Python: filters, serializers, templates).")


if __name__ == "__main__":
    main()
