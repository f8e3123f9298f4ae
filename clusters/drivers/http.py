"""HTTP checks a probe makes to a service (its published port, or the API server's service
proxy): the status, how long it took, and why it failed."""

import json
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

import urllib3
from urllib3 import exceptions as url_errors

REASON_BODY_BYTES = 4096  # of an error answer, to read a Kubernetes Status message
BODY_BYTES = 65536  # read of any answer: a longer one closes its connection instead of keeping it


def check(url, timeout, headers=None, ssl_context=None, manager=None):
    """GET `url` without following redirects. Returns (status or None, seconds, error text):
    the seconds until the answer's headers; the error text is empty for a 2xx/3xx answer,
    else why the check failed (the message of a Kubernetes `Status` answer, e.g. 'HTTP 503:
    no endpoints available for service "web"', or "HTTP 503"). `headers` (e.g. a bearer
    token) are sent, never returned; `ssl_context` verifies the server of an https:// URL (and
    may carry a client certificate). `manager` (from `pool_manager`) reuses its connections.
    No proxy from the environment between the panel and the service."""
    own = manager is None
    if own:
        manager = pool_manager(ssl_context, 1)
    began = time.perf_counter()
    try:
        response = manager.request(
            "GET", url, headers=headers or {}, redirect=False, preload_content=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
        )
        seconds = time.perf_counter() - began
        reusable = False
        try:
            status = response.status
            body = response.read(BODY_BYTES)
            reusable = response.read(1) == b""  # the whole (small) answer read: the connection can serve the next check
            reason = "" if 200 <= status < 400 else error_reason(status, response.headers.get("Content-Type", ""), body[:REASON_BODY_BYTES])
        finally:
            if reusable:
                response.release_conn()
            else:
                response.close()
        return status, seconds, reason
    except url_errors.NewConnectionError:  # (a subclass of the connect timeout: first)
        return None, time.perf_counter() - began, "connection refused or unreachable"
    except url_errors.TimeoutError:
        return None, time.perf_counter() - began, f"no answer within {timeout:g} s"
    except url_errors.SSLError as exc:
        return None, time.perf_counter() - began, f"TLS error: {str(exc)[:200]}"
    except (url_errors.ProtocolError, OSError):
        return None, time.perf_counter() - began, "connection refused or unreachable"
    except url_errors.HTTPError as exc:
        return None, time.perf_counter() - began, exc.__class__.__name__
    finally:
        if own:
            manager.clear()


def pool_manager(ssl_context=None, connections=8):
    """A connection pool for checks (thread-safe): up to `connections` kept per server, so
    checks through one API server's service proxy share TLS sessions."""
    options = {}
    if ssl_context is not None:
        options["ssl_context"] = ssl_context
        if not ssl_context.check_hostname and ssl_context.verify_mode != ssl.CERT_NONE:
            options["assert_hostname"] = False  # the credential asked not to match the host name
    return urllib3.PoolManager(num_pools=50, maxsize=max(1, connections), block=False, retries=False, **options)


def error_reason(status, content_type, body):
    """Why an answer is a failure: a Kubernetes `Status` message when the body is one."""
    if "json" in content_type:
        try:
            data = json.loads(body.decode("utf-8", "replace"))
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("message"):
            return f"HTTP {status}: {str(data['message'])[:300]}"
    return f"HTTP {status}"


def check_many(urls, timeout=2, budget=10, workers=8, headers=None, ssl_context=None):
    """{url: (status, seconds, error)} for each url, `workers` at a time; no check starts once
    `budget` seconds are spent (those are left out). `headers` and `ssl_context` go with
    every check (they are for one server: e.g. a cluster's API server), and the checks share
    kept-alive connections (the first check on each pays the TLS handshake)."""
    deadline = time.monotonic() + budget

    def one(url):
        if time.monotonic() > deadline:
            return url, None
        return url, check(url, timeout, headers=headers, ssl_context=ssl_context, manager=manager)

    urls = list(dict.fromkeys(urls))
    if not urls:
        return {}
    workers = max(1, min(workers, len(urls)))
    manager = pool_manager(ssl_context, workers)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="health") as pool:
            results = dict(pool.map(one, urls))
    finally:
        manager.clear()
    return {url: result for url, result in results.items() if result is not None}
