import pytest
from django.core.management import call_command

from panel.accounts.models import Role, User
from panel.audit.models import AuditEvent
from tests.fixtures.actors import PASSWORD, logged_in

pytestmark = pytest.mark.django_db


def test_it_logs_in_and_out(client, bob):
    response = client.post("/accounts/login/", {"username": "bob", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200

    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302  # back to the login page


def test_a_wrong_password_is_refused_and_recorded(client, bob):
    response = client.post("/accounts/login/", {"username": "bob", "password": "nope"}, REMOTE_ADDR="10.1.2.3")

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    event = AuditEvent.objects.get(action="login_failed")
    assert event.source_ip == "10.1.2.3" and "bob" in event.message and "nope" not in event.message


def test_pages_require_login(client):
    for url in ["/", "/jobs/", "/accounts/tokens/", "/audit/"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_ensure_admin_prints_a_one_time_password_that_must_be_changed(client, capsys):
    call_command("ensure_admin")
    output = capsys.readouterr().out
    password = output.split("one-time password: ")[1].split()[0]
    admin = User.objects.get(username="admin")
    assert admin.role == Role.ADMIN and admin.must_change_password and admin.is_superuser

    client.post("/accounts/login/", {"username": "admin", "password": password})
    assert client.get("/jobs/")["Location"] == "/accounts/password/"
    assert client.get("/api/jobs/").status_code == 403

    response = client.post(
        "/accounts/password/",
        {"old_password": password, "new_password1": "a much better one 42", "new_password2": "a much better one 42"},
    )
    assert response.status_code == 302
    assert client.get("/jobs/").status_code == 200
    call_command("ensure_admin")
    assert "exists already" in capsys.readouterr().out


def test_django_admin_is_for_admins_only(alice, bob, carol, sam):
    assert logged_in(alice).get("/admin/").status_code == 200
    for user in (bob, carol, sam):
        response = logged_in(user).get("/admin/")
        assert response.status_code == 302 and "/admin/login/" in response["Location"], user


def test_the_role_decides_django_admin_access_and_follows_changes(bob):
    bob.role = Role.ADMIN
    bob.save()
    assert bob.is_staff and bob.is_superuser and bob.is_operator
    bob.role = Role.STUDENT
    bob.save()
    assert not bob.is_staff and not bob.is_superuser and not bob.is_operator
