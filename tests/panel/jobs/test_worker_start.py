"""A fresh worker starts without a traceback and is warm before it takes its first job."""

import logging

import pytest

from panel.jobs import worker as worker_module
from panel.jobs.models import Status
from panel.jobs.services import start_job
from tests.support.ports import wait_until


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_fresh_worker_runs_its_first_job_without_printing_a_traceback(worker, bob):
    job = start_job("test-sleeper", {"seconds": 0.1}, bob)

    wait_until(lambda: job.__class__.objects.get(pk=job.pk).status == Status.SUCCEEDED, timeout=60, message="the first job to succeed")

    output = worker.output()
    assert "Traceback" not in output and "Exception ignored" not in output, output


def test_the_kubernetes_client_is_warmed_up_when_the_worker_starts_not_at_its_first_fork():
    import clusters.kubernetes.jobs  # noqa: F401 (registers its warm-up)

    assert any(hook.__name__ == "preload_kubernetes_client" for hook in worker_module.WORKER_STARTUP_HOOKS)
    worker_module.run_startup_hooks()  # every name it asks for exists, or is skipped quietly


def test_a_warm_up_that_fails_is_one_log_line_and_the_worker_still_starts(monkeypatch, caplog):
    def broken_warm_up():
        raise AttributeError("module 'kubernetes.client' has no attribute 'V1Event'")

    monkeypatch.setattr(worker_module, "WORKER_STARTUP_HOOKS", [broken_warm_up])

    with caplog.at_level(logging.WARNING, logger="filrouge.jobs"):
        worker_module.run_startup_hooks()

    assert [record.getMessage() for record in caplog.records] == [
        "Worker warm-up broken_warm_up skipped: AttributeError: module 'kubernetes.client' has no attribute 'V1Event'"
    ]
    assert not caplog.records[0].exc_info
