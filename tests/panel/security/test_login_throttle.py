"""Failed logins are throttled per account and per client address (django-axes), on the
panel's login and the admin login; the refusal says when to try again and is audited."""

from datetime import timedelta

import pytest
from django.db.models import F
from django.test import Client

from panel.audit.models import AuditEvent
from tests.fixtures.actors import PASSWORD

pytestmark = pytest.mark.django_db


def login(client, username, password, address, path="/accounts/login/"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_thirty_wrong_passwords_then_the_right_one_is_refused_with_when_to_try_again(bob):
    client = Client()
    answers = [login(client, "bob", f"guess-{n}", "10.0.0.1").status_code for n in range(30)]

    right = login(client, "bob", PASSWORD, "10.0.0.1")

    assert answers[:9] == [200] * 9 and set(answers[9:]) == {429}  # the tenth failure locks
    text = right.content.decode()
    assert right.status_code == 429 and "_auth_user_id" not in client.session
    assert "Too many failed logins" in text and "Try again in 15 minutes, at" in text


def test_the_account_is_locked_from_another_address_too_and_another_account_still_logs_in(bob, alice):
    for n in range(10):
        login(Client(), "bob", f"guess-{n}", "10.0.0.1")

    elsewhere = login(Client(), "bob", PASSWORD, "10.0.0.9")
    other = Client()
    alice_response = login(other, "alice", PASSWORD, "10.0.0.2")

    assert elsewhere.status_code == 429
    assert alice_response.status_code == 302 and other.get("/").status_code == 200


def test_one_address_trying_many_accounts_is_locked_out(bob, alice, carol):
    for n in range(10):
        login(Client(), f"user{n}", "guess", "10.0.0.3")

    assert login(Client(), "alice", PASSWORD, "10.0.0.3").status_code == 429
    assert login(Client(), "alice", PASSWORD, "10.0.0.4").status_code == 302


def test_the_admin_login_is_throttled_too(alice):
    for n in range(10):
        login(Client(), "alice", f"guess-{n}", "10.0.0.5", path="/admin/login/")

    response = login(Client(), "alice", PASSWORD, "10.0.0.6", path="/admin/login/?next=/admin/")

    assert response.status_code == 429 and "Try again in" in response.content.decode()


def test_a_lockout_is_audited_with_the_account_and_the_address(bob):
    for n in range(10):
        login(Client(), "bob", f"guess-{n}", "10.0.0.7")

    locked = AuditEvent.objects.filter(action="login_failed", message__startswith="Login locked")
    assert locked.count() == 1
    assert "'bob'" in locked.get().message and "10.0.0.7" in locked.get().message
    assert AuditEvent.objects.filter(action="login_failed").count() == 11  # ten failures and the lockout


def test_the_lockout_ends_after_the_cool_off(bob, settings):
    from axes.models import AccessAttempt

    settings.AXES_COOLOFF_TIME = timedelta(seconds=30)
    for n in range(10):
        login(Client(), "bob", f"guess-{n}", "10.0.0.8")
    assert login(Client(), "bob", PASSWORD, "10.0.0.8").status_code == 429
    assert "Try again in 1 minute" in login(Client(), "bob", PASSWORD, "10.0.0.8").content.decode()

    # 30 seconds go by (the attempts' clock is moved, rather than this test sleeping on a busy machine).
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(seconds=31))

    client = Client()
    assert login(client, "bob", PASSWORD, "10.0.0.8").status_code == 302
    assert client.get("/").status_code == 200
