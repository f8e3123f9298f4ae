"""The login pages say Filrouge (not the host name, not "Django"), and the token page offers
the expiry choices the API guide names (`expires_in_days`)."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from panel.accounts.models import ApiToken
from tests.fixtures.actors import PASSWORD, api_client, logged_in
from tests.support.html import form_controls

pytestmark = pytest.mark.django_db
API_GUIDE = Path(settings.BASE_DIR) / "docs" / "api-guide.md"


def title_and_heading(html):
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip(), re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S).group(1).strip()


@override_settings(ALLOWED_HOSTS=["panel.example.org"])
def test_the_login_page_is_branded_with_the_panels_name_not_the_host_name(client):
    html = client.get("/accounts/login/", HTTP_HOST="panel.example.org").content.decode()

    title, heading = title_and_heading(html)
    assert title == "Log in · Filrouge" and heading == "Log in to Filrouge"
    assert "panel.example.org" not in html.replace('value="', "")


@override_settings(ALLOWED_HOSTS=["panel.example.org"], SITE_NAME="Lab Panel")
def test_the_login_page_follows_the_site_name_setting(client):
    html = client.get("/accounts/login/", HTTP_HOST="panel.example.org").content.decode()

    assert title_and_heading(html) == ("Log in · Lab Panel", "Log in to Lab Panel")


def test_a_failed_login_keeps_the_brand(client, bob):
    html = client.post("/accounts/login/", {"username": "bob", "password": "wrong"}).content.decode()

    assert title_and_heading(html)[1] == "Log in to Filrouge" and "testserver" not in html


def test_the_admin_login_and_index_say_filrouge_not_django(client, alice):
    login = client.get("/admin/login/").content.decode()
    assert "Filrouge administration" in login and "Django administration" not in login
    assert "<title>Log in | Filrouge</title>" in login

    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    index = logged_in(alice).get("/admin/").content.decode()
    assert "Filrouge administration" in index and "Django" not in index


def test_the_token_page_offers_the_expiry_choices_of_the_api_guide(bob):
    html = logged_in(bob).get("/accounts/tokens/").content.decode()
    controls, _legends = form_controls(html, within='<h2>Create a token</h2>')
    expiry = next(control for control in controls if control["attrs"].get("name") == "expires_in_days")
    guide = API_GUIDE.read_text()

    assert expiry["label"] == "Expires after"
    assert expiry["options"] == [("30", "30 days"), ("90", "90 days"), ("365", "365 days"), ("", "Never")]
    assert "expires_in_days" in html  # the help names the API's field
    assert "`expires_in_days`: the page offers 30, 90 (the default) and 365 days or never" in guide
    assert '"expires_in_days": 90' in guide


@pytest.mark.parametrize("days", ["30", "90", "365", ""])
def test_each_page_choice_gives_the_same_expiry_as_the_api_with_expires_in_days(bob, days):
    logged_in(bob).post("/accounts/tokens/", {"name": f"page {days or 'never'}", "scope": "read", "expires_in_days": days})
    response = api_client(bob).post("/api/tokens/", {"name": f"api {days or 'never'}", "scope": "read", "expires_in_days": int(days) if days else None}, format="json")

    assert response.status_code == 201
    from_page, from_api = ApiToken.objects.get(name=f"page {days or 'never'}"), ApiToken.objects.get(name=f"api {days or 'never'}")
    if days:
        expected = timezone.now() + timedelta(days=int(days))
        assert abs(from_page.expires_at - expected) < timedelta(minutes=5)
        assert abs(from_api.expires_at - from_page.expires_at) < timedelta(minutes=5)
    else:
        assert from_page.expires_at is None and from_api.expires_at is None


def test_the_new_token_has_a_copy_button_tied_to_it(bob):
    html = logged_in(bob).post("/accounts/tokens/", {"name": "ci", "scope": "read", "expires_in_days": "30"}).content.decode()

    assert '<pre class="token" id="new-token">frg_' in html
    assert re.search(r'<button type="button" class="copy" data-copy="new-token"[^>]*hidden>Copy</button>', html)
    assert 'id="new-token-status" role="status"' in html
    assert "onclick" not in html
