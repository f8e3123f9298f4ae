import pytest
from django.test import Client

from tests.fixtures.actors import logged_in

pytestmark = pytest.mark.django_db


def test_the_language_switch_turns_the_interface_french():
    client = Client()
    assert "Log in" in client.get("/accounts/login/").content.decode()

    response = client.post("/i18n/setlang/", {"language": "fr", "next": "/accounts/login/"})

    assert response.status_code == 302
    page = client.get("/accounts/login/").content.decode()
    assert '<html lang="fr">' in page and "Connexion" in page and "Français" in page


def test_a_browser_asking_for_french_gets_french_pages(bob):
    page = logged_in(bob).get("/jobs/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9").content.decode()

    assert "Tâches" in page and "Lancer : Diagnostic" in page


def test_api_errors_follow_the_language_too(bob):
    from tests.fixtures.actors import api_client

    response = api_client(bob, "read").post("/api/jobs/", {"kind": "diagnostics"}, format="json", HTTP_ACCEPT_LANGUAGE="fr")

    assert response.json()["detail"].startswith("Ce jeton d’API n’a que la portée lecture")
