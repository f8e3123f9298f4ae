"""The `http` check: an HTTP request from the panel to the environment, status and body compared.

Params: port (a port name allocated to the environment) or url (absolute, only to
127.0.0.1 or the environment's own host), path ("/"), status (200), contains (text the
body must contain). Redirects are not followed: a check observes, it does not browse.
"""

import time
from urllib.parse import urlparse

import requests
from django.utils.translation import gettext as _

from .base import Outcome, check

TIMEOUT = 5
RETRY_FOR = 3.0  # seconds a refused connection is retried (a container that is just starting)


def environment_ports(environment):
    ports = getattr(environment, "port_map", None)
    if callable(ports):
        return ports()
    return dict(getattr(environment, "access", {}).get("ports") or {})


def resolve_url(params, target):
    """The URL the check requests, or raise ValueError saying why it is not allowed."""
    path = params.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    base = urlparse(target.http_base or "http://127.0.0.1")
    if params.get("url"):
        url = urlparse(params["url"])
        if url.scheme not in ("http", "https") or url.hostname not in ("127.0.0.1", base.hostname):
            raise ValueError(_("url %(url)s is not on 127.0.0.1 or the environment's host") % {"url": params["url"]})
        return params["url"]
    if params.get("port"):
        ports = environment_ports(target.environment)
        if params["port"] not in ports:
            raise ValueError(_("no port named %(name)s is allocated to this environment") % {"name": params["port"]})
        return f"{base.scheme}://{base.hostname}:{ports[params['port']]}{path}"
    return f"{target.http_base.rstrip('/')}{path}"


@check("http", schema={"port": (str, False), "url": (str, False), "path": (str, False), "status": (int, False), "contains": (str, False)})
def http(params, target):
    try:
        url = resolve_url(params, target)
    except ValueError as exc:
        return Outcome(False, str(exc))
    wanted = int(params.get("status", 200))
    deadline = time.monotonic() + RETRY_FOR
    while True:
        try:
            response = requests.get(url, timeout=TIMEOUT, allow_redirects=False, headers={"User-Agent": "filrouge-lab-check"})
            break
        except requests.ConnectionError:
            if time.monotonic() < deadline:
                time.sleep(0.3)
                continue
            return Outcome(False, _("GET %(url)s: nothing answers (connection refused)") % {"url": url})
        except requests.Timeout:
            return Outcome(False, _("GET %(url)s: no answer within %(seconds)d s") % {"url": url, "seconds": TIMEOUT})
        except requests.RequestException as exc:
            return Outcome(False, _("GET %(url)s failed: %(error)s") % {"url": url, "error": exc.__class__.__name__})
    if response.status_code != wanted:
        return Outcome(False, _("GET %(url)s answered %(got)d, expected %(wanted)d") % {"url": url, "got": response.status_code, "wanted": wanted})
    contains = params.get("contains")
    if contains and contains not in response.text:
        return Outcome(False, _("GET %(url)s answered %(got)d but the page does not contain %(text)r") % {"url": url, "got": response.status_code, "text": contains})
    detail = _("GET %(url)s answered %(got)d") % {"url": url, "got": response.status_code}
    if contains:
        detail += _("; the page contains %(text)r") % {"text": contains}
    return Outcome(True, detail)
