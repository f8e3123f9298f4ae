import pytest

from panel.jobs.models import Job, JobEvent, Status
from tests.fixtures.actors import api_client

pytestmark = pytest.mark.django_db


def test_a_ci_script_starts_a_job_with_one_authenticated_request(bob):
    response = api_client(bob).post("/api/jobs/", {"kind": "diagnostics", "params": {"checks": ["disk"]}}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued" and body["kind"] == "diagnostics" and body["user"] == "bob"
    assert body["params"] == {"checks": ["disk"], "rounds": 1, "interval": 5.0}
    assert Job.objects.get(pk=body["id"]).queue == "high"


def test_invalid_parameters_are_field_errors(bob):
    response = api_client(bob).post("/api/jobs/", {"kind": "diagnostics", "params": {"rounds": "many", "checks": ["cpu"]}}, format="json")

    assert response.status_code == 400
    errors = response.json()["params"]
    assert errors["rounds"] == ["A valid integer is required."]
    assert errors["checks"] == {"0": ['"cpu" is not a valid choice.']}
    assert not Job.objects.exists()


def test_an_unknown_kind_is_a_clear_error(bob):
    response = api_client(bob).post("/api/jobs/", {"kind": "reboot-everything"}, format="json")

    assert response.status_code == 400
    assert response.json()["kind"][0].startswith("Unknown job kind 'reboot-everything'. Known kinds: diagnostics")


def test_a_student_cannot_start_an_operator_job(sam):
    response = api_client(sam).post("/api/jobs/", {"kind": "diagnostics"}, format="json")

    assert response.status_code == 403
    assert "does not allow starting diagnostics jobs" in response.json()["detail"]


def test_an_oversized_request_is_refused_with_413(bob, settings):
    settings.MAX_REQUEST_BYTES = 1024
    response = api_client(bob).post("/api/jobs/", {"kind": "diagnostics", "params": {"pad": "x" * 5000}}, format="json")

    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_malformed_json_is_a_400_not_a_traceback(bob):
    response = api_client(bob).post("/api/jobs/", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_events_after_a_cursor_and_the_end_marker(bob):
    job = Job.objects.create(kind="diagnostics", user=bob, status=Status.SUCCEEDED, timeout=60, line_count=3)
    for seq in (1, 2, 3):
        JobEvent.objects.create(job=job, seq=seq, time=job.created_at, text=f"l{seq}", is_end=seq == 3)

    body = api_client(bob).get(f"/api/jobs/{job.pk}/events/", {"after": 1}).json()

    assert body["status"] == "succeeded"
    assert [(event["seq"], event["is_end"]) for event in body["events"]] == [(2, False), (3, True)]


def test_cancelling_a_finished_job_is_a_conflict(bob):
    job = Job.objects.create(kind="diagnostics", user=bob, status=Status.SUCCEEDED, timeout=60)

    response = api_client(bob).post(f"/api/jobs/{job.pk}/cancel/")

    assert response.status_code == 409
    assert response.json()["detail"] == "This job has already finished (Succeeded)."


def test_the_openapi_schema_and_its_docs_page_are_served(bob):
    client = api_client(bob)

    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert schema["openapi"].startswith("3.") and "/api/jobs/" in schema["paths"]
    assert client.get("/api/docs/").status_code == 200
    assert client.get("/api/").status_code == 302
