"""The Idempotency-Key header on POST /api/jobs/: a retried request never starts a second job."""

import threading

import pytest

from panel.jobs.models import Job
from tests.fixtures.actors import api_client

pytestmark = pytest.mark.django_db(transaction=True)

START = {"kind": "test-sleeper", "params": {"seconds": 0.1}}


def test_the_same_key_twice_returns_the_first_job_and_starts_no_second(clean_redis, bob):
    client = api_client(bob)

    first = client.post("/api/jobs/", START, format="json", HTTP_IDEMPOTENCY_KEY="deploy-2026-12-07-a")
    again = client.post("/api/jobs/", START, format="json", HTTP_IDEMPOTENCY_KEY="deploy-2026-12-07-a")

    assert first.status_code == 201
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Job.objects.count() == 1


def test_a_key_belongs_to_its_user(clean_redis, bob, alice):
    bobs = api_client(bob).post("/api/jobs/", START, format="json", HTTP_IDEMPOTENCY_KEY="same-key")
    alices = api_client(alice).post("/api/jobs/", START, format="json", HTTP_IDEMPOTENCY_KEY="same-key")

    assert bobs.status_code == alices.status_code == 201
    assert bobs.json()["id"] != alices.json()["id"]


def test_without_a_key_each_request_starts_a_job(clean_redis, bob):
    client = api_client(bob)

    client.post("/api/jobs/", START, format="json")
    client.post("/api/jobs/", START, format="json")

    assert Job.objects.count() == 2


def test_a_key_reused_for_another_kind_is_refused_with_a_message(clean_redis, bob):
    client = api_client(bob)
    client.post("/api/jobs/", START, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    response = client.post("/api/jobs/", {"kind": "diagnostics", "params": {}}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert response.status_code == 422
    assert "already used for job" in response.json()["detail"]
    assert Job.objects.count() == 1


def test_a_malformed_key_is_a_400_naming_the_header(clean_redis, bob):
    response = api_client(bob).post("/api/jobs/", START, format="json", HTTP_IDEMPOTENCY_KEY="x" * 201)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert not Job.objects.exists()


def test_concurrent_requests_with_the_same_key_start_one_job(clean_redis, bob):
    from django.db import connection

    client = api_client(bob)
    token = client.plaintext
    answers = []

    def post():
        from rest_framework.test import APIClient

        other = APIClient()
        other.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        answers.append(other.post("/api/jobs/", START, format="json", HTTP_IDEMPOTENCY_KEY="raced").status_code)
        connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answers).count(201) == 1 and all(code in (200, 201) for code in answers), answers
    assert Job.objects.count() == 1
