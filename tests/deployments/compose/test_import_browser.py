"""The compose import page in a real Chromium: upload the course's example, read the
preview (secrets kept apart, unsupported keys listed), and a broken file's line."""

import pytest

from clusters.models import Cluster
from tests.fixtures.actors import PASSWORD
from tests.fixtures.browser import login

from tests.deployments.compose.test_import import EXAMPLE, example_text

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_uploading_the_example_shows_a_preview_and_a_broken_file_its_line(live_server, page, artifacts, bob, tmp_path):
    example_text()
    Cluster.objects.create(name="local", kind="docker", endpoint="unix:///var/run/docker.sock")
    login(page, live_server, "bob", PASSWORD)
    page.goto(f"{live_server.url}/services/import/")

    page.select_option("#id_cluster", label="local")
    page.fill("#id_project", "notes")
    page.set_input_files("#id_compose_file", str(EXAMPLE))
    page.fill("#id_variables", "NOTES_DB_PASSWORD=page-pw-5772")
    page.click("#preview-button")
    page.wait_for_selector("#compose-problems")
    page.screenshot(path=str(artifacts / "compose-import-preview.png"), full_page=True)

    # The example runs web x2 on host port 8000: one Docker host cannot, so it is said now, not at deploy.
    assert "services.web: 2 replicas cannot share host port 8000 on one Docker host" in page.locator("#compose-problems").inner_text()
    assert page.locator("#confirm-import").count() == 0

    preview = page.locator("#compose-preview").inner_text()
    assert "Project notes: 2 services" in preview
    assert "registry.example.test/notes/web:1.4.2" in preview and "(secret: POSTGRES_PASSWORD)" in preview
    assert "services.web.env_file[0] (line 24): .env cannot be read from pasted text" in page.locator("#compose-unsupported").inner_text()
    assert "page-pw-5772" not in preview

    broken = tmp_path / "broken.yaml"
    broken.write_text("services:\n  web:\n    image: app\n  \tports: [80]\n")
    page.set_input_files("#id_compose_file", str(broken))
    page.click("#preview-button")
    page.wait_for_selector("#compose-error")
    assert page.locator("#compose-error").inner_text().startswith("broken.yaml, line 4, column")
