"""Reading series from Prometheus (PROMETHEUS_URL) with PromQL, in the database reader's shape.

Each step T of the grid is `avg_over_time(name{labels}[step])` evaluated at T, that is the
average of the samples in (T - step, T]: what metrics.store.read computes from the database.

One chart asks for several names; they go to Prometheus as ONE query_range request, the
per-name expressions joined with `or`. A range function drops `__name__` from its answer,
so each expression tags its rows with the name (`label_replace(..., "filrouge_metric",
"<name>", "", "")`) and the answer is matched back to the series the user may see by that
tag and their labels; anything else Prometheus returns is dropped.

The answer is kept in Django's cache for PROMETHEUS_CACHE_SECONDS, keyed by the query and
its step-aligned range: a page with several charts, or several people on the same page,
polling the same series cost Prometheus one request per step and not one per chart. A
failure is kept as briefly, so that a Prometheus that does not answer makes the next charts
fail at once (503 with the reason) instead of each waiting for the timeout.
"""

import hashlib

import requests
from django.conf import settings
from django.core.cache import cache

from . import store

TIMEOUT = 10
NAME_LABEL = "filrouge_metric"


class PrometheusError(Exception):
    pass


def _quote(value):
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _matcher(labels):
    return ",".join(f'{key}="{_quote(value)}"' for key, value in sorted(labels.items()))


def expression(series_list, step):
    """The one PromQL expression for every name of `series_list` (names sorted, so that the
    same chart always sends the same text, which is also the cache key)."""
    by_name = {}
    for series in series_list:
        by_name.setdefault(series.name, []).append(series)
    parts = []
    for name in sorted(by_name):
        group = by_name[name]
        common = dict(set.intersection(*(set(series.labels.items()) for series in group)))
        parts.append(f'label_replace(avg_over_time({name}{{{_matcher(common)}}}[{int(step)}s]), "{NAME_LABEL}", "{_quote(name)}", "", "")')
    return " or ".join(parts)


def _cache_key(query, start, end, step):
    digest = hashlib.sha256(f"{settings.PROMETHEUS_URL}\n{query}\n{start}\n{end}\n{step}".encode()).hexdigest()
    return f"metrics:prometheus:{digest}"


def query_range(query, start, end, step):
    """The `result` list of one query_range request, from the cache when the same request was
    answered (or failed) less than PROMETHEUS_CACHE_SECONDS ago. Raises PrometheusError."""
    key = _cache_key(query, start, end, step)
    seconds = settings.PROMETHEUS_CACHE_SECONDS
    cached = cache.get(key) if seconds > 0 else None
    if cached is not None:
        if "error" in cached:
            raise PrometheusError(cached["error"])
        return cached["result"]
    try:
        answer = requests.get(
            f"{settings.PROMETHEUS_URL}/api/v1/query_range",
            params={"query": query, "start": start, "end": end, "step": step},
            timeout=TIMEOUT,
        )
        answer.raise_for_status()
        result = answer.json()["data"]["result"]
    except (requests.RequestException, KeyError, ValueError, TypeError) as exc:
        message = f"Prometheus at {settings.PROMETHEUS_URL} did not answer: {exc}"
        if seconds > 0:
            cache.set(key, {"error": message}, seconds)
        raise PrometheusError(message) from exc
    if seconds > 0:
        cache.set(key, {"result": result}, seconds)
    return result


def read(series_list, start, end, step):
    times = store.grid(start, end, step)
    values = {series.pk: [None] * len(times) for series in series_list}
    if not times or not series_list:
        return times, values
    index = {time: position for position, time in enumerate(times)}
    by_name = {}
    for series in series_list:
        by_name.setdefault(series.name, []).append(series)
    for item in query_range(expression(series_list, step), times[0], times[-1], step):
        metric = dict(item.get("metric") or {})
        group = by_name.get(metric.pop(NAME_LABEL, None), ())
        match = next((s for s in group if all(metric.get(k) == v for k, v in s.labels.items())), None)
        if match is None:
            continue
        for moment, value in item.get("values") or ():
            position = index.get(int(round(float(moment))))
            if position is not None:
                values[match.pk][position] = round(float(value), 6)
    return times, values
