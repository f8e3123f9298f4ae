"""Redis going away and coming back, with real worker and scheduler processes on a
redis-server of the test's own (killed and started again: its data is lost, as after a
crash without persistence)."""

import os
import signal
import sys

import pytest
from django.test import Client

from panel.health.checks import check_workers
from panel.jobs.models import Job, JobEvent, Status
from panel.jobs.services import start_job
from tests.fixtures.workers import Process, child_env, children_of, start_scheduler, start_worker
from tests.support.faults import private_redis  # noqa: F401 (fixture)
from tests.support.ports import free_port, wait_for_port, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

OUTAGE_SECONDS = 6  # the benchmark runs the 60 s; the behaviour is the same


def wait_for_status(job, *statuses, timeout=60):
    def reached():
        job.refresh_from_db()
        return job.status in statuses

    try:
        wait_until(reached, timeout=timeout, message=f"job {job.pk} to become {'/'.join(statuses)}")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; it is {job.status}: {job.error}") from None
    return job


def listed_alive(prefix):
    try:
        return [w for w in check_workers()["workers"] if w["name"].startswith(prefix) and w["alive"]]
    except Exception as exc:
        print("check_workers:", repr(exc))
        return []


def log_of(process):
    """A process's output, also after it stopped."""
    return process.log_path.read_text(errors="replace")


@pytest.mark.slow
def test_workers_and_the_scheduler_live_through_redis_going_away_and_resume_by_themselves(private_redis, bob, tmp_path):
    env = {"REDIS_URL": private_redis.url}
    workers = [start_worker(tmp_path, name=f"redis-outage-{n}", **env) for n in range(2)]
    scheduler = start_scheduler(tmp_path, **env)
    try:
        running = [start_job("test-sleeper", {"seconds": OUTAGE_SECONDS + 2}, bob) for _ in range(2)]
        for job in running:
            wait_for_status(job, Status.RUNNING)
        before_outage = len(scheduler.output())

        private_redis.stop()

        # The jobs that were running when Redis went away go on and end with their true status.
        for job in running:
            wait_for_status(job, Status.SUCCEEDED)
        assert all(worker.alive() for worker in workers), [w.output() for w in workers]
        assert scheduler.alive(), scheduler.output()
        health = Client().get("/healthz")
        assert health.status_code == 503
        assert "redis" in health.json()["missing"] and "workers" in health.json()["missing"]
        during_outage = len(scheduler.output())

        private_redis.start()  # back, and empty

        # Workers register again and take work; a job created now runs.
        wait_until(lambda: len(listed_alive("test-redis-outage-")) == 2, timeout=30, message="both workers to be listed again")
        after = start_job("test-sleeper", {"seconds": 0.1}, bob)
        wait_for_status(after, Status.SUCCEEDED)
        assert Client().get("/healthz").json()["missing"] == []
    finally:
        for process in (*workers, scheduler):
            process.stop()

    assert all(event.text != "" for event in JobEvent.objects.filter(job__in=running))
    assert not Job.objects.filter(status=Status.LOST).exists()
    outage_log = log_of(scheduler)[before_outage:during_outage].splitlines()
    # One line saying Redis went away, at most one more per minute: never a traceback per attempt.
    assert len(outage_log) <= 2, outage_log
    assert "Traceback" not in log_of(scheduler)
    for worker in workers:
        assert "Traceback" not in log_of(worker), log_of(worker)


def test_a_job_created_while_redis_is_down_is_accepted_queued_and_runs_when_redis_returns(private_redis, bob, tmp_path):
    from tests.fixtures.actors import api_client

    client = api_client(bob)
    private_redis.stop()

    response = client.post("/api/jobs/", {"kind": "test-sleeper", "params": {"seconds": 0.1}}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "queued"
    job = Job.objects.get(pk=response.json()["id"])

    private_redis.start()
    worker = start_worker(tmp_path, name="after-outage", REDIS_URL=private_redis.url)
    scheduler = start_scheduler(tmp_path, REDIS_URL=private_redis.url)
    try:
        wait_for_status(job, Status.SUCCEEDED)
    finally:
        worker.stop()
        scheduler.stop()
    assert Job.objects.count() == 1
    assert "Re-enqueued" in JobEvent.objects.filter(job=job).order_by("seq").first().text


def test_starting_a_job_from_its_page_while_redis_is_down_saves_it_and_says_it_will_start_later(private_redis, bob):
    client = Client()
    client.force_login(bob)
    private_redis.stop()

    response = client.post("/jobs/start/test-sleeper/", {"seconds": "0.1"}, follow=True)

    assert response.status_code == 200
    job = Job.objects.get()
    assert job.status == Status.QUEUED
    assert "will start by itself when the queue answers again" in response.content.decode()


def test_cancelling_a_queued_job_while_redis_is_down_cancels_it(private_redis, bob):
    job = start_job("test-sleeper", {"seconds": 5}, bob)
    client = Client()
    client.force_login(bob)
    private_redis.stop()

    response = client.post(f"/api/jobs/{job.pk}/cancel/")

    assert response.status_code == 202
    job.refresh_from_db()
    assert job.status == Status.CANCELLED


def test_after_redis_loses_its_data_a_live_worker_is_listed_again_within_a_heartbeat(private_redis, tmp_path):
    worker = start_worker(tmp_path, name="flushed", REDIS_URL=private_redis.url)
    try:
        assert private_redis.client().flushall()

        try:
            wait_until(lambda: listed_alive("test-flushed-"), timeout=30, message="the worker to register again after FLUSHALL")
        except TimeoutError as exc:
            keys = private_redis.client().keys("*")
            raise AssertionError(f"{exc}; keys: {keys}; worker output:\n{worker.output()}") from None
        assert worker.alive()
    finally:
        worker.stop()


def test_a_worker_killed_with_sigkill_stops_being_listed_alive_well_before_90_seconds(private_redis, tmp_path):
    worker = start_worker(tmp_path, name="killed", REDIS_URL=private_redis.url)
    assert listed_alive("test-killed-")

    worker.kill_group()

    wait_until(lambda: not listed_alive("test-killed-"), timeout=30, message="the killed worker to stop being listed alive")


@pytest.mark.slow
def test_runpanel_starts_a_part_that_exits_again_instead_of_stopping_the_panel(private_redis, tmp_path):
    port = free_port()
    env = child_env(REDIS_URL=private_redis.url, PORT=port, WEB_CONCURRENCY=1)
    panel = Process("runpanel", [sys.executable, "manage.py", "runpanel"], env, tmp_path)
    try:
        wait_until(lambda: "Filrouge is up" in panel.output() or not panel.alive(), timeout=90, message="runpanel to start")
        wait_for_port("127.0.0.1", port, timeout=60)

        def worker_pids():
            import psutil

            pids = []
            for pid in children_of(panel.pid):
                try:
                    if "rqworker" in psutil.Process(pid).cmdline():
                        pids.append(pid)
                except psutil.NoSuchProcess:
                    pass
            return pids

        wait_until(worker_pids, timeout=30, message="runpanel's worker")
        first = worker_pids()[0]
        os.kill(first, signal.SIGKILL)

        wait_until(lambda: worker_pids() and first not in worker_pids(), timeout=30, message="a new worker")
        assert panel.alive(), panel.output()
        assert "worker exited" in panel.output() and "starting it again" in panel.output()
    finally:
        panel.stop()
