"""The Prometheus path: /metrics scraped by a real Prometheus, and the charts' API reading it
back with PromQL gives what the database gives for the same samples."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone

import metrics
from clusters.models import Server
from metrics.api import query
from tests.fixtures.actors import api_client
from tests.support.ports import free_port, wait_until
from tests.support.prometheus import Prometheus
from tests.support.services import have_tool, require

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def prometheus(live_server):
    require(have_tool("prometheus"), "Prometheus (Debian's prometheus package) is not installed")
    server = Prometheus(urlsplit(live_server.url).netloc)
    cache.clear()
    yield server
    server.stop()
    cache.clear()


def range_requests(prometheus):
    """How many query_range requests Prometheus has answered (its own counter, read from its /metrics)."""
    text = requests.get(f"{prometheus.url}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query_range"' in line)


def test_charts_read_the_same_figures_from_prometheus_as_from_the_database(prometheus, bob):
    web = Server.objects.create(name="web01", address="127.0.0.1")
    other = Server.objects.create(name="web02", address="127.0.0.2")
    step = 60
    # Samples every 15 s over the last 8 minutes, 7 s off the minute so that none sits on a
    # step's edge; each is recorded once Prometheus has scraped the one before (the exposition
    # carries each sample's own time, so the scrape time does not matter).
    start = timezone.now().replace(second=7, microsecond=0) - timedelta(minutes=8)
    for n in range(32):
        moment = start + timedelta(seconds=15 * n)
        metrics.record("filrouge_server_load1", (n % 7) * 0.5, {"server": "web01"}, obj=web, at=moment)
        metrics.record("filrouge_server_load1", 9.0, {"server": "web02"}, obj=other, at=moment)
        wait_until(
            lambda: (prometheus.query('count_over_time(filrouge_server_load1{server="web01"}[1h])') or [{"value": [0, "0"]}])[0]["value"][1] == str(n + 1),
            timeout=30, interval=0.2, message=f"Prometheus never stored sample {n + 1} (targets: {prometheus.query('up')})",
        )

    params = {"object_type": "server", "object_id": web.pk, "names": "", "labels": "", "start": start.timestamp(), "end": (start + timedelta(minutes=8)).timestamp(), "step": step}
    from_database = query(bob, params)
    with override_settings(PROMETHEUS_URL=prometheus.url):
        from_prometheus = query(bob, params)

    assert from_database["source"] == "database" and from_prometheus["source"] == "prometheus"
    assert from_prometheus["times"] == from_database["times"] and len(from_database["times"]) == 9
    [db_series], [prom_series] = from_database["series"], from_prometheus["series"]
    assert prom_series["labels"] == db_series["labels"] == {"server": "web01"}  # web02 is not mixed in
    assert sum(v is not None for v in db_series["values"]) >= 8
    assert prom_series["values"] == pytest.approx(db_series["values"], abs=1e-6)


def test_a_chart_of_several_names_costs_one_request_and_charts_asking_the_same_share_it(prometheus, bob):
    web = Server.objects.create(name="web01", address="127.0.0.1")
    start = timezone.now().replace(second=7, microsecond=0) - timedelta(minutes=4)
    for n in range(8):
        moment = start + timedelta(seconds=30 * n)
        metrics.record_many([
            metrics.Sample("filrouge_server_load1", n * 0.25, {"server": "web01"}, obj=web),
            metrics.Sample("filrouge_server_disk_used_ratio", 0.5 + n / 100, {"server": "web01"}, obj=web),
            metrics.Sample("filrouge_server_memory_available_bytes", 2 ** 30 + n, {"server": "web01"}, obj=web),
        ], at=moment)
        wait_until(
            lambda: (prometheus.query('count_over_time(filrouge_server_memory_available_bytes{server="web01"}[1h])') or [{"value": [0, "0"]}])[0]["value"][1] == str(n + 1),
            timeout=30, interval=0.2, message=f"Prometheus never stored sample {n + 1}",
        )
    params = {"object_type": "server", "object_id": web.pk, "labels": "", "start": start.timestamp(), "end": (start + timedelta(minutes=4)).timestamp(), "step": 60,
              "names": "filrouge_server_load1,filrouge_server_disk_used_ratio,filrouge_server_memory_available_bytes"}
    from_database = query(bob, params)
    with override_settings(PROMETHEUS_URL=prometheus.url, PROMETHEUS_CACHE_SECONDS=30):
        before = range_requests(prometheus)
        first = query(bob, params)
        assert range_requests(prometheus) == before + 1  # three names, one request
        again = query(bob, params)  # another chart, or the same one a moment later
        assert range_requests(prometheus) == before + 1
    # Each answer row went back to its own name, with the figures the database has.
    by_name = lambda answer: {series["name"]: series["values"] for series in answer["series"]}  # noqa: E731
    assert set(by_name(first)) == set(by_name(from_database)) and len(by_name(first)) == 3
    for name, values in by_name(from_database).items():
        assert sum(v is not None for v in values) >= 3
        assert by_name(first)[name] == pytest.approx(values, abs=1e-6), name
    assert again == first

    with override_settings(PROMETHEUS_URL=prometheus.url, PROMETHEUS_CACHE_SECONDS=0):
        query(bob, params)
        assert range_requests(prometheus) == before + 2  # no cache: a request each time


def test_the_api_answers_503_with_the_reason_when_prometheus_does_not_answer(bob, settings):
    cache.clear()
    web = Server.objects.create(name="web01", address="127.0.0.1")
    metrics.record("filrouge_server_load1", 1.0, {"server": "web01"}, obj=web)
    settings.PROMETHEUS_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = api_client(bob, "read")
    for _ in range(2):  # the second answer comes from the cache: same reason, no new wait
        answer = client.get("/api/metrics/", {"object_type": "server", "object_id": web.pk, "names": "filrouge_server_load1", "range": "1h"})
        assert answer.status_code == 503
        assert answer.json()["detail"].startswith(f"Prometheus at {settings.PROMETHEUS_URL} did not answer")
    cache.clear()
