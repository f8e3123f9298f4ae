"""HTTP checks a probe makes to a service's published port: the status and how long it took."""

import time
from concurrent.futures import ThreadPoolExecutor

import requests


def check(url, timeout):
    """GET `url` without following redirects. Returns (status or None, seconds, error text)."""
    began = time.perf_counter()
    try:
        with requests.Session() as session:
            session.trust_env = False  # no proxy from the environment between the panel and the service
            response = session.get(url, timeout=timeout, allow_redirects=False, stream=True)
            response.close()
        return response.status_code, time.perf_counter() - began, ""
    except requests.Timeout:
        return None, time.perf_counter() - began, f"no answer within {timeout:g} s"
    except requests.RequestException as exc:
        reason = exc.__class__.__name__
        if isinstance(exc, requests.ConnectionError):
            reason = "connection refused or unreachable"
        return None, time.perf_counter() - began, reason


def check_many(urls, timeout=2, budget=10, workers=8):
    """{url: (status, seconds, error)} for each url, `workers` at a time; no check starts once
    `budget` seconds are spent (those are left out)."""
    deadline = time.monotonic() + budget

    def one(url):
        if time.monotonic() > deadline:
            return url, None
        return url, check(url, timeout)

    urls = list(dict.fromkeys(urls))
    if not urls:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(urls))), thread_name_prefix="health") as pool:
        results = dict(pool.map(one, urls))
    return {url: result for url, result in results.items() if result is not None}
