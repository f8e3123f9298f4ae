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


@pytest.mark.parametrize("url", ["/jobs/", "/audit/"])
def test_the_filter_bars_labels_are_translated_when_the_page_is_french(alice, url):
    from tests.support.html import form_controls

    def labels(language):
        page = logged_in(alice).get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()
        controls, legends = form_controls(page, within='<form method="get" class="filters"')
        return [control["label"] for control in controls if control["attrs"].get("type") not in ("hidden", "checkbox")] + legends

    english, french = labels("en"), labels("fr")

    assert len(english) == len(french) and all(english)
    same_in_french = {"Action"}
    assert [label for label, before in zip(french, english) if label == before and label not in same_in_french] == []
