"""Reading series from Prometheus (PROMETHEUS_URL) with PromQL, in the database reader's shape.

Each step T of the grid is `avg_over_time(name{labels}[step])` evaluated at T, that is the
average of the samples in (T - step, T]: what metrics.store.read computes from the database.
One query_range request per metric name; answers are matched back to the series the user
may see by their labels, and anything else Prometheus returns is dropped.
"""

import requests
from django.conf import settings

from . import store

TIMEOUT = 10


class PrometheusError(Exception):
    pass


def _matcher(labels):
    def quote(value):
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{key}="{quote(value)}"' for key, value in sorted(labels.items()))


def read(series_list, start, end, step):
    times = store.grid(start, end, step)
    values = {series.pk: [None] * len(times) for series in series_list}
    if not times or not series_list:
        return times, values
    index = {time: position for position, time in enumerate(times)}
    by_name = {}
    for series in series_list:
        by_name.setdefault(series.name, []).append(series)
    for name, group in by_name.items():
        common = dict(set.intersection(*(set(series.labels.items()) for series in group)))
        expression = f"avg_over_time({name}{{{_matcher(common)}}}[{int(step)}s])"
        try:
            answer = requests.get(
                f"{settings.PROMETHEUS_URL}/api/v1/query_range",
                params={"query": expression, "start": times[0], "end": times[-1], "step": step},
                timeout=TIMEOUT,
            )
            answer.raise_for_status()
            result = answer.json()["data"]["result"]
        except (requests.RequestException, KeyError, ValueError) as exc:
            raise PrometheusError(f"Prometheus at {settings.PROMETHEUS_URL} did not answer {expression}: {exc}") from exc
        for item in result:
            metric = item["metric"]
            match = next((s for s in group if all(metric.get(k) == v for k, v in s.labels.items())), None)
            if match is None:
                continue
            for moment, value in item["values"]:
                position = index.get(int(round(float(moment))))
                if position is not None:
                    values[match.pk][position] = round(float(value), 6)
    return times, values
