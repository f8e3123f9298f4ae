"""GET /api/metrics/: the series of one object on a step grid, from the database or Prometheus.

One answer shape whichever engine serves it (docs/api-guide.md, "Metrics"):
{"source", "from", "to", "step", "times": [epoch s...], "series": [{"id", "name", "labels",
"unit", "label", "values": [float or null per time]}], "empty_reason"}
"""

import gzip
import re
import time

import orjson
from django.conf import settings
from django.http import Http404, HttpResponse
from django.utils.cache import patch_vary_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from panel.accounts.access import get_visible_or_404

from . import names, prometheus, store
from .models import Series

RANGES = {"15m": 900, "1h": 3600, "24h": 86400, "7d": 7 * 86400}
# Objects without a model: figures of the panel itself, for operators.
PANEL_OBJECTS = {"jobs": "is_operator", "labs": "is_teacher"}
MIN_STEP = 15
MAX_POINTS = 6000


class QueryParams(serializers.Serializer):
    object_type = serializers.CharField(max_length=32, help_text="server, cluster, service, environment, or jobs (the job engine).")
    object_id = serializers.IntegerField(required=False, help_text="The object's id (not for jobs).")
    names = serializers.CharField(required=False, allow_blank=True, default="", help_text="Comma-separated metric names (all of the object's when empty).")
    labels = serializers.CharField(required=False, allow_blank=True, default="", help_text="Comma-separated label filters: container=web-1,project=shop.")
    range = serializers.ChoiceField(choices=sorted(RANGES), required=False, default="1h", help_text="Window ending now, unless from/to are given.")
    start = serializers.FloatField(required=False, help_text="Start, epoch seconds (the `since` cursor of a live chart: the last time it has).")
    end = serializers.FloatField(required=False, help_text="End, epoch seconds (default now).")
    step = serializers.IntegerField(required=False, min_value=MIN_STEP, max_value=86400, help_text="Seconds between points (default: the range over 240, at least 15).")

    def validate(self, data):
        now = time.time()
        end = min(data.get("end") or now, now)
        span = RANGES[data["range"]]
        start = data.get("start")
        if start is None:
            start = end - span
        if start >= end:
            raise serializers.ValidationError({"start": "start must be before end."})
        if end - start > 31 * 86400:
            raise serializers.ValidationError({"start": "At most 31 days in one request."})
        step = data.get("step") or max(MIN_STEP, round(span / 240 / MIN_STEP) * MIN_STEP)
        if (end - start) / step > MAX_POINTS:
            raise serializers.ValidationError({"step": f"At most {MAX_POINTS} points per series: use a step of at least {int((end - start) / MAX_POINTS) + 1} s."})
        data.update(start=start, end=end, step=step)
        return data


def visible_series(user, object_type, object_id, wanted_names=(), label_filters=None):
    """The series of one object that `user` may read (404 for an object they cannot see)."""
    if object_type in PANEL_OBJECTS:
        if not getattr(user, PANEL_OBJECTS[object_type], False):
            raise PermissionDenied("Your role does not allow reading these figures.")
        series = Series.objects.filter(object_type=object_type)
    else:
        model = store.OBJECT_TYPES.get(object_type)
        if model is None:
            raise Http404(f"No series for objects of type {object_type!r}.")
        if object_id is None:
            raise Http404("object_id is required for this object type.")
        obj = get_visible_or_404(model, user, pk=object_id)
        series = Series.objects.filter(object_type=object_type, object_id=obj.pk)
    if wanted_names:
        series = series.filter(name__in=wanted_names)
    for key, value in (label_filters or {}).items():
        series = series.filter(**{f"labels__{key}": value})
    return list(series.order_by("name", "id"))


def series_payload(series_list, times, values):
    return [
        {
            "id": series.pk, "name": series.name, "labels": series.labels, "unit": names.unit(series.name),
            "label": names.label(series.name), "values": values.get(series.pk, [None] * len(times)),
        }
        for series in series_list
    ]


def query(user, params):
    wanted = [name.strip() for name in params["names"].split(",") if name.strip()]
    filters = dict(part.split("=", 1) for part in params["labels"].split(",") if "=" in part)
    series_list = visible_series(user, params["object_type"], params.get("object_id"), wanted, filters)
    start, end, step = params["start"], params["end"], params["step"]
    if settings.PROMETHEUS_URL:
        times, values = prometheus.read(series_list, start, end, step)
        source = "prometheus"
    else:
        times, values = store.read(series_list, start, end, step)
        source = "database"
    empty_reason = ""
    if not series_list:
        empty_reason = "no-series"
    elif not any(value is not None for series_values in values.values() for value in series_values):
        empty_reason = "no-points"
    return {
        "source": source, "from": start, "to": end, "step": step, "times": times,
        "series": series_payload(series_list, times, values), "empty_reason": empty_reason,
    }


ACCEPTS_GZIP = re.compile(r"\bgzip\b")


def json_response(payload, request):
    """The answer as compact JSON, gzipped when the client takes it.

    A day of 15 s points for 50 series is about 290,000 numbers: orjson writes them some ten
    times faster than the json module behind DRF's renderer. Gzip at level 1 (nginx's default),
    not Django's 6: on such an answer with real, varied values level 6 takes ~180 ms for a 9 %
    smaller body, level 1 ~30 ms (benchmarks/bench_metrics.py prints both). Only here, not site
    wide: pages carry CSRF tokens (BREACH); this answer reflects nothing secret.
    """
    body = orjson.dumps(payload)
    response = HttpResponse(content_type="application/json")
    patch_vary_headers(response, ("Accept-Encoding",))
    if len(body) >= 200 and ACCEPTS_GZIP.search(request.META.get("HTTP_ACCEPT_ENCODING", "")):
        body = gzip.compress(body, compresslevel=1, mtime=0)
        response["Content-Encoding"] = "gzip"
    response.content = body
    return response


class MetricsQuery(APIView):
    """Series of one object over a time range, averaged on a step grid."""

    @extend_schema(
        parameters=[QueryParams],
        responses=inline_serializer(
            "MetricsAnswer",
            {
                "source": serializers.ChoiceField(choices=["database", "prometheus"]),
                "from": serializers.FloatField(), "to": serializers.FloatField(), "step": serializers.IntegerField(),
                "times": serializers.ListField(child=serializers.IntegerField()),
                "series": serializers.ListField(child=inline_serializer("MetricsSeries", {
                    "id": serializers.IntegerField(), "name": serializers.CharField(), "labels": serializers.DictField(child=serializers.CharField()),
                    "unit": serializers.CharField(), "label": serializers.CharField(),
                    "values": serializers.ListField(child=serializers.FloatField(allow_null=True)),
                })),
                "empty_reason": serializers.ChoiceField(choices=["", "no-series", "no-points"]),
            },
        ),
    )
    def get(self, request):
        params = QueryParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        try:
            return json_response(query(request.user, params.validated_data), request)
        except prometheus.PrometheusError as exc:
            return Response({"detail": str(exc)}, status=503)


class MetricNames(APIView):
    """The catalogue of metric names with their unit and label."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response({name: {"unit": unit, "kind": kind, "label": str(label)} for name, (unit, kind, label) in names.CATALOGUE.items()})
