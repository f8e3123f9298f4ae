"""Tokens made by tokens: never wider than their parent (scope, expiry), and revoked with it."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from panel.accounts.models import ApiToken, TokenScope
from panel.audit.models import AuditEvent
from tests.fixtures.actors import logged_in

pytestmark = pytest.mark.django_db


def bearer(user, scope=TokenScope.WRITE, days=None):
    expires_at = timezone.now() + timedelta(days=days) if days else None
    token, plaintext = ApiToken.issue(user, "parent", scope, expires_at)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return token, client


def test_a_token_with_an_expiry_cannot_create_a_token_without_one(bob):
    parent, client = bearer(bob, days=10)

    response = client.post("/api/tokens/", {"name": "forever", "scope": "write", "expires_in_days": None}, format="json")

    assert response.status_code == 400
    assert "must expire too" in response.json()["expires_in_days"][0]
    assert not ApiToken.objects.filter(name="forever").exists()


def test_a_token_cannot_create_a_token_that_outlives_it_and_the_default_is_shortened(bob):
    parent, client = bearer(bob, days=10)

    longer = client.post("/api/tokens/", {"name": "longer", "scope": "write", "expires_in_days": 30}, format="json")
    default = client.post("/api/tokens/", {"name": "default", "scope": "read"}, format="json")
    shorter = client.post("/api/tokens/", {"name": "shorter", "scope": "read", "expires_in_days": 5}, format="json")

    assert longer.status_code == 400 and "cannot outlive it" in longer.json()["expires_in_days"][0]
    assert default.status_code == 201 and shorter.status_code == 201
    assert ApiToken.objects.get(name="default").expires_at == parent.expires_at
    assert ApiToken.objects.get(name="shorter").expires_at < parent.expires_at
    assert ApiToken.objects.get(name="shorter").parent == parent and default.json()["parent"] == parent.pk


def test_a_read_token_cannot_create_a_write_token(bob):
    _parent, client = bearer(bob, scope=TokenScope.READ)

    response = client.post("/api/tokens/", {"name": "wider", "scope": "write"}, format="json")

    assert response.status_code == 403
    assert not ApiToken.objects.filter(name="wider").exists()


def test_the_scope_rule_holds_in_the_serializer_too(bob, rf):
    from panel.accounts.serializers import ApiTokenSerializer

    parent, _client = bearer(bob, scope=TokenScope.READ)
    request = rf.post("/api/tokens/")
    request.user, request.auth = bob, parent
    serializer = ApiTokenSerializer(data={"name": "wider", "scope": "write"}, context={"request": request})

    assert not serializer.is_valid() and "read tokens" in serializer.errors["scope"][0]


def test_revoking_a_token_revokes_the_tokens_it_created_and_theirs(bob):
    parent, client = bearer(bob)
    child = client.post("/api/tokens/", {"name": "child", "scope": "write", "expires_in_days": 30}, format="json").json()
    child_client = APIClient()
    child_client.credentials(HTTP_AUTHORIZATION=f"Bearer {child['token']}")
    grandchild = child_client.post("/api/tokens/", {"name": "grandchild", "scope": "read", "expires_in_days": 7}, format="json").json()
    grandchild_client = APIClient()
    grandchild_client.credentials(HTTP_AUTHORIZATION=f"Bearer {grandchild['token']}")
    assert grandchild_client.get("/api/me/").status_code == 200

    assert child_client.delete(f"/api/tokens/{parent.pk}/").status_code == 204  # a child revoking its own parent

    assert ApiToken.objects.filter(name__in=["parent", "child", "grandchild"], revoked_at__isnull=True).count() == 0
    assert child_client.get("/api/me/").status_code == 401 and grandchild_client.get("/api/me/").status_code == 401
    assert AuditEvent.objects.filter(object_type__model="apitoken", object_id=str(grandchild["id"])).exists()


def test_revoking_in_the_browser_revokes_the_children_too(bob):
    parent, client = bearer(bob)
    client.post("/api/tokens/", {"name": "child", "scope": "read", "expires_in_days": 3}, format="json")

    response = logged_in(bob).post(f"/accounts/tokens/{parent.pk}/revoke/")

    assert response.status_code == 302
    assert ApiToken.objects.get(name="child").revoked_at is not None
