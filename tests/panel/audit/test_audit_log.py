import pytest

from clusters.models import Credential, CredentialKind
from panel.audit.context import acting_as
from panel.audit.models import AuditEvent
from tests.fixtures.actors import api_client, logged_in

pytestmark = pytest.mark.django_db


def test_a_change_through_the_api_records_who_what_before_after_ip_and_request_id(bob):
    client = api_client(bob)
    created = client.post("/api/tokens/", {"name": "ci", "scope": "read"}, format="json", REMOTE_ADDR="10.0.0.5", HTTP_X_REQUEST_ID="req-12345678")
    token_id = created.json()["id"]

    client.delete(f"/api/tokens/{token_id}/", REMOTE_ADDR="10.0.0.6")

    create = AuditEvent.objects.get(action="create", object_id=str(token_id))
    assert create.username == "bob" and create.source == "api" and create.source_ip == "10.0.0.5"
    assert create.request_id == "req-12345678" and created["X-Request-ID"] == "req-12345678"
    assert create.after["name"] == "ci" and "digest" not in create.after
    update = AuditEvent.objects.get(action="update", object_id=str(token_id))
    assert update.before["revoked_at"] is None and update.after["revoked_at"] is not None
    assert [change[0] for change in update.changes()] == ["revoked_at"]


def test_a_change_through_the_ui_is_recorded_as_web(bob):
    logged_in(bob).post("/accounts/tokens/", {"name": "from the page", "scope": "read", "expires_in_days": ""}, REMOTE_ADDR="10.0.0.7")

    event = AuditEvent.objects.get(action="create", object_repr__startswith="from the page")
    assert event.source == "web" and event.source_ip == "10.0.0.7" and len(event.request_id) == 32


def test_secrets_are_masked_in_audit_records():
    with acting_as(source="cli"):
        credential = Credential(name="db-password", kind=CredentialKind.PASSWORD)
        credential.set_secret({"password": "s3cret-value"})
        credential.save()

    event = AuditEvent.objects.get(action="create", object_repr="db-password")
    assert event.after["secret_encrypted"] == "(secret)"
    assert "s3cret-value" not in str(event.after)


def test_bookkeeping_outside_a_request_or_command_is_not_recorded(bob):
    bob.first_name = "Bob"
    bob.save()
    assert not AuditEvent.objects.filter(object_repr="bob").exists()


def test_only_admins_browse_the_audit_log(alice, bob, sam):
    with acting_as(user=alice, source="cli"):
        Credential.objects.create(name="k", kind=CredentialKind.PASSWORD, secret_encrypted="x")

    assert logged_in(alice).get("/audit/").status_code == 200
    assert api_client(alice).get("/api/audit/", {"action": "create"}).json()["count"] == 1
    for user in (bob, sam):
        assert logged_in(user).get("/audit/").status_code == 403
        assert api_client(user).get("/api/audit/").status_code == 403


def test_the_audit_log_filters_by_user_action_object_and_request(alice, bob):
    api_client(bob).post("/api/tokens/", {"name": "one"}, format="json", HTTP_X_REQUEST_ID="req-aaaaaaaa")
    api_client(alice).post("/api/tokens/", {"name": "two"}, format="json", HTTP_X_REQUEST_ID="req-bbbbbbbb")
    client = logged_in(alice)

    page = client.get("/audit/", {"user": "bob"}).content.decode()
    assert "one (frg_" in page and "two (frg_" not in page
    assert api_client(alice).get("/api/audit/", {"request_id": "req-bbbbbbbb"}).json()["results"][0]["object_repr"].startswith("two")
    assert api_client(alice).get("/api/audit/", {"action": "delete"}).json()["count"] == 0
    detail = client.get(f"/audit/{AuditEvent.objects.get(request_id='req-aaaaaaaa').pk}/").content.decode()
    assert "req-aaaaaaaa" in detail
