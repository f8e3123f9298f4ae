"""Django admin pages of the lab models, and the API's action answers (202 with the job, 409 when busy)."""

import pytest

from labs.models import Attempt, Environment, EnvironmentState
from panel.jobs.models import Job
from tests.fixtures.actors import api_client, logged_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["course", "exercise", "enrolment", "environment", "attempt"])
def test_the_admin_lists_and_opens_each_lab_model_without_the_encrypted_access(model, exercise, enrolled, sam, alice):
    environment = Environment.objects.create(exercise=exercise, owner=sam, state=EnvironmentState.READY)
    environment.access = {"token": "sekrit-token-123"}
    environment.save()
    objects = {"course": exercise.course, "exercise": exercise, "enrolment": exercise.course.enrolments.first(),
               "environment": environment, "attempt": Attempt.objects.create(environment=environment, max_score=3)}
    client = logged_in(alice)

    listing = client.get(f"/admin/labs/{model}/")
    change = client.get(f"/admin/labs/{model}/{objects[model].pk}/change/")

    assert listing.status_code == 200 and change.status_code == 200
    assert b"sekrit-token-123" not in change.content and b"access_encrypted" not in change.content


def test_api_actions_answer_202_with_the_job_then_409_while_it_runs(exercise, enrolled, sam):
    client = api_client(sam)

    launched = client.post(f"/api/labs/exercises/{exercise.pk}/launch/", format="json")
    again = client.post(f"/api/labs/exercises/{exercise.pk}/launch/", format="json")

    assert launched.status_code == 202
    body = launched.json()
    assert body["job"]["kind"] == "lab-launch" and body["environment"]["state"] == "pending" and body["environment"]["owner"] == "sam"
    assert again.status_code == 409 and "still running" in again.json()["detail"]
    assert Job.objects.count() == 1
    environment = Environment.objects.get(pk=body["environment"]["id"])
    assert client.post(f"/api/labs/environments/{environment.pk}/check/", format="json").status_code == 409


def test_extend_takes_minutes_and_refuses_nonsense(exercise, enrolled, sam, carol):
    environment = Environment.objects.create(exercise=exercise, owner=sam, state=EnvironmentState.READY)
    client = api_client(carol)

    assert client.post(f"/api/labs/environments/{environment.pk}/extend/", {"minutes": 0}, format="json").status_code == 400
    response = client.post(f"/api/labs/environments/{environment.pk}/extend/", {"minutes": 45}, format="json")

    assert response.status_code == 202 and Job.objects.get().params == {"minutes": 45}
