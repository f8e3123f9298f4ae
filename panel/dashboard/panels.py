"""The overview's panels. Each one is a function returning its template context, and
refreshes on its own through htmx (see templates/dashboard/partials/).

Apps add a panel by adding an entry here; panels read only the database.
"""

import re
from datetime import timedelta

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from panel.jobs.models import Job, Status


def counts(request):
    jobs = Job.objects.visible_to(request.user)
    since = timezone.now() - timedelta(hours=24)
    by_status = dict(jobs.filter(created_at__gte=since).values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return {
        "running": jobs.filter(status=Status.RUNNING).count(),
        "queued": jobs.filter(status=Status.QUEUED).count(),
        "last_day": by_status,
        "failed_last_day": sum(by_status.get(s, 0) for s in (Status.FAILED, Status.ERRORED, Status.LOST)),
        "inventory": inventory_counts(request.user),
    }


def inventory_counts(user):
    """Servers, clusters and services: operators only (the inventory is theirs)."""
    if not getattr(user, "is_operator", False):
        return []
    from clusters.models import Cluster, Server
    from deployments.models import Service

    servers = Server.objects.visible_to(user).aggregate(
        total=Count("id"), up=Count("id", filter=Q(reachable=True)), down=Count("id", filter=Q(reachable=False))
    )
    clusters = Cluster.objects.visible_to(user)
    services = Service.objects.visible_to(user).exclude(status="removed")
    unreachable = clusters.filter(reachable=False).count()
    failing = services.filter(status="failed").count()
    return [
        {"label": _("servers"), "count": servers["total"], "url": reverse("clusters:server_list"),
         "detail": _("%(reachable)d reachable, %(unreachable)d unreachable") % {"reachable": servers["up"], "unreachable": servers["down"]}},
        {"label": _("clusters"), "count": clusters.count(), "url": reverse("clusters:cluster_list"),
         "detail": _("%(n)s unreachable") % {"n": unreachable} if unreachable else ""},
        {"label": _("services"), "count": services.count(), "url": reverse("deployments:list"),
         "detail": _("%(n)s failed") % {"n": failing} if failing else ""},
    ]


def running_jobs(request):
    jobs = Job.objects.visible_to(request.user).filter(status__in=(Status.QUEUED, Status.RUNNING)).select_related("user")
    return {"jobs": list(jobs.order_by("-created_at")[:10])}


def recent_failures(request):
    failed = (Status.FAILED, Status.ERRORED, Status.LOST)
    jobs = Job.objects.visible_to(request.user).filter(status__in=failed).select_related("user")
    return {"jobs": list(jobs.order_by("-finished_at", "-id")[:10])}


def health_check_reason(text):
    """A probe's stored reason (deployments/probe.py, clusters/drivers/http.py) in the reader's
    language; an HTTP answer's own text (e.g. the API server's "no endpoints available for
    service ...") is shown as the server wrote it."""
    if not text:
        return ""
    fixed = {"no replica up": _("no replica up"), "connection refused or unreachable": _("connection refused or unreachable")}
    if text in fixed:
        return fixed[text]
    timed_out = re.fullmatch(r"no answer within (\S+) s", text)
    if timed_out:
        return _("no answer within %(seconds)s s") % {"seconds": timed_out.group(1)}
    return text


HEALTH_CHECK_FRESH = timedelta(minutes=5)  # a few probe rounds: an older "down" says nothing about now


def on_call(request):
    """What a person on call looks at first: failing services (their last deploy failed, or the
    probe's health check fails now), hosts over 90% disk (with the age of the figure), workers."""
    if not getattr(request.user, "is_operator", False):
        return {"visible": False}
    from clusters.models import Server
    from deployments.models import Service
    from metrics.models import Series

    services = Service.objects.visible_to(request.user).exclude(status="removed")
    down = set(
        Series.objects.filter(
            name="filrouge_service_health_check_up", object_type="service", last_value=0, last_at__gte=timezone.now() - HEALTH_CHECK_FRESH,
        ).values_list("object_id", flat=True)
    )
    failing = []
    for service in services.filter(Q(status="failed") | Q(pk__in=down)).select_related("cluster").order_by("name")[:10]:
        reasons = []
        if service.status == "failed":
            reasons.append(_("last deploy failed"))
        if service.pk in down:
            why = health_check_reason(((service.observed or {}).get("health_check") or {}).get("reason"))
            reasons.append(_("health check failing: %(reason)s") % {"reason": why} if why else _("health check failing"))
        failing.append({"service": service, "reason": ", ".join(reasons)})
    full = Series.objects.filter(name="filrouge_server_disk_used_ratio", object_type="server", last_value__gte=0.9).order_by("-last_value")
    ratios = {row.object_id: (row.last_value, row.last_at) for row in full[:20]}
    servers = [
        {"server": server, "used": ratios[server.pk][0], "at": ratios[server.pk][1]}
        for server in Server.objects.visible_to(request.user).filter(pk__in=list(ratios))
    ]
    servers.sort(key=lambda row: -row["used"])
    workers = Series.objects.filter(name="filrouge_workers", object_type="jobs").values_list("last_value", "last_at").first()
    return {"visible": True, "failing": failing, "full_disks": servers, "workers": workers[0] if workers else None, "workers_at": workers[1] if workers else None}


PANELS = {
    "counts": (counts, 5),
    "running": (running_jobs, 2),
    "failures": (recent_failures, 10),
    "oncall": (on_call, 15),
}
