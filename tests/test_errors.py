import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.boom_urls")]


def test_a_broken_page_shows_a_plain_error_with_the_request_id_and_no_traceback(bob):
    client = Client(raise_request_exception=False)
    client.force_login(bob)

    response = client.get("/boom/", HTTP_X_REQUEST_ID="req-boom-0001")

    body = response.content.decode()
    assert response.status_code == 500
    assert "Something broke on our side. Request id: req-boom-0001" in body
    assert "Traceback" not in body and "secret detail" not in body


def test_a_broken_api_call_answers_json_without_a_traceback(bob):
    client = Client(raise_request_exception=False)
    client.force_login(bob)

    response = client.get("/api/boom/")

    assert response.status_code == 500
    assert response.json() == {"detail": "Something broke on our side. Request id: " + response["X-Request-ID"]}


def test_an_unknown_page_is_a_friendly_404(bob):
    client = Client()
    client.force_login(bob)

    response = client.get("/no/such/page/")

    assert response.status_code == 404 and "not yours to see" in response.content.decode()
