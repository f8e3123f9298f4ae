"""Fixtures every test can use. Real services only; see tests/fixtures/."""

pytest_plugins = ["tests.fixtures.actors", "tests.fixtures.browser", "tests.fixtures.workers"]
