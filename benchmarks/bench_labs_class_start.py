"""Class start: 30 students launch the Docker exercise at once, on real RQ workers.

A teacher loads the starter pack (labs/starter) on the local engine, 30 students are
enrolled, and the teacher presses "Class start" on compose-two-tier: 30 lab-launch jobs
are queued in one transaction and run by WORKERS real `manage.py rqworker` processes,
each creating a project network and allocating ports on the real Docker engine.

Measured:
- time from the class start until every environment is ready (and how many failed);
- the server time of the teacher's course page (the live grid, what its htmx poll
  fetches) while the class starts, against the same page when idle: p50, p95 and the
  p95 ratio. The page is requested in this process through Django's test client, one
  request after another, like a teacher's browser polling without pause.

    .venv/bin/python benchmarks/bench_labs_class_start.py [STUDENTS] [WORKERS]

Everything labelled for the run is removed at the end (containers, networks, volumes).
"""

import sys
import tempfile
import time
from pathlib import Path

from docker_bench_setup import ROOT, docker_client, setup_django

from common import machine_line, percentile, print_table, summary_ms

IDLE_REQUESTS = 40


def grid_times(client, url, until=None, count=None):
    times = []
    while True:
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
        if count is not None and len(times) >= count:
            return times
        if until is not None and until():
            return times


def main(students=30, workers=4):
    teardown_db = setup_django()
    client_docker = docker_client()
    from django.core.management import call_command
    from django.test import Client

    from clusters.drivers import docker as driver
    from clusters.models import Cluster
    from labs import environments
    from labs.providers import docker_project
    from labs.models import Course, Enrolment, Environment, EnvironmentState
    from panel.accounts.models import Role, User
    from tests.fixtures.workers import start_worker

    scratch = Path(tempfile.mkdtemp(prefix="filrouge-bench-labs-"))
    processes = []
    try:
        print(f"Machine: {machine_line()} · {students} students · {workers} workers")
        cluster = Cluster.objects.create(name="bench-lab-host", kind="docker", endpoint="unix:///var/run/docker.sock")
        teacher = User.objects.create(username="teacher", role=Role.TEACHER)
        call_command("load_course", str(ROOT / "labs" / "starter"), teacher="teacher", cluster=[cluster.name], stdout=open("/dev/null", "w"))
        course = Course.objects.get(slug="devops-starter")
        exercise = course.exercises.get(slug="compose-two-tier")
        for index in range(students):
            student = User.objects.create(username=f"student{index:02d}", role=Role.STUDENT)
            Enrolment.objects.create(course=course, student=student)

        for index in range(workers):
            processes.append(start_worker(scratch, name=f"labs{index}"))

        browser = Client()
        browser.force_login(teacher)
        url = f"/labs/courses/{course.pk}/"
        grid_times(browser, url, count=5)  # warm up
        idle = grid_times(browser, url, count=IDLE_REQUESTS)

        started = time.perf_counter()
        jobs, skipped = environments.class_start(exercise, teacher)
        live = Environment.objects.filter(exercise=exercise)

        def all_settled():
            return live.filter(state__in=[EnvironmentState.READY, EnvironmentState.FAILED]).count() >= students

        busy = grid_times(browser, url, until=all_settled)
        elapsed = time.perf_counter() - started
        ready = live.filter(state=EnvironmentState.READY)
        ready_times = sorted((env.ready_at - env.created_at).total_seconds() for env in ready)
        failed = list(live.filter(state=EnvironmentState.FAILED).values_list("error", flat=True))

        print_table(
            f"Class start: {students} students launch compose-two-tier at once ({workers} real workers, local engine)",
            ["jobs queued", "ready", "failed", "all settled (s)", "first ready (s)", "median ready (s)", "last ready (s)"],
            [[len(jobs), ready.count(), len(failed), f"{elapsed:.2f}",
              f"{ready_times[0]:.2f}" if ready_times else "-", f"{percentile(ready_times, 0.5):.2f}" if ready_times else "-",
              f"{ready_times[-1]:.2f}" if ready_times else "-"]],
        )
        if failed:
            print(f"first failure: {failed[0]}")
        idle_ms, busy_ms = summary_ms(idle), summary_ms(busy)
        print_table(
            "Teacher's course page (live grid) server time, in-process client, requests back to back",
            ["when", "requests", "p50 ms", "p95 ms", "max ms", "p95 ratio"],
            [
                ["idle", idle_ms["n"], f"{idle_ms['p50']:.1f}", f"{idle_ms['p95']:.1f}", f"{idle_ms['max']:.1f}", "1.00"],
                ["during the class start", busy_ms["n"], f"{busy_ms['p50']:.1f}", f"{busy_ms['p95']:.1f}", f"{busy_ms['max']:.1f}",
                 f"{busy_ms['p95'] / idle_ms['p95']:.2f}"],
            ],
        )
    finally:
        for process in processes:
            process.stop()
        try:
            from labs.models import Environment

            with driver.engine(Cluster.objects.get(name="bench-lab-host")) as connection:
                for environment in Environment.objects.select_related("owner", "exercise"):
                    docker_project.teardown(connection, environment)
        except Exception as exc:  # noqa: BLE001 - report, then still drop the database
            print(f"cleanup: {exc}")
        client_docker.close()
        teardown_db()
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
