from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from panel.accounts.models import ApiToken, TokenScope, token_digest
from tests.fixtures.actors import api_client, logged_in

pytestmark = pytest.mark.django_db


def bearer(plaintext):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def test_a_token_is_shown_once_and_stored_only_as_a_hash(bob):
    client = APIClient()
    client.force_authenticate(bob)

    response = client.post("/api/tokens/", {"name": "CI deploy", "scope": "write", "expires_in_days": 30}, format="json")

    assert response.status_code == 201
    plaintext = response.json()["token"]
    assert plaintext.startswith("frg_")
    token = ApiToken.objects.get(name="CI deploy")
    assert token.digest == token_digest(plaintext) and plaintext not in str(token.__dict__)
    assert 29 <= (token.expires_at - timezone.now()).days <= 30
    listed = client.get("/api/tokens/").json()["results"]
    assert listed[0]["name"] == "CI deploy" and "token" not in listed[0]


def test_a_token_authenticates_and_records_when_it_was_last_used(bob):
    token, plaintext = ApiToken.issue(bob, "script")

    response = bearer(plaintext).get("/api/me/", REMOTE_ADDR="10.9.8.7")

    assert response.status_code == 200 and response.json()["username"] == "bob"
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_ip == "10.9.8.7"


def test_an_expired_or_revoked_or_unknown_token_is_refused(bob):
    expired, expired_text = ApiToken.issue(bob, "old", expires_at=timezone.now() - timedelta(seconds=1))
    revoked, revoked_text = ApiToken.issue(bob, "revoked")
    revoked.revoke()

    assert bearer(expired_text).get("/api/me/").json() == {"detail": "This API token has expired."}
    assert bearer(revoked_text).get("/api/me/").json() == {"detail": "This API token was revoked."}
    response = bearer("frg_AAAAAAAA_" + "x" * 43).get("/api/me/")
    assert response.status_code == 401 and response.json() == {"detail": "Invalid API token."}


def test_a_read_token_can_read_but_cannot_start_a_job(bob):
    client = api_client(bob, TokenScope.READ)

    assert client.get("/api/jobs/").status_code == 200
    response = client.post("/api/jobs/", {"kind": "diagnostics"}, format="json")

    assert response.status_code == 403
    assert "read scope" in response.json()["detail"]


def test_a_user_never_sees_or_revokes_another_users_token(sam, dave):
    token, _ = ApiToken.issue(sam, "sam's token")
    client = api_client(dave)

    assert [t["name"] for t in client.get("/api/tokens/").json()["results"]] == ["dave test token"]
    assert client.delete(f"/api/tokens/{token.pk}/").status_code == 404
    assert logged_in(dave).post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_revoking_through_the_api_keeps_the_token_listed_as_revoked(bob):
    token, plaintext = ApiToken.issue(bob, "to revoke", TokenScope.WRITE)
    client = bearer(plaintext)

    assert client.delete(f"/api/tokens/{token.pk}/").status_code == 204

    token.refresh_from_db()
    assert token.revoked_at is not None
    assert client.get("/api/me/").status_code == 401


def test_the_tokens_page_shows_a_new_token_once(bob):
    client = logged_in(bob)

    response = client.post("/accounts/tokens/", {"name": "laptop", "scope": "read", "expires_in_days": "90"})

    page = response.content.decode()
    plaintext = page.split('id="new-token">')[1].split("<")[0]
    assert ApiToken.objects.get(name="laptop").digest == token_digest(plaintext)
    assert response["Cache-Control"] == "no-store"
    assert plaintext not in client.get("/accounts/tokens/").content.decode()


def test_the_api_without_credentials_answers_401_or_403(db):
    response = APIClient().get("/api/jobs/")
    assert response.status_code in (401, 403)
