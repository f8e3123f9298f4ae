"""Charts in a real Chromium: a container's CPU rising live, the dashboard's queue piling up."""

import pytest
from django.test import override_settings

from clusters.docker.jobs import probe_cluster
from clusters.models import Cluster
from metrics.jobs import sample_jobs
from metrics.models import Series
from panel.jobs.services import start_job
from tests.fixtures.actors import PASSWORD
from tests.fixtures.browser import login
from tests.support.ports import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def chart_series(page, chart_id):
    """{legend label: [values]} of a drawn chart, read from its uPlot instance."""
    return page.evaluate(
        """id => { const c = document.getElementById(id).chart;
                   if (!c || !c.plot) return null;
                   const out = {}; c.plot.series.slice(1).forEach((s, i) => { out[s.label] = c.data[i + 1]; }); return out; }""",
        chart_id,
    )


def last_value(values):
    present = [v for v in values or [] if v is not None]
    return present[-1] if present else None


@pytest.mark.docker
@override_settings(METRICS_CHART_POLL_SECONDS=1)
def test_a_containers_cpu_chart_rises_live_while_it_burns_cpu(live_server, page, artifacts, bob, docker_client, container_factory, http_app_images):
    # One of the panel's containers (a service's replica): the probe takes stats for those.
    container = container_factory(http_app_images["1"], labels={"filrouge.project": "charts", "filrouge.service": "burner"})
    cluster = Cluster.objects.create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")
    series = lambda: Series.objects.filter(name="filrouge_container_cpu_cores", labels__container=container.name).first()  # noqa: E731
    probe_cluster(cluster)
    wait_until(lambda: probe_cluster(cluster) and series() and series().points.exists(), timeout=60, interval=2, message="no CPU point for the idle container")

    login(page, live_server, "bob", PASSWORD)
    page.goto(f"{live_server.url}/inventory/clusters/{cluster.pk}/")
    page.locator("#chart-containers-cpu button[data-range='15m']").click()
    wait_until(lambda: chart_series(page, "chart-containers-cpu"), timeout=30, message="the CPU chart was not drawn")
    label = next(key for key in chart_series(page, "chart-containers-cpu") if container.name in key)
    idle = wait_until(lambda: last_value(chart_series(page, "chart-containers-cpu")[label]) is not None and [last_value(chart_series(page, "chart-containers-cpu")[label])], timeout=30, message="no idle point on the chart")
    assert idle[0] < 0.2

    container.exec_run(["sh", "-c", "while :; do :; done"], detach=True)

    def burning():
        probe_cluster(cluster)
        return (last_value((chart_series(page, "chart-containers-cpu") or {}).get(label)) or 0) > 0.3

    wait_until(burning, timeout=120, interval=3, message="the chart never showed the container burning CPU")
    page.locator("#chart-containers-cpu").scroll_into_view_if_needed()
    page.locator("#chart-containers-cpu").hover()
    page.screenshot(path=str(artifacts / "metrics-container-cpu.png"), full_page=False)
    assert page.locator("#chart-containers-cpu .u-legend").inner_text().count(container.name) >= 1
    page.reload()  # a reload draws the same series from the API, the burn included
    wait_until(lambda: (last_value((chart_series(page, "chart-containers-cpu") or {}).get(label)) or 0) > 0.3, timeout=30, message="lost after reload")


@override_settings(METRICS_CHART_POLL_SECONDS=1)
def test_the_dashboards_queue_chart_follows_jobs_piling_up(live_server, page, artifacts, bob):
    sample_jobs()
    login(page, live_server, "bob", PASSWORD)
    page.emulate_media(color_scheme="dark")
    page.goto(f"{live_server.url}/")
    wait_until(lambda: chart_series(page, "chart-dashboard-queue"), timeout=30, message="the queue chart was not drawn")
    page.locator("#chart-dashboard-queue button[data-range='15m']").click()

    def queued_on_chart():
        values = (chart_series(page, "chart-dashboard-queue") or {}).get("Jobs queued")
        return last_value(values) or 0

    # No worker runs in this test: every job started stays queued. Pile them up, sampling as
    # the periodic task would; the chart's last point follows without a reload.
    for n in range(1, 4):
        for _ in range(5):
            start_job("diagnostics", {"checks": ["database"]}, bob)
        wait_until(lambda: sample_jobs() and queued_on_chart() >= n * 5, timeout=60, interval=1, message=f"the chart never showed {n * 5} jobs queued")
    page.locator("#chart-dashboard-queue").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "metrics-dashboard-queue-dark.png"), full_page=False)
    # The panel has no dark theme: under a dark preference the chart keeps the cards' colour
    # instead of a dark box among white cards.
    background = page.evaluate("getComputedStyle(document.getElementById('chart-dashboard-queue')).backgroundColor")
    card = page.evaluate("getComputedStyle(document.querySelector('.card')).backgroundColor")
    assert background == card == "rgb(255, 255, 255)"


def test_the_charts_legend_speaks_the_pages_language(live_server, page, bob):
    sample_jobs()
    login(page, live_server, "bob", PASSWORD)
    page.context.add_cookies([{"name": "django_language", "value": "fr", "url": live_server.url}])
    page.goto(f"{live_server.url}/")
    wait_until(lambda: chart_series(page, "chart-dashboard-queue"), timeout=30, message="the queue chart was not drawn")
    assert page.evaluate("document.documentElement.lang") == "fr"
    assert page.evaluate("document.getElementById('chart-dashboard-queue').chart.plot.series[0].label") == "Heure"
    legend = page.locator("#chart-dashboard-queue .u-legend").inner_text()
    assert "Heure" in legend and "Time" not in legend
