import pytest
from django.test import Client

from panel.jobs.models import Job, Status
from tests.fixtures.actors import logged_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_healthz_reports_each_component_and_answers_200_with_a_live_worker(worker, bob):
    response = logged_in(bob).get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["components"]["database"]["ok"] and body["components"]["redis"]["ok"]
    workers = body["components"]["workers"]["workers"]
    assert any(w["name"].startswith("test-worker") and w["alive"] and w["last_heartbeat"] for w in workers)
    assert set(body["components"]["queues"]["depth"]) == {"high", "default", "low"}


def test_healthz_answers_503_without_a_worker(clean_redis, bob):
    response = logged_in(bob).get("/healthz")

    assert response.status_code == 503
    assert response.json()["components"]["workers"] == {"ok": False, "alive": 0, "workers": [], "detail": "0 worker(s) alive"}


def test_healthz_answers_503_naming_redis_when_redis_is_down(settings, bob):
    settings.RQ_QUEUES = {name: {"URL": "redis://127.0.0.1:1/0"} for name in ("high", "default", "low")}

    response = logged_in(bob).get("/healthz")

    assert response.status_code == 503
    assert response.json()["components"]["redis"]["detail"].startswith("Redis unreachable")


def test_metrics_expose_jobs_by_status_queue_depth_and_job_durations(clean_redis, bob):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    Job.objects.create(kind="diagnostics", status=Status.SUCCEEDED, timeout=60, started_at=now - timedelta(seconds=2), finished_at=now)
    Job.objects.create(kind="diagnostics", status=Status.FAILED, timeout=60, started_at=now - timedelta(seconds=40), finished_at=now)

    text = Client().get("/metrics").content.decode()

    assert 'filrouge_jobs{status="succeeded"} 1.0' in text and 'filrouge_jobs{status="failed"} 1.0' in text
    assert 'filrouge_queue_depth{queue="high"} 0.0' in text
    assert 'filrouge_job_duration_seconds_bucket{le="5.0"} 1.0' in text
    assert 'filrouge_job_duration_seconds_bucket{le="60.0"} 2.0' in text
    assert "filrouge_job_duration_seconds_sum 42.0" in text


def test_metrics_can_require_a_token(monkeypatch):
    monkeypatch.setenv("FILROUGE_METRICS_TOKEN", "scrape-me")

    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 200
