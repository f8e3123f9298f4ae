"""What a person sees on a terminal's screen under the page's strict Content-Security-Policy:
xterm's DOM renderer puts its colours in <style> elements, which the policy refuses;
static/js/terminal.js copies them into constructed style sheets. Without that, the text took
the page's dark ink on the dark screen."""

import pytest

from .conftest import type_line, wait_for_screen, wait_for_state
from .test_pod_terminal import running_pod

pytestmark = [pytest.mark.k8s, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The colour of the span that shows `text`, and the screen's background, as [r, g, b].
COLOURS = """(text) => {
  const span = [...document.querySelectorAll('.xterm-rows span')].find((el) => el.textContent.includes(text));
  const rgb = (value) => value.match(/[0-9.]+/g).slice(0, 3).map(Number);
  return span && { ink: rgb(getComputedStyle(span).color), background: rgb(getComputedStyle(document.querySelector('.xterm-viewport')).backgroundColor) };
}"""


def luminance(rgb):
    def channel(value):
        value /= 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4
    red, green, blue = (channel(value) for value in rgb)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(one, other):
    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_shells_text_reads_light_on_the_dark_screen(browser_as, asgi_server, bob, kube_target):
    pod = running_pod(kube_target)
    page = browser_as(bob)
    page.goto(f"{asgi_server.url}/terminals/open/pod/?cluster={kube_target.cluster.pk}&namespace={kube_target.namespace}&pod={pod}&container=app")
    wait_for_state(page, "connected")
    type_line(page, "echo readable-$((6*7))")
    wait_for_screen(page, "readable-42")
    colours = page.evaluate(COLOURS, "readable-42")
    assert colours, "no span shows the output"
    assert contrast(colours["ink"], colours["background"]) >= 7, colours  # the theme's #e6e6e6 on #1e1f22 is about 13:1
