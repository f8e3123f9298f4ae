"""PostgreSQL going away under a logged-in user: a real gunicorn whose database
connections go through a TCP proxy the test cuts."""

import sys

import pytest
import requests
from django.test import Client

from tests.fixtures.workers import Process, child_env
from tests.support.faults import database_proxy, proxied_database_url  # noqa: F401 (fixture)
from tests.support.ports import free_port, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def web_behind_proxy(database_proxy, tmp_path):
    port = free_port()
    env = child_env(DATABASE_URL=proxied_database_url(database_proxy), ALLOWED_HOSTS="127.0.0.1")
    command = [sys.executable, "-m", "gunicorn", "panel.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "60"]
    server = Process("gunicorn", command, env, tmp_path)
    base = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return requests.get(f"{base}/healthz/live", timeout=2).status_code == 200
        except requests.RequestException:
            return not server.alive()

    wait_until(answers, timeout=60, message="gunicorn to answer")
    assert server.alive(), server.output()
    yield base
    server.stop()


def session_of(user):
    client = Client()
    client.force_login(user)
    session = requests.Session()
    session.cookies.set("sessionid", client.cookies["sessionid"].value)
    return session


def test_a_logged_in_user_gets_a_branded_503_with_a_request_id_while_the_database_is_down(web_behind_proxy, database_proxy, bob):
    browser = session_of(bob)
    assert browser.get(f"{web_behind_proxy}/jobs/", timeout=30).status_code == 200

    database_proxy.cut()
    page = browser.get(f"{web_behind_proxy}/jobs/", headers={"X-Request-ID": "req-db-down-0001"}, timeout=30)
    api = browser.get(f"{web_behind_proxy}/api/jobs/", timeout=30)
    live = browser.get(f"{web_behind_proxy}/healthz/live", timeout=30)
    health = browser.get(f"{web_behind_proxy}/healthz", timeout=30)
    anonymous_health = requests.get(f"{web_behind_proxy}/healthz", timeout=30)
    database_proxy.restore()

    assert page.status_code == 503
    assert "Filrouge" in page.text and "req-db-down-0001" in page.text
    assert "Internal Server Error" not in page.text and "Traceback" not in page.text
    assert page.headers["Retry-After"] == "30"
    assert api.status_code == 503 and api.json()["request_id"] == api.headers["X-Request-ID"]
    assert "database" in api.json()["detail"]
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    for answer in (health, anonymous_health):
        assert answer.status_code == 503
        assert answer.json()["components"]["database"]["ok"] is False
        assert "database" in answer.json()["missing"]
    # And once it is back, the same session works again.
    wait_until(lambda: browser.get(f"{web_behind_proxy}/jobs/", timeout=30).status_code == 200, timeout=30, message="the panel to answer again")


def test_healthz_live_reads_neither_the_session_nor_the_database(bob, django_assert_num_queries):
    client = Client()
    client.force_login(bob)

    with django_assert_num_queries(0):
        response = client.get("/healthz/live")

    assert response.status_code == 200
