"""{% metric_chart "server" server "filrouge_server_load1,filrouge_server_disk_used_ratio" _("Load") %}

Renders a chart box whose configuration is in data- attributes (no inline script: the page's
static/js/charts.js finds every box and draws it with uPlot)."""

from django import template
from django.conf import settings
from django.urls import reverse

register = template.Library()


@register.inclusion_tag("metrics/chart.html")
def metric_chart(object_type, obj=None, names="", title="", labels="", default_range="1h", chart_id=""):
    object_id = getattr(obj, "pk", obj) if obj not in (None, "") else ""
    return {
        "api_url": reverse("api-metrics"),
        "object_type": object_type,
        "object_id": object_id,
        "names": names,
        "labels": labels,
        "title": title,
        "default_range": default_range,
        "chart_id": chart_id or f"chart-{object_type}-{object_id}-{abs(hash(names)) % 100000}",
        "ranges": ["15m", "1h", "24h", "7d"],
        "poll_seconds": getattr(settings, "METRICS_CHART_POLL_SECONDS", 15),
    }
