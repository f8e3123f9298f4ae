"""Jobs an older version left queued in Redis under a function path that has moved since
(the layout move: clusters.engine_jobs -> clusters.docker.jobs...): the scheduler points
them at the periodic task of the same name when it starts, or drops them, so that no
worker fails them after an upgrade. Real Redis, real scheduler and worker processes."""

import logging
from datetime import timedelta

import django_rq
import pytest
from rq import Queue
from rq.job import Job as RqJob
from rq.job import JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from panel.jobs.periodic import repair_moved_paths
from tests.fixtures.workers import start_scheduler, start_worker
from tests.support.ports import wait_until

OLD_PROBE = "clusters.engine_jobs.probe_engines"
NEW_PROBE = "clusters.docker.jobs.probe_engines"
OLD_OBSERVE = "clusters.kube_jobs.observe_kubernetes_clusters"
NEW_OBSERVE = "clusters.kubernetes.jobs.observe_kubernetes_clusters"
GONE = "deployments.kube_probe.refresh_kubernetes_services"


def queues():
    return [django_rq.get_queue(name) for name in ("high", "default", "low")]


def old_queue(redis):
    """The low queue as the old version's scheduler wrote to it (plain RQ: django_rq's queue
    would wait for a commit that a test's transaction never makes)."""
    return Queue("low", connection=redis)


@pytest.mark.django_db
def test_it_points_old_paths_at_the_moved_task_and_drops_the_unknown(clean_redis, caplog):
    low = old_queue(clean_redis)
    queued = low.enqueue(OLD_PROBE)
    scheduled = low.enqueue_in(timedelta(hours=1), OLD_OBSERVE)
    gone = low.enqueue(GONE, 7, kind="pods")
    current = low.enqueue(NEW_PROBE)

    with caplog.at_level(logging.WARNING, logger="filrouge.scheduler"):
        done = repair_moved_paths(queues())

    assert done == {(OLD_PROBE, NEW_PROBE): 1, (OLD_OBSERVE, NEW_OBSERVE): 1, (GONE, None): 1}
    assert RqJob.fetch(queued.id, connection=clean_redis).func_name == NEW_PROBE
    assert queued.id in low.get_job_ids()
    assert RqJob.fetch(scheduled.id, connection=clean_redis).func_name == NEW_OBSERVE
    assert scheduled.id in ScheduledJobRegistry(queue=low).get_job_ids()
    assert not RqJob.exists(gone.id, connection=clean_redis) and gone.id not in low.get_job_ids()
    assert RqJob.fetch(current.id, connection=clean_redis).func_name == NEW_PROBE
    lines = [record.getMessage() for record in caplog.records if record.name == "filrouge.scheduler"]
    assert len(lines) == 1, lines
    assert f"1 {OLD_PROBE} -> {NEW_PROBE}" in lines[0] and f"1 {GONE} dropped" in lines[0]


@pytest.mark.django_db
def test_it_keeps_the_arguments_of_a_moved_job(clean_redis):
    low = old_queue(clean_redis)
    job = low.enqueue("clusters.jobs.probe_servers", ids=[3, 4])

    repair_moved_paths(queues())

    job = RqJob.fetch(job.id, connection=clean_redis)
    assert (job.func_name, job.kwargs) == ("clusters.inventory.jobs.probe_servers", {"ids": [3, 4]})


@pytest.mark.django_db
def test_a_second_start_changes_nothing(clean_redis, caplog):
    old_queue(clean_redis).enqueue(OLD_PROBE)
    repair_moved_paths(queues())
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="filrouge.scheduler"):
        assert repair_moved_paths(queues()) == {}
    assert not [record for record in caplog.records if record.name == "filrouge.scheduler"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_after_an_upgrade_the_old_job_runs_under_its_new_path_instead_of_failing(clean_redis, tmp_path):
    low = old_queue(clean_redis)
    old = low.enqueue(OLD_PROBE, result_ttl=600)
    gone = low.enqueue(GONE, result_ttl=600)

    scheduler = start_scheduler(tmp_path)
    try:
        # One pass repairs the queue in order: the old job first, then the one with no new path.
        wait_until(lambda: RqJob.fetch(old.id, connection=clean_redis).func_name == NEW_PROBE, timeout=30,
                   message="the scheduler to repair the old path")
        wait_until(lambda: not RqJob.exists(gone.id, connection=clean_redis), timeout=10,
                   message="the scheduler to drop the job whose function is gone")
        wait_until(lambda: "Queued jobs from an older version" in scheduler.output(), timeout=10, message="the scheduler's log line")
        worker = start_worker(tmp_path)
        try:
            wait_until(lambda: RqJob.fetch(old.id, connection=clean_redis).get_status() in (JobStatus.FINISHED, JobStatus.FAILED),
                       timeout=60, message="the worker to run the repaired job")
            assert RqJob.fetch(old.id, connection=clean_redis).get_status() == JobStatus.FINISHED
            assert FailedJobRegistry(queue=low).get_job_ids() == []
        finally:
            worker.stop()
    finally:
        scheduler.stop()
