"""In real Chromium: a teacher goes from the class grid to a student's Docker environment, starts a
load test on its web port, watches the environment's chart move and the job's log stream."""

import pytest
from django.test import override_settings

from panel.jobs.models import Job, Status
from tests.fixtures.actors import PASSWORD
from tests.fixtures.browser import login
from tests.labs.docker.conftest import job_text, run_job_now
from tests.labs.docker.test_load_test import WEB
from tests.metrics.test_browser_charts import chart_series, last_value
from tests.support.ports import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@override_settings(METRICS_CHART_POLL_SECONDS=1)
def test_a_teacher_starts_a_load_test_from_the_grid_and_watches_the_environment_chart(worker, live_server, page, artifacts, carol, sam, ready_environment):
    environment = ready_environment(sam)
    compose = run_job_now(sam, "lab-compose", environment, compose=WEB)
    assert compose.status == Status.SUCCEEDED, job_text(compose)

    login(page, live_server, "carol", PASSWORD)
    page.goto(f"{live_server.url}/labs/courses/{environment.course.pk}/")
    page.click(f'#lab-grid tr[data-student="sam"] a.load-test-link')
    page.wait_for_url(lambda url: url.endswith(f"/labs/environments/{environment.pk}/#load-test"))
    assert sorted(page.eval_on_selector_all("#loadtest_port option", "options => options.map(o => o.value)")) == ["web"]
    page.select_option("#loadtest_port", "web")
    page.fill("#loadtest_path", "/index.html")
    page.fill("#loadtest_concurrency", "4")
    page.fill("#loadtest_rate", "100")
    page.fill("#loadtest_duration", "15")
    page.click("#load-test-start")
    page.wait_for_selector("#load-test-jobs tr[data-job]")
    job = Job.objects.get(kind="lab-load-test")
    assert job.user == carol and job.target == environment and job.params["rate"] == 100

    def moving():
        chart = chart_series(page, "chart-environment-loadtest") or {}
        rps, p95 = last_value(chart.get("Requests per second")), last_value(chart.get("Latency p95"))
        drawn = len([v for v in chart.get("Requests per second") or [] if v is not None])
        return rps and rps > 50 and p95 and drawn >= 2

    wait_until(moving, timeout=60, interval=1, message="the load test never showed on the environment's chart")
    assert last_value((chart_series(page, "chart-environment-loadtest") or {}).get("Errors per second")) in (0, None)
    page.locator("#load-test").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "lab-load-test-environment-chart.png"), full_page=False)

    # The job's page streams its lines as for any job.
    page.click(f'#load-test-jobs tr[data-job="{job.pk}"] a')
    wait_until(lambda: page.locator("#log-lines").inner_text().count("req/s") >= 3, timeout=30, interval=0.5, message="the job's log did not stream")
    wait_until(lambda: job.refresh_from_db() or job.is_finished, timeout=60, message="the load test never finished")
    assert job.status == Status.SUCCEEDED, job.error
    assert 70 <= job.result["rps"] <= 105 and job.result["errors"] == 0  # paced at 100 requests/s
    wait_until(lambda: "requests in" in page.locator("#log-lines").inner_text(), timeout=15, interval=0.5, message="the summary line never showed")
