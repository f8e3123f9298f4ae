"""The Prometheus path: /metrics scraped by a real Prometheus, and the charts' API reading it
back with PromQL gives what the database gives for the same samples."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import override_settings
from django.utils import timezone

import metrics
from clusters.models import Server
from metrics.api import query
from tests.support.ports import wait_until
from tests.support.prometheus import Prometheus
from tests.support.services import have_tool, require

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def prometheus(live_server):
    require(have_tool("prometheus"), "Prometheus (Debian's prometheus package) is not installed")
    server = Prometheus(urlsplit(live_server.url).netloc)
    yield server
    server.stop()


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
