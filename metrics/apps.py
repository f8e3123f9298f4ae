from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MetricsConfig(AppConfig):
    """Time series of what the probes observe: an embedded store (or Prometheus) and the charts' API.

    It sits between the panel core and the apps: it imports `panel` only; `clusters`,
    `deployments` and `labs` write into it with `metrics.record_many(...)` and tell it which
    of their models a series may point at (`metrics.register_object`), so that the API can
    check access without importing them.
    """

    name = "metrics"
    verbose_name = _("Metrics")

    def ready(self):
        from panel.health.views import register_collector

        from .exposition import SeriesCollector

        register_collector(SeriesCollector())
