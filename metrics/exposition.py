"""Every series on /metrics, with its last value and the time it was sampled.

The sample carries its own timestamp (the probe's time, not the scrape's), so Prometheus
stores the same points as the database, whatever its scrape interval; a value is exported
for as long as its series was sampled within METRICS_EXPOSE_MAX_AGE.
"""

from collections import defaultdict
from datetime import timedelta

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from . import names
from .models import Series

EXPOSE_MAX_AGE = timedelta(minutes=10)


class SeriesCollector:
    def collect(self):
        recent = Series.objects.filter(last_at__gte=timezone.now() - EXPOSE_MAX_AGE, last_value__isnull=False).order_by("name", "id")
        by_name = defaultdict(list)
        for name, labels, value, at in recent.values_list("name", "labels", "last_value", "last_at"):
            by_name[name].append((labels, value, at))
        for name, rows in by_name.items():
            label_names = sorted({key for labels, _, _ in rows for key in labels})
            family = GaugeMetricFamily(name, f"{names.label(name)} ({names.unit(name) or 'value'})", labels=label_names)
            for labels, value, at in rows:
                family.add_metric([labels.get(key, "") for key in label_names], value, timestamp=at.timestamp())
            yield family
