"""Terminal test helpers: a page driving xterm.js, and servers for sshd fleets."""

import json

from clusters.models import Credential, Server


def ssh_server(fleet, name="term01", **secret):
    credential = Credential(name=f"{name}-key", kind="ssh-key")
    credential.set_secret({"private_key": fleet.client_private_key, **secret})
    credential.save()
    member = fleet.hosts[0]
    return Server.objects.create(name=name, address=member.host, port=member.port, user=fleet.user, credential=credential)


def screen(page, index=0):
    return page.evaluate(f"window.filrougeTerminals[{index}].screenText()")


def wait_in_page(page, expression, timeout=20_000, message=None):
    """Poll a JavaScript expression from here (page.evaluate goes through the debugging
    protocol; Playwright's wait_for_function evals a string, which the CSP forbids)."""
    from tests.support.ports import wait_until

    return wait_until(lambda: page.evaluate(expression), timeout=timeout / 1000, interval=0.1, message=message or expression)


def wait_for_screen(page, text, index=0, timeout=20_000):
    wait_in_page(page, f"!!(window.filrougeTerminals && window.filrougeTerminals[{index}] && window.filrougeTerminals[{index}].screenText().includes({json.dumps(text)}))",
                 timeout, message=f"{text!r} on terminal {index}")


def wait_for_state(page, state, index=0, timeout=20_000):
    wait_in_page(page, f"document.querySelectorAll('[data-terminal]')[{index}]?.dataset.state === {json.dumps(state)}", timeout,
                 message=f"terminal {index} to be {state}")


def type_line(page, text, index=0):
    page.locator(".terminal-screen").nth(index).click()
    page.keyboard.type(text)
    page.keyboard.press("Enter")



def session_cookie(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def ws_connect(asgi_server, path, user=None, origin=None, cookie=None):
    """A websocket to the panel as a browser of `user` would open it (cookie and Origin)."""
    from websockets.sync.client import connect

    headers = {"Origin": origin or asgi_server.url}
    if cookie or user is not None:
        headers["Cookie"] = cookie or session_cookie(user)
    return connect(asgi_server.ws_url + path, additional_headers=headers, open_timeout=15, max_size=None)


def ws_read_until(socket, text, timeout=20):
    """Messages until the output so far contains `text`; returns (output, messages)."""
    import time

    deadline = time.monotonic() + timeout
    output, messages = "", []
    while text not in output:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{text!r} did not appear; output so far: {output[-500:]!r}"
        message = json.loads(socket.recv(timeout=remaining))
        messages.append(message)
        if message["type"] == "output":
            output += message["data"]
        elif message["type"] in ("ended", "error"):
            raise AssertionError(f"the terminal ended: {message['message']} (output: {output[-300:]!r})")
    return output, messages
