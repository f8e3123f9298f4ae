"""The overview's panels. Each one is a function returning its template context, and
refreshes on its own through htmx (see templates/dashboard/partials/).

Apps add a panel by adding an entry here; panels read only the database.
"""

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

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
    """Servers, clusters and services, once those apps have models (filled in by their issues)."""
    from django.urls import reverse
    from django.utils.translation import gettext as _

    from clusters.models import Server

    items = []
    servers = Server.objects.visible_to(user)
    if getattr(user, "is_operator", False):
        state = servers.aggregate(total=Count("id"), up=Count("id", filter=Q(reachable=True)), down=Count("id", filter=Q(reachable=False)))
        items.append({"count": state["total"], "label": _("servers"), "url": reverse("clusters:server_list"),
                      "detail": _("%(reachable)d reachable, %(unreachable)d unreachable") % {"reachable": state["up"], "unreachable": state["down"]}})
    return items


def running_jobs(request):
    jobs = Job.objects.visible_to(request.user).filter(status__in=(Status.QUEUED, Status.RUNNING)).select_related("user")
    return {"jobs": list(jobs.order_by("-created_at")[:10])}


def recent_failures(request):
    failed = (Status.FAILED, Status.ERRORED, Status.LOST)
    jobs = Job.objects.visible_to(request.user).filter(status__in=failed).select_related("user")
    return {"jobs": list(jobs.order_by("-finished_at", "-id")[:10])}


PANELS = {
    "counts": (counts, 5),
    "running": (running_jobs, 2),
    "failures": (recent_failures, 10),
}
