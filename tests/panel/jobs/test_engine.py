"""The job engine on a real RQ worker process, real PostgreSQL and real Redis."""

import os
import signal

import pytest

from panel.jobs.models import Job, JobEvent, Status
from panel.jobs.reconciler import reconcile
from panel.jobs.services import cancel_job, retry_job, start_job
from tests.support.ports import wait_until
from tests.fixtures.workers import children_of, start_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_for_status(job, *statuses, timeout=30):
    def reached():
        job.refresh_from_db()
        return job.status in statuses

    try:
        wait_until(reached, timeout=timeout, message=f"job {job.pk} to become {'/'.join(statuses)}")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; it is {job.status}: {job.error}") from None
    return job


def lines(job):
    return list(JobEvent.objects.filter(job=job).order_by("seq"))


def test_diagnostics_job_succeeds_with_one_line_per_check_and_an_end_marker(worker, bob):
    job = start_job("diagnostics", {}, bob)

    wait_for_status(job, Status.SUCCEEDED)

    events = lines(job)
    tasks = [event.task for event in events if event.task]
    assert tasks == ["database", "disk", "redis", "workers"]
    assert all(event.outcome == "ok" for event in events if event.task), [e.text for e in events]
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert events[-1].is_end and events[-1].text == "Finished: succeeded."
    assert job.progress_done == job.progress_total == 4
    assert job.started_at and job.finished_at and job.worker_name.startswith("test-worker")
    assert job.result == {"checks": 4, "failures": 0}


def test_a_refusal_by_the_work_ends_failed_and_a_bug_ends_errored(worker, bob):
    refused = start_job("test-refuser", {}, bob)
    broken = start_job("test-broken", {}, bob)

    wait_for_status(refused, Status.FAILED)
    wait_for_status(broken, Status.ERRORED)

    assert refused.error == "web01 refused the change: disk full."
    assert lines(refused)[-1].text == "Finished: failed. web01 refused the change: disk full."
    assert broken.error.startswith("Internal error (ZeroDivisionError: division by zero)")
    assert "Traceback" not in "".join(event.text for event in lines(broken))


def test_registered_secrets_and_private_keys_never_reach_the_database(worker, bob):
    job = start_job("test-secret-teller", {"secret": "hunter2-very-secret"}, bob)

    wait_for_status(job, Status.SUCCEEDED)

    stored = "\n".join(event.text for event in lines(job))
    assert "hunter2-very-secret" not in stored
    assert "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" not in stored
    assert "connecting with password [redacted]" in stored


def test_lines_are_written_in_batches_not_one_query_per_line(worker, bob):
    job = start_job("test-lines", {"count": 5000}, bob)

    wait_for_status(job, Status.SUCCEEDED)

    assert JobEvent.objects.filter(job=job).count() == 5001
    assert job.line_count == 5001
    # Batches are visible as runs of lines sharing one write; 5000 lines need few of them.
    assert job.progress_done == 5000


def test_cancel_stops_a_running_job_within_a_few_seconds(worker, bob):
    job = start_job("test-sleeper", {"seconds": 120}, bob)
    wait_until(timeout=30, predicate=lambda: JobEvent.objects.filter(job=job, text__startswith="still here").exists(), message="the job to run")

    cancel_job(job, bob)

    wait_for_status(job, Status.CANCELLED, timeout=5)
    assert job.error == "Cancelled by bob."
    assert lines(job)[-1].is_end
    assert worker.alive(), "the worker survives a cancelled job"


def test_cancel_ends_even_a_job_that_ignores_it(worker, bob):
    job = start_job("test-stubborn", {"seconds": 120}, bob)
    wait_until(timeout=30, predicate=lambda: JobEvent.objects.filter(job=job).exists(), message="the job to start")

    cancel_job(job, bob)

    wait_for_status(job, Status.CANCELLED, timeout=15)
    assert "did not stop by itself" in lines(job)[-1].text
    assert worker.alive()


def test_cancel_of_a_queued_job_means_it_never_runs(transactional_db, clean_redis, bob, tmp_path):
    job = start_job("test-sleeper", {"seconds": 1}, bob)

    cancel_job(job, bob)
    process = start_worker(tmp_path)
    try:
        job.refresh_from_db()
        assert job.status == Status.CANCELLED
        assert job.started_at is None
        assert "before it started" in job.error
    finally:
        process.stop()


def test_a_job_past_its_kind_timeout_fails_with_the_limit_in_the_message(worker, bob):
    job = start_job("test-short-timeout", {"seconds": 60}, bob)

    wait_for_status(job, Status.FAILED, timeout=20)

    assert job.error == "Timed out after 2 s (the limit for test-short-timeout jobs)."
    assert job.timeout == 2


def test_retry_creates_a_new_job_linked_to_the_old_one(worker, bob):
    first = start_job("test-refuser", {}, bob)
    wait_for_status(first, Status.FAILED)

    second = retry_job(first, bob)

    wait_for_status(second, Status.FAILED)
    assert second.pk != first.pk and second.retry_of_id == first.pk
    assert second.kind == first.kind and second.params == first.params


def test_a_worker_killed_with_sigkill_leaves_a_lost_job_not_a_running_one(transactional_db, clean_redis, bob, tmp_path, scheduler):
    process = start_worker(tmp_path, name="doomed")
    job = start_job("test-sleeper", {"seconds": 300}, bob)
    wait_for_status(job, Status.RUNNING)
    wait_until(timeout=30, predicate=lambda: children_of(process.pid), message="the job's work horse")

    process.kill_group()

    wait_for_status(job, Status.LOST, timeout=60)
    assert "no heartbeat from worker" in job.error
    assert lines(job)[-1].is_end


def test_a_killed_work_horse_is_reported_lost_by_its_worker_at_once(worker, bob):
    job = start_job("test-sleeper", {"seconds": 300}, bob)
    wait_for_status(job, Status.RUNNING)
    horse = wait_until(timeout=30, predicate=lambda: children_of(worker.pid), message="the job's work horse")[0]

    os.kill(horse, signal.SIGKILL)

    wait_for_status(job, Status.LOST, timeout=10)
    assert "was killed by SIGKILL" in job.error
    assert worker.alive()


def test_jobs_queued_when_redis_loses_its_data_are_enqueued_again(transactional_db, clean_redis, bob, tmp_path, scheduler):
    job = start_job("diagnostics", {}, bob)
    assert clean_redis.exists(f"rq:job:{job.rq_id}")

    clean_redis.flushdb()  # Redis restarted without persistence
    process = start_worker(tmp_path)
    try:
        wait_for_status(job, Status.SUCCEEDED, timeout=30)
    finally:
        process.stop()
    assert lines(job)[0].text == "Re-enqueued: the queue (Redis) had lost this job or was unreachable when it was created."


def test_the_reconciler_leaves_healthy_jobs_alone(worker, bob):
    job = start_job("test-sleeper", {"seconds": 3}, bob)
    wait_for_status(job, Status.RUNNING)

    assert reconcile() == {"lost": 0, "requeued": 0}

    wait_for_status(job, Status.SUCCEEDED, timeout=20)
