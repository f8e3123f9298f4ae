"""PostgreSQL going away while a job runs: a real worker whose database connections go
through a TCP proxy the test cuts (the scheduler and the test itself keep a direct line,
so the reconciler runs throughout and could wrongly call the job lost)."""

import pytest

from panel.jobs.models import Job, JobEvent, Status
from panel.jobs.services import start_job
from tests.fixtures.workers import start_scheduler, start_worker
from tests.support.faults import database_proxy, proxied_database_url  # noqa: F401 (fixture)
from tests.support.ports import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

OUTAGE_SECONDS = 6  # twice JOB_LOST_AFTER in the test settings; the benchmark runs 30 s


def written(job):
    return JobEvent.objects.filter(job=job).count()


@pytest.mark.slow
def test_a_job_keeps_every_line_in_order_and_its_true_status_through_a_database_outage(database_proxy, clean_redis, bob, tmp_path):
    import time

    worker = start_worker(tmp_path, name="db-outage", DATABASE_URL=proxied_database_url(database_proxy))
    scheduler = start_scheduler(tmp_path)
    try:
        lines = 20 * (OUTAGE_SECONDS + 6)
        job = start_job("test-writer", {"lines": lines, "per_second": 20}, bob)
        wait_until(lambda: written(job) >= 20, timeout=60, message="the job to write its first lines")

        database_proxy.cut()
        cut_at = written(job)
        outage_ends = time.monotonic() + OUTAGE_SECONDS
        statuses = set()
        while time.monotonic() < outage_ends:  # the reconciler runs every 0.5 s meanwhile
            job.refresh_from_db()
            statuses.add(job.status)
            time.sleep(0.2)
        assert statuses == {Status.RUNNING}, statuses
        assert written(job) == cut_at  # nothing got through: the outage was real
        database_proxy.restore()

        wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=60, message="the job to end")
    finally:
        worker.stop()
        scheduler.stop()

    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, (job.status, job.error)
    events = list(JobEvent.objects.filter(job=job).order_by("seq"))
    assert [event.seq for event in events] == list(range(1, lines + 2))
    assert [event.text for event in events[:-1]] == [f"line {n}" for n in range(1, lines + 1)]
    assert events[-1].is_end and events[-1].text == "Finished: succeeded."
    assert job.line_count == lines + 1
    assert job.result == {"lines": lines}


def test_a_job_taken_from_the_queue_while_the_database_is_down_waits_for_it_and_runs(database_proxy, clean_redis, bob, tmp_path):
    worker = start_worker(tmp_path, name="db-down-at-start", DATABASE_URL=proxied_database_url(database_proxy))
    scheduler = start_scheduler(tmp_path)
    try:
        database_proxy.cut()
        job = start_job("test-writer", {"lines": 5, "per_second": 50}, bob)
        wait_until(lambda: not clean_redis.llen("rq:queue:default"), timeout=60, message="the worker to take the job")
        database_proxy.restore()

        wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=60, message="the job to end")
    finally:
        worker.stop()
        scheduler.stop()

    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, (job.status, job.error)
    assert [e.text for e in JobEvent.objects.filter(job=job).order_by("seq")][:5] == [f"line {n}" for n in range(1, 6)]
