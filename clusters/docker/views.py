"""Cluster pages for Docker hosts and Swarms: list, create, edit, the observed state, and
the buttons that start jobs (connect test, probe, node drain/pause/activate).

Like every view, these read the database and start jobs; the state shown comes from the
last probe, with its age.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from rest_framework.exceptions import ValidationError

from panel.accounts.access import get_visible_or_404, role_required
from panel.jobs.models import Job
from panel.jobs.services import start_job

from clusters.docker.forms import ClusterForm
from clusters.models import Cluster

ENGINE_KINDS = ("docker", "swarm")


@login_required
@role_required("is_operator")
@require_GET
def cluster_list(request):
    clusters = Cluster.objects.visible_to(request.user).select_related("credential", "server")
    return render(request, "clusters/cluster_list.html", {"clusters": clusters})


@login_required
@role_required("is_operator")
def cluster_create(request):
    form = ClusterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        cluster = form.save()
        job = start_job("engine-connect-test", {}, request.user, target=cluster)
        messages.success(request, _("Cluster saved; a connect test is running (job #%(id)s).") % {"id": job.pk})
        return redirect("clusters:cluster_detail", cluster.pk)
    return render(request, "clusters/cluster_form.html", {"form": form}, status=400 if form.errors else 200)


@login_required
@role_required("is_operator")
def cluster_edit(request, pk):
    cluster = get_visible_or_404(Cluster, request.user, pk=pk)
    if cluster.kind == "kubernetes":
        from clusters.kubernetes.views import kube_cluster_edit

        return kube_cluster_edit(request, cluster)
    form = ClusterForm(request.POST or None, instance=cluster)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Cluster saved."))
        return redirect("clusters:cluster_detail", cluster.pk)
    return render(request, "clusters/cluster_form.html", {"form": form, "cluster": cluster}, status=400 if form.errors else 200)


@login_required
@role_required("is_operator")
@require_GET
def cluster_detail(request, pk):
    """The page, or for htmx polls only its live state (the same partial)."""
    cluster = get_visible_or_404(Cluster, request.user, pk=pk)
    if cluster.kind == "kubernetes":
        from clusters.kubernetes.views import kube_cluster_detail

        return kube_cluster_detail(request, cluster)
    context = _state_context(cluster)
    if request.htmx:
        return render(request, "clusters/cluster_state.html", context)
    context["jobs"] = Job.objects.for_target(cluster).select_related("user")[:10]
    context["services"] = cluster.services.all()
    return render(request, "clusters/cluster_detail.html", context)


def _state_context(cluster):
    import datetime

    observed = cluster.observed or {}
    disk_at = (observed.get("disk") or {}).get("at")
    containers = sorted(observed.get("containers", []), key=lambda row: (row["state"] != "running", row["name"]))
    return {
        "cluster": cluster,
        "observed": observed,
        "containers": containers[:200],
        "containers_hidden": max(0, len(containers) - 200),
        "is_swarm": cluster.kind == "swarm",
        "availability_choices": ("active", "pause", "drain"),
        "disk_at": datetime.datetime.fromtimestamp(disk_at, tz=datetime.timezone.utc) if disk_at else None,
    }


@login_required
@role_required("is_operator")
@require_POST
def cluster_job(request, pk, action):
    cluster = get_visible_or_404(Cluster, request.user, pk=pk)
    kinds = {"test": "engine-connect-test", "probe": "engine-probe"}
    if cluster.kind == "kubernetes":
        from clusters.kubernetes.views import JOB_KINDS as kinds
    elif cluster.kind not in ENGINE_KINDS:
        kinds = {}
    if action not in kinds:
        raise PermissionDenied(_("This action is not available for this cluster."))
    job = start_job(kinds[action], {}, request.user, target=cluster)
    return redirect("jobs:detail", job.pk)


@login_required
@role_required("is_operator")
@require_POST
def node_availability(request, pk, node):
    cluster = get_visible_or_404(Cluster, request.user, pk=pk)
    if cluster.kind != "swarm":
        raise PermissionDenied(_("Only Swarm clusters have nodes."))
    try:
        job = start_job("swarm-node-availability", {"node": node, "availability": request.POST.get("availability", "")}, request.user, target=cluster)
    except ValidationError as exc:
        messages.error(request, "; ".join(str(m) for messages_ in exc.detail.values() for m in messages_))
        return redirect("clusters:cluster_detail", cluster.pk)
    return redirect("jobs:detail", job.pk)
