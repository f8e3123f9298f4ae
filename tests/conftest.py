"""Fixtures every test can use. Real services only; see tests/fixtures/ and tests/support/."""

pytest_plugins = [
    "tests.fixtures.actors",
    "tests.fixtures.browser",
    "tests.fixtures.asgi",
    "tests.fixtures.workers",
    "tests.support.fixtures",
    "tests.kubeapi.fixtures",
    "tests.support.kube",
    "tests.support.kube_jobs",
]


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def english_unless_a_test_asks():
    """Each test starts in the default language. A request in French (the language switch
    tests) leaves French active in the thread, and a later test would read French messages."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.deactivate()
