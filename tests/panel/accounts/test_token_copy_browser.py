"""The token page's Copy button, in Chromium: through the Clipboard API, and through the
selection fallback when the API is missing (an older browser, or a page on plain HTTP)."""

import pytest

from tests.fixtures.actors import PASSWORD
from tests.fixtures.browser import login
from tests.support.ports import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def create_token(page, live_server):
    login(page, live_server, "bob", PASSWORD)
    page.goto(f"{live_server.url}/accounts/tokens/")
    page.fill("#id_name", "ci")
    page.select_option("#id_expires_in_days", "30")
    page.click("text=Create token")
    page.wait_for_selector("#new-token")
    return page.inner_text("#new-token").strip()


def test_the_copy_button_puts_the_new_token_on_the_clipboard(chromium, live_server, bob, artifacts):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    try:
        token = create_token(page, live_server)
        assert token.startswith("frg_")
        page.evaluate("navigator.clipboard.writeText('something else')")

        page.click("button.copy")

        wait_until(lambda: page.inner_text("#new-token-status"), timeout=15, message="the copy button to report")  # not wait_for_function: the CSP forbids its eval
        assert page.inner_text("#new-token-status") == "Copied to the clipboard."
        assert page.evaluate("navigator.clipboard.readText()") == token
        page.screenshot(path=str(artifacts / "token-copied.png"), full_page=True)
    finally:
        context.close()


def test_without_the_clipboard_api_the_button_copies_the_selection(chromium, live_server, bob):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    # What an old browser or a plain-HTTP page offers: no navigator.clipboard. The test keeps
    # a handle on the real one to read what was copied.
    context.add_init_script("""
        window.__clipboard = navigator.clipboard;
        Object.defineProperty(Navigator.prototype, "clipboard", {get: function () { return undefined; }});
    """)
    page = context.new_page()
    try:
        token = create_token(page, live_server)
        assert page.evaluate("navigator.clipboard === undefined")
        page.evaluate("window.__clipboard.writeText('something else')")

        page.click("button.copy")

        wait_until(lambda: page.inner_text("#new-token-status"), timeout=15, message="the copy button to report")  # not wait_for_function: the CSP forbids its eval
        assert page.inner_text("#new-token-status") == "Copied to the clipboard."
        assert page.evaluate("window.getSelection().toString().trim()") == token
        assert page.evaluate("window.__clipboard.readText()") == token
    finally:
        context.close()


def test_the_copy_button_is_hidden_when_scripts_do_not_run(chromium, live_server, bob):
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", "bob")
        page.fill("#id_password", PASSWORD)
        page.click("main button[type=submit]")
        page.goto(f"{live_server.url}/accounts/tokens/")
        page.fill("#id_name", "ci")
        page.click("text=Create token")
        page.wait_for_selector("#new-token")
        assert not page.is_visible("button.copy")  # a button that could not work is not offered
    finally:
        context.close()
