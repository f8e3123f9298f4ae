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


def ab_rps(url, concurrency, seconds):
    out = subprocess.run(["ab", "-q", "-c", str(concurrency), "-t", str(seconds), "-n", "1000000", url], capture_output=True, text=True, timeout=seconds + 60)
    found = re.search(r"Requests per second:\s+([\d.]+)", out.stdout)
    assert found, out.stdout + out.stderr
    failed = int(re.search(r"Failed requests:\s+(\d+)", out.stdout).group(1))
    return float(found.group(1)), failed


@pytest.mark.docker
@pytest.mark.django_db(transaction=True)
def test_a_load_test_on_a_real_container_matches_what_ab_measures(bob, docker_client, http_app_images, container_factory):
    require(shutil.which("ab"), "ab (apache2-utils) is not installed")
    container = container_factory(http_app_images["1"], ports={"8080/tcp": ("127.0.0.1",)})
    port = published_port(container, "8080/tcp")
    url = f"http://127.0.0.1:{port}/index.html"
    Cluster.objects.create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")
    import requests

    wait_until(lambda: requests.get(url, timeout=2).status_code == 200, timeout=30, message="the container never answered")

    # The machine is shared (its load moves by 2x within seconds): alternate short runs of ab
    # and of the job, and compare each job with the ab run beside it; the median of those
    # ratios is what a burst of someone else's work cannot decide.
    ab_runs, jobs = [], []
    for _ in range(7):
        ab_runs.append(ab_rps(url, 8, 2))
        jobs.append(run_job(start_job("load-test", {"url": url, "duration": 2, "concurrency": 8}, bob)))

    assert all(job.status == "succeeded" for job in jobs), [job.error for job in jobs]
    assert all(failed == 0 for _, failed in ab_runs) and all(job.result["errors"] == 0 for job in jobs)
    ratios = [job.result["rps"] / rps for job, (rps, _) in zip(jobs, ab_runs)]
    # Never more than 20% below ab. Above it, wrk (the unpaced engine) measured 1.1-1.4x ab on
    # this target in the same runs: a faster generator, not a wrong figure; 1.5x bounds that.
    assert 0.8 <= statistics.median(ratios) <= 1.5, f"load-test {[round(j.result['rps']) for j in jobs]} req/s, ab {[round(r) for r, _ in ab_runs]} req/s"
    job = jobs[-1]
    seconds = [e.text for e in JobEvent.objects.filter(job=job, task="load").order_by("seq")][1:]
    assert len(seconds) >= 2 and all("req/s" in line and "p95" in line for line in seconds)
    rps = Series.objects.get(name="filrouge_loadtest_requests_per_second", labels__target=url)
    assert rps.points.count() >= 2 * 7 and rps.last_value > 0
    assert Series.objects.filter(name="filrouge_loadtest_latency_p99_seconds", labels__target=url).exists()
