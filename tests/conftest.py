"""Fixtures every test can use. Real services only; see tests/fixtures/ and tests/support/."""

pytest_plugins = [
    "tests.fixtures.actors",
    "tests.fixtures.browser",
    "tests.fixtures.workers",
    "tests.support.fixtures",
    "tests.kubeapi.fixtures",
    "tests.support.kube",
]
