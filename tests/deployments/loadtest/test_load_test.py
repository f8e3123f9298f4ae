"""The load-test job on a real container, measured beside `ab` on the same target."""

import re
import shutil
import statistics
import subprocess

import pytest
from django.test import override_settings

from clusters.models import Cluster, Server
from metrics.models import Series
from panel.jobs.models import JobEvent
from panel.jobs.services import start_job
from rest_framework.exceptions import ValidationError
from tests.support.containers import published_port
from tests.support.kube_jobs import run_job
from tests.support.ports import wait_until
from tests.support.services import require

pytestmark = pytest.mark.django_db


def test_it_refuses_a_url_on_a_machine_the_panel_does_not_manage(bob):
    Server.objects.create(name="web01", address="127.0.0.1")
    with pytest.raises(ValidationError) as refused:
        start_job("load-test", {"url": "http://192.0.2.10/", "duration": 5}, bob)
    assert "not the address of a server or cluster" in str(refused.value.detail)


@override_settings(LOADTEST_MAX_SECONDS=60, LOADTEST_MAX_CONCURRENCY=50)
def test_it_refuses_a_load_above_the_configured_bounds(bob):
    Server.objects.create(name="web01", address="127.0.0.1")
    with pytest.raises(ValidationError) as refused:
        start_job("load-test", {"url": "http://127.0.0.1:1/", "duration": 600, "concurrency": 500}, bob)
    detail = refused.value.detail
    assert "FILROUGE_LOADTEST_MAX_SECONDS" in str(detail["duration"]) and "FILROUGE_LOADTEST_MAX_CONCURRENCY" in str(detail["concurrency"])


def test_students_and_teachers_cannot_start_one_on_the_inventory(sam, carol):
    from django.core.exceptions import PermissionDenied

    Server.objects.create(name="web01", address="127.0.0.1")
    for user in (sam, carol):
        with pytest.raises(PermissionDenied):
            start_job("load-test", {"url": "http://127.0.0.1:1/", "duration": 5}, user)


def ab_figures(url, concurrency, seconds):
    """(requests/s, p50 in seconds, failed requests) as `ab` measures them."""
    out = subprocess.run(["ab", "-q", "-c", str(concurrency), "-t", str(seconds), "-n", "1000000", url], capture_output=True, text=True, timeout=seconds + 60)
    found = re.search(r"Requests per second:\s+([\d.]+)", out.stdout)
    assert found, out.stdout + out.stderr
    failed = int(re.search(r"Failed requests:\s+(\d+)", out.stdout).group(1))
    # "Percentage of the requests served within a certain time (ms)": its 50% line.
    p50 = int(re.search(r"^\s*50%\s+(\d+)", out.stdout, re.MULTILINE).group(1)) / 1000
    return float(found.group(1)), p50, failed


@pytest.mark.docker
@pytest.mark.django_db(transaction=True)
def test_a_load_test_on_a_real_container_matches_what_ab_measures_within_20_percent(bob, docker_client, slow_app_image, container_factory):
    require(shutil.which("ab"), "ab (apache2-utils) is not installed")
    # A target that sets the pace: each answer comes after a fixed 50 ms, so ab and the job both
    # measure the target (about 8 clients / 53 ms), not how fast each generator is (that figure is
    # in benchmarks/bench_metrics.py: a static page, where the generator sets the pace). 50 ms, not
    # 10-20: on a busy 2-core machine, scheduling delays of several ms would otherwise be a large
    # part of what is compared (benchmarks/bench_loadtest.py has both).
    container = container_factory(slow_app_image, ports={"8080/tcp": ("127.0.0.1",)})
    port = published_port(container, "8080/tcp")
    url = f"http://127.0.0.1:{port}/cgi-bin/slow"
    Cluster.objects.create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")
    import requests

    def answers():
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:  # the published port accepts before the server inside listens
            return False

    wait_until(answers, timeout=30, message="the container never answered")

    # The machine is shared (its load moves within seconds): alternate short runs of ab and of the
    # job with each engine (unpaced: wrk; with a rate above what the target serves: aiohttp), in
    # the other order every round, and compare each job with the ab run beside it; a burst of
    # someone else's work cannot decide the median of those ratios.
    ab_runs, wrk_jobs, aiohttp_jobs = [], [], []
    steps = [
        lambda: ab_runs.append(ab_figures(url, 8, 2)),
        lambda: wrk_jobs.append(run_job(start_job("load-test", {"url": url, "duration": 2, "concurrency": 8}, bob))),
        lambda: aiohttp_jobs.append(run_job(start_job("load-test", {"url": url, "duration": 2, "concurrency": 8, "rate": 5000}, bob))),
    ]
    for round_number in range(7):
        for step in steps if round_number % 2 == 0 else steps[::-1]:
            step()

    jobs = wrk_jobs + aiohttp_jobs
    assert all(job.status == "succeeded" for job in jobs), [job.error for job in jobs]
    assert all(failed == 0 for _, _, failed in ab_runs) and all(job.result["errors"] == 0 for job in jobs)
    assert {job.result["engine"] for job in wrk_jobs} == {"wrk"} and {job.result["engine"] for job in aiohttp_jobs} == {"aiohttp"}
    for engine, engine_jobs in (("wrk", wrk_jobs), ("aiohttp", aiohttp_jobs)):
        rps = statistics.median(job.result["rps"] / ab_rps for job, (ab_rps, _, _) in zip(engine_jobs, ab_runs))
        p50 = statistics.median(job.result["p50"] / ab_p50 for job, (_, ab_p50, _) in zip(engine_jobs, ab_runs))
        figures = (f"{engine}: load-test {[round(j.result['rps']) for j in engine_jobs]} req/s, p50 {[round(j.result['p50'] * 1000, 1) for j in engine_jobs]} ms; "
                   f"ab {[round(r) for r, _, _ in ab_runs]} req/s, p50 {[round(p * 1000) for _, p, _ in ab_runs]} ms")
        assert 0.8 <= rps <= 1.2, f"requests/s median ratio {rps:.2f}; {figures}"
        assert 0.8 <= p50 <= 1.2, f"p50 median ratio {p50:.2f}; {figures}"
    job = wrk_jobs[-1]
    seconds = [e.text for e in JobEvent.objects.filter(job=job, task="load").order_by("seq")][1:]
    assert len(seconds) >= 2 and all("req/s" in line and "p95" in line for line in seconds)
    rps_series = Series.objects.get(name="filrouge_loadtest_requests_per_second", labels__target=url)
    assert rps_series.points.count() >= 2 * len(jobs) and rps_series.last_value > 0
    assert Series.objects.filter(name="filrouge_loadtest_latency_p99_seconds", labels__target=url).exists()
