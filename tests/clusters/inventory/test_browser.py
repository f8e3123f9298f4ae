"""A person in Chromium: select servers, run a recipe, watch each host's progress live."""

import pytest

from clusters.models import Group
from panel.jobs.models import Job
from tests.fixtures.actors import PASSWORD
from tests.fixtures.browser import login
from tests.support.ports import wait_until

from tests.clusters.conftest import fleet_servers, key_credential

pytestmark = [pytest.mark.browser, pytest.mark.ssh, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PLAYBOOK = """- name: Take a moment
  command: sleep 1
  changed_when: false
- name: Take a longer moment
  command: sleep 3
  changed_when: false
- name: Leave a mark
  copy:
    dest: "{{ root }}/{{ inventory_hostname }}.txt"
    content: "hello from {{ inventory_hostname }}\\n"
"""


def test_an_operator_selects_servers_runs_a_recipe_and_watches_each_host(page, live_server, worker, bob, sshd_fleet_factory, shared_dir, artifacts):
    fleet = sshd_fleet_factory(4)
    group = Group.objects.create(name="fleet", variables={"root": str(shared_dir)})
    servers = fleet_servers(fleet, key_credential(fleet.client_private_key), group=group)
    login(page, live_server, "bob", PASSWORD)

    page.goto(f"{live_server.url}/inventory/")
    page.select_option("#id_group", "fleet")  # the filter form swaps the table in place (htmx)
    page.wait_for_url("**/inventory/?*group=fleet*")
    wait_until(lambda: page.evaluate("document.querySelectorAll('#server-table tbody input[name=servers]').length === 4"), timeout=30, interval=0.1,
               message="the server table to list 4 servers")  # not wait_for_function: the CSP forbids its eval
    for server in servers[:3]:
        page.check(f"#server-table input[name=servers][value='{server.pk}']")
    page.screenshot(path=str(artifacts / "inventory-server-list.png"), full_page=True)
    page.click("#run-recipe")

    page.wait_for_url("**/inventory/run/")
    assert [chip.inner_text() for chip in page.query_selector_all("section .chip")] == ["host00", "host01", "host02"]
    page.fill("#id_playbook", PLAYBOOK)
    page.screenshot(path=str(artifacts / "inventory-run-form.png"), full_page=True)
    page.click("#start-run")

    page.wait_for_url("**/inventory/runs/*/")
    page.wait_for_selector("tr.host-row[data-state=running]", timeout=60_000)  # watched while it runs (a loaded worker may take a while to start it)
    page.screenshot(path=str(artifacts / "inventory-run-live.png"), full_page=True)
    wait_until(lambda: page.evaluate("document.querySelector('#run-status').innerText.trim() === 'Succeeded'"), timeout=60, interval=0.2,
               message="the recipe run to succeed")
    page.screenshot(path=str(artifacts / "inventory-run-done.png"), full_page=True)

    rows = {row.get_attribute("data-host"): row for row in page.query_selector_all("tr.host-row")}
    assert sorted(rows) == ["host00", "host01", "host02"]
    for row in rows.values():
        assert row.get_attribute("data-state") == "done"
        assert row.query_selector("td.o-changed").inner_text() == "1" and row.query_selector("td.o-ok").inner_text() == "2"
    assert sorted(path.name for path in shared_dir.iterdir()) == ["host00.txt", "host01.txt", "host02.txt"]
    job = Job.objects.get()
    assert job.status == "succeeded" and sorted(job.params["servers"]) == sorted(s.pk for s in servers[:3])

    page.click("#full-log")
    page.wait_for_selector(".log .line.end")
    assert "host01" in page.inner_text("#log-lines")
    page.goto(f"{live_server.url}/inventory/servers/{servers[0].pk}/")
    assert f"/jobs/{job.pk}/" in page.content() and "ok=2 changed=1" in page.content()
    page.screenshot(path=str(artifacts / "inventory-server-detail.png"), full_page=True)


def test_an_operator_imports_an_inventory_after_reading_its_preview(page, live_server, bob, artifacts):
    from pathlib import Path

    from clusters.models import Server

    examples = Path(__file__).resolve().parents[4] / "shared" / "examples" / "ansible"
    login(page, live_server, "bob", PASSWORD)

    page.goto(f"{live_server.url}/inventory/import/")
    page.fill("#id_text", (examples / "inventory.ini").read_text())
    page.click("#preview")
    page.wait_for_selector("#confirm-import")
    preview = page.inner_text("#import-preview")
    assert "3 server(s) to create" in preview and "deploy@127.0.0.1:2201" in preview
    assert "private key file ~/.ssh/lab_ed25519" in preview  # a warning, not a silent loss
    page.screenshot(path=str(artifacts / "inventory-import-preview.png"), full_page=True)
    assert Server.objects.count() == 0

    page.click("#confirm-import")
    page.wait_for_url("**/inventory/")
    assert "Imported: 3 server(s) created" in page.inner_text(".messages")
    assert sorted(Server.objects.values_list("name", flat=True)) == ["db01.lab.test", "web01.lab.test", "web02.lab.test"]
    page.goto(f"{live_server.url}/inventory/groups/")
    page.screenshot(path=str(artifacts / "inventory-groups.png"), full_page=True)
    assert "lab" in page.inner_text("table")
