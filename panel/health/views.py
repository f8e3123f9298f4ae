import hmac
import os
from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest

from panel.jobs.models import Job, Status
from panel.lib.outage import DATABASE_ERRORS, REDIS_ERRORS

from . import checks

# Collectors the apps above add to /metrics (the metrics app's series), registered in their
# AppConfig.ready() so that this core module names no app.
EXTRA_COLLECTORS = []


def register_collector(collector):
    if not any(type(existing) is type(collector) for existing in EXTRA_COLLECTORS):
        EXTRA_COLLECTORS.append(collector)


DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


@never_cache
@require_GET
def healthz(request):
    """Per-component health: 200 when the database, Redis and at least one worker answer.

    When something is away, `missing` names it and each component's `detail` says what
    that means meanwhile (jobs wait in the database for Redis, for instance).
    """
    database = checks.check_database()
    redis = checks.check_redis()
    components = {"database": database, "redis": redis}
    if redis["ok"]:
        components["workers"] = checks.check_workers()
        try:
            components["queues"] = {"ok": True, "depth": checks.queue_depths()}
        except REDIS_ERRORS as exc:  # went away between the two calls
            components["queues"] = {"ok": False, "detail": f"Redis unreachable: {exc}"}
    else:
        components["workers"] = {"ok": False, "detail": "unknown: Redis is unreachable (workers wait for it and resume by themselves)"}
        components["queues"] = {"ok": False, "detail": _waiting_jobs_detail(database["ok"])}
    healthy = all(part["ok"] for part in components.values())
    missing = [name for name, part in components.items() if not part["ok"]]
    if not _is_operator(request):
        # Worker and host names, versions and latencies help an attacker more than a load
        # balancer: anonymous callers get the verdict and which part is down, nothing else.
        components = {name: {"ok": part["ok"]} for name, part in components.items()}
    body = {"status": "ok" if healthy else "unhealthy", "time": timezone.now().isoformat(), "missing": missing, "components": components}
    return JsonResponse(body, status=200 if healthy else 503)


def _waiting_jobs_detail(database_ok):
    text = "unknown: Redis is unreachable"
    if database_ok:
        try:
            waiting = Job.objects.filter(status=Status.QUEUED).count()
        except DATABASE_ERRORS:
            return text
        text += f"; {waiting} job(s) queued in the database are enqueued when it answers"
    return text


def _is_operator(request):
    """A logged-in operator (session), or an operator's API token in `Authorization: Bearer`."""
    try:
        user = getattr(request, "user", None)
        if getattr(user, "is_authenticated", False):
            return bool(getattr(user, "is_operator", False))
    except DATABASE_ERRORS:  # the session cannot be read: the anonymous answer, which says so
        return False
    try:
        from rest_framework.request import Request

        from panel.accounts.api_auth import ApiTokenAuthentication

        found = ApiTokenAuthentication().authenticate(Request(request))
    except Exception:  # a bad token (or no database) gets the anonymous answer, not an error
        return False
    return bool(found and getattr(found[0], "is_operator", False))


@never_cache
@require_GET
def live(request):
    """Liveness for a container runtime: the web process answers. Touches neither the
    database nor Redis (nor the session), so an outage of either does not get it restarted."""
    return JsonResponse({"status": "ok"})


class PanelCollector:
    """Figures read at scrape time from the database and Redis, so every web process agrees."""

    def collect(self):
        jobs = GaugeMetricFamily("filrouge_jobs", "Jobs by status", labels=["status"])
        counts = dict(Job.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        for status in Status.values:
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs

        depth = GaugeMetricFamily("filrouge_queue_depth", "RQ jobs waiting per queue", labels=["queue"])
        workers = GaugeMetricFamily("filrouge_workers_alive", "Workers with a recent heartbeat")
        try:
            for queue, size in checks.queue_depths().items():
                depth.add_metric([queue], size)
            workers.add_metric([], checks.check_workers()["alive"])
        except Exception:
            workers.add_metric([], 0)
        yield depth
        yield workers

        duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
        finished = Job.objects.filter(started_at__isnull=False, finished_at__isnull=False).annotate(duration=duration)
        aggregates = {f"le_{i}": Count("id", filter=Q(duration__lte=timedelta(seconds=le))) for i, le in enumerate(DURATION_BUCKETS)}
        totals = finished.aggregate(total=Count("id"), sum=Sum("duration"), **aggregates)
        seconds = totals["sum"].total_seconds() if totals["sum"] else 0.0
        buckets = [(str(le), totals[f"le_{i}"]) for i, le in enumerate(DURATION_BUCKETS)] + [("+Inf", totals["total"])]
        histogram = HistogramMetricFamily("filrouge_job_duration_seconds", "Duration of finished jobs", buckets=buckets, sum_value=seconds)
        yield histogram


@never_cache
@require_GET
def metrics(request):
    token = os.environ.get("FILROUGE_METRICS_TOKEN")
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given, token):
            return HttpResponse("metrics token required\n", status=401, content_type="text/plain")
    registry = CollectorRegistry()
    registry.register(PanelCollector())
    for collector in EXTRA_COLLECTORS:
        registry.register(collector)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
